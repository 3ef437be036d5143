import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type { Options } from "../RenewableBearer.js"
import { InvalidOptionsError } from "./errors.js"

/** Options decoded once, at build time: every duration in milliseconds. @internal */
export interface ResolvedOptions {
  readonly maxRetries: number
  readonly lifetimeSafeFraction: number
  readonly initialRetryMillis: number
  readonly maxRetryMillis: number
  readonly retryTimeoutExponent: number
  readonly refreshRequestMillis: number
  readonly jitter: number
  readonly expiryMarginMillis: number
  readonly eager: boolean
  readonly name: string
  /** The key in a shared `TokenStore`: `storeKey`, or else `name`. */
  readonly storeKey: string
}

/**
 * Ten years: the original module's wait for a token that never expires, and for a caller without timeout
 * (`FetchOptions.VeryLongTimeout`).
 *
 * @internal
 */
export const VeryLongTimeout: Duration.Duration = Duration.days(365 * 10)

/** @internal */
export const veryLongMillis = Duration.toMillis(VeryLongTimeout)

/**
 * The largest retry budget of one request, and the largest `maxRetries` a bearer accepts
 * (`FetchOptions.MAX_RETRIES_LIMIT`).
 *
 * @internal
 */
export const MAX_RETRIES_LIMIT = 100

/**
 * Decodes a duration given by a user, rejecting what `Duration.decode` would silently turn into zero
 * (negative numbers, NaN) or into forever (infinity).
 *
 * @internal
 */
export const decodeMillis = (input: Duration.DurationInput): number | string => {
  if (typeof input === "number" && !(input >= 0))
    return `expected a non-negative number of milliseconds, got ${input}`
  if (Array.isArray(input) && !input.every((n) => typeof n === "number" && n >= 0))
    return `expected a non-negative [seconds, nanos] pair, got [${input.join(", ")}]`
  const decoded = Duration.decodeUnknown(input)
  if (decoded._tag === "None") return `expected a duration, got ${JSON.stringify(String(input))}`
  const millis = Duration.toMillis(decoded.value)
  return Number.isFinite(millis) ? millis : "expected a finite duration"
}

const check = (option: keyof Options, value: number | string): Effect.Effect<number, InvalidOptionsError> =>
  typeof value === "string"
    ? Effect.fail(new InvalidOptionsError({ option, detail: value }))
    : Effect.succeed(value)

/** A value of the wrong type at run time (from JavaScript, JSON or a cast) is an error, never a default. */
const describeValue = (value: unknown): string =>
  typeof value === "string"
    ? JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}…` : value)
    : String(value)

const number = (
  option: keyof Options,
  value: number | undefined,
  fallback: number,
  isValid: (n: number) => boolean,
  expected: string
): Effect.Effect<number, InvalidOptionsError> => {
  const n: unknown = value === undefined ? fallback : value
  return check(
    option,
    typeof n === "number" && isValid(n) ? n : `expected ${expected}, got ${describeValue(n)}`
  )
}

const duration = (
  option: keyof Options,
  value: Duration.DurationInput | undefined,
  fallback: number,
  isValid: (millis: number) => boolean = () => true,
  expected = ""
): Effect.Effect<number, InvalidOptionsError> =>
  Effect.flatMap(check(option, value === undefined ? fallback : decodeMillis(value)), (millis) =>
    check(option, isValid(millis) ? millis : `expected ${expected}, got ${millis} ms`)
  )

const boolean = (
  option: keyof Options,
  value: unknown,
  fallback: boolean
): Effect.Effect<boolean, InvalidOptionsError> =>
  value === undefined
    ? Effect.succeed(fallback)
    : typeof value === "boolean"
      ? Effect.succeed(value)
      : Effect.fail(
          new InvalidOptionsError({ option, detail: `expected a boolean, got ${describeValue(value)}` })
        )

const string = (
  option: keyof Options,
  value: unknown,
  fallback: string
): Effect.Effect<string, InvalidOptionsError> =>
  value === undefined
    ? Effect.succeed(fallback)
    : typeof value === "string" && value.length > 0
      ? Effect.succeed(value)
      : Effect.fail(
          new InvalidOptionsError({
            option,
            detail: `expected a non-empty string, got ${describeValue(value)}`
          })
        )

/**
 * Applies the defaults and checks every option once, when the bearer is built.
 *
 * @internal
 */
export const resolve = (options: Options = {}): Effect.Effect<ResolvedOptions, InvalidOptionsError> =>
  Effect.gen(function* () {
    if (typeof options !== "object" || options === null)
      return yield* Effect.fail(
        new InvalidOptionsError({
          option: "options",
          detail: `expected an object, got ${describeValue(options)}`
        })
      )
    const maxRetries = yield* number(
      "maxRetries",
      options.maxRetries,
      2,
      (n) => Number.isSafeInteger(n) && n >= 0 && n <= MAX_RETRIES_LIMIT,
      `an integer in [0, ${MAX_RETRIES_LIMIT}]`
    )
    const lifetimeSafeFraction = yield* number(
      "lifetimeSafeFraction",
      options.lifetimeSafeFraction,
      0.9,
      (n) => n > 0 && n <= 1,
      "a number in (0, 1]"
    )
    const initialRetryMillis = yield* duration(
      "initialRetryTimeout",
      options.initialRetryTimeout,
      1_000,
      (ms) => ms > 0,
      "a positive duration"
    )
    const maxRetryMillis = yield* duration(
      "maxRetryTimeout",
      options.maxRetryTimeout,
      60_000,
      (ms) => ms >= initialRetryMillis,
      `a duration of at least initialRetryTimeout (${initialRetryMillis} ms)`
    )
    const retryTimeoutExponent = yield* number(
      "retryTimeoutExponent",
      options.retryTimeoutExponent,
      1.5,
      (n) => n >= 1 && Number.isFinite(n),
      "a finite number of at least 1"
    )
    const refreshRequestMillis = yield* duration(
      "refreshRequestTimeout",
      options.refreshRequestTimeout,
      5_000,
      (ms) => ms > 0,
      "a positive duration"
    )
    const jitter = yield* number("jitter", options.jitter, 0.2, (n) => n >= 0 && n < 1, "a number in [0, 1)")
    const expiryMarginMillis = yield* duration("expiryMargin", options.expiryMargin, 10_000)
    const eager = yield* boolean("eager", options.eager, false)
    const name = yield* string("name", options.name, "default")
    const storeKey = yield* string("storeKey", options.storeKey, name)
    return {
      maxRetries,
      lifetimeSafeFraction,
      initialRetryMillis,
      maxRetryMillis,
      retryTimeoutExponent,
      refreshRequestMillis,
      jitter,
      expiryMarginMillis,
      eager,
      name,
      storeKey
    }
  })

/**
 * The backoff before attempt `failures + 1`, before jitter: the initial timeout for the first failure (or an
 * exponent of 1), then `initial * exponent^(failures - 1)`, capped. A permanent failure waits the cap.
 *
 * @internal
 */
export const backoffMillis = (options: ResolvedOptions, failures: number, permanent: boolean): number => {
  if (permanent) return options.maxRetryMillis
  if (failures <= 1 || options.retryTimeoutExponent === 1) return options.initialRetryMillis
  return Math.min(
    options.initialRetryMillis * Math.pow(options.retryTimeoutExponent, failures - 1),
    options.maxRetryMillis
  )
}
