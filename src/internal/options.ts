import * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
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

/** One option checked: its value, or (`Left`) the detail of what is wrong with it. @internal */
export type Decoded<A> = Either.Either<A, string>

/** Checks the value of one option. @internal */
export type Decoder<A> = (value: unknown) => Decoded<A>

/**
 * What an error shows of a value that is not valid: a string quoted and cut to 64 characters, a number or a
 * boolean as it is; never the content of an object or a secret.
 *
 * @internal
 */
export const shown = (value: unknown): string =>
  typeof value === "string"
    ? JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}…` : value)
    : Redacted.isRedacted(value)
      ? "a Redacted"
      : typeof value === "object" && value !== null
        ? "an object"
        : String(value)

/**
 * The one duration decoder of the library (bearer options, fetch options, store options, a source's
 * `retryAfter`): milliseconds, or the detail of what is wrong. It rejects what `Duration.decode` would
 * silently turn into zero (negative numbers, NaN) or into forever (infinity).
 *
 * @internal
 */
export const decodeMillis: Decoder<number> = (input) => {
  if (typeof input === "number" && !(input >= 0))
    return Either.left(`expected a non-negative number of milliseconds, got ${input}`)
  if (Array.isArray(input) && !input.every((n) => typeof n === "number" && n >= 0))
    return Either.left(`expected a non-negative [seconds, nanos] pair, got [${input.join(", ")}]`)
  const decoded = Duration.decodeUnknown(input)
  if (decoded._tag === "None") return Either.left(`expected a duration, got ${JSON.stringify(String(input))}`)
  const millis = Duration.toMillis(decoded.value)
  return Number.isFinite(millis) ? Either.right(millis) : Either.left("expected a finite duration")
}

/** A value that passes `isValid`, or the detail `expected ${expected}, got ...`. @internal */
export const valid =
  <A>(isValid: (value: unknown) => value is A, expected: string): Decoder<A> =>
  (value) =>
    isValid(value) ? Either.right(value) : Either.left(`expected ${expected}, got ${shown(value)}`)

/** A number that passes `isValid`. @internal */
export const number = (isValid: (n: number) => boolean, expected: string): Decoder<number> =>
  valid((value): value is number => typeof value === "number" && isValid(value), expected)

/** An integer in `[min, max]`. @internal */
export const integer = (min: number, max: number): Decoder<number> =>
  number((n) => Number.isSafeInteger(n) && n >= min && n <= max, `an integer in [${min}, ${max}]`)

/** `true` or `false`. @internal */
export const boolean: Decoder<boolean> = valid((value) => typeof value === "boolean", "a boolean")

/** A string, non-empty unless `allowEmpty`. @internal */
export const string = (allowEmpty = false): Decoder<string> =>
  valid(
    (value): value is string => typeof value === "string" && (allowEmpty || value.length > 0),
    allowEmpty ? "a string" : "a non-empty string"
  )

/** A `Redacted` string. @internal */
export const redacted: Decoder<Redacted.Redacted<string>> = valid(
  (value): value is Redacted.Redacted<string> =>
    Redacted.isRedacted(value) && typeof Redacted.value(value) === "string",
  "a Redacted string"
)

/** A duration (see `decodeMillis`) whose milliseconds pass `isValid`. @internal */
export const duration =
  (isValid: (millis: number) => boolean = () => true, expected = ""): Decoder<number> =>
  (value) =>
    Either.flatMap(decodeMillis(value), (millis) =>
      isValid(millis) ? Either.right(millis) : Either.left(`expected ${expected}, got ${millis} ms`)
    )

/** A positive duration. @internal */
export const positiveDuration: Decoder<number> = duration((millis) => millis > 0, "a positive duration")

/** An option with a default: an absent value is the default (which is checked too). @internal */
export const withDefault = <A>(value: unknown, fallback: A, decode: Decoder<A>): Decoded<A> =>
  decode(value === undefined ? fallback : value)

/** An option without a default: an absent value stays absent. @internal */
export const optional = <A>(value: unknown, decode: Decoder<A>): Decoded<A | undefined> =>
  value === undefined ? Either.right(undefined) : decode(value)

/** A bearer option checked, its detail as an `InvalidOptionsError`. */
const bearerOption = <A>(option: string, decoded: Decoded<A>): Either.Either<A, InvalidOptionsError> =>
  Either.mapLeft(decoded, (detail) => new InvalidOptionsError({ option, detail }))

/**
 * Applies the defaults and checks every option once, when the bearer is built.
 *
 * @internal
 */
export const resolve = (options: Options = {}): Effect.Effect<ResolvedOptions, InvalidOptionsError> =>
  Either.gen(function* () {
    if (typeof options !== "object" || options === null)
      return yield* bearerOption("options", Either.left(`expected an object, got ${shown(options)}`))
    const option = <K extends keyof Options, A>(key: K, fallback: A, decode: Decoder<A>) =>
      bearerOption(key, withDefault(options[key], fallback, decode))
    const maxRetries = yield* option("maxRetries", 2, integer(0, MAX_RETRIES_LIMIT))
    const lifetimeSafeFraction = yield* option(
      "lifetimeSafeFraction",
      0.9,
      number((n) => n > 0 && n <= 1, "a number in (0, 1]")
    )
    const initialRetryMillis = yield* option("initialRetryTimeout", 1_000, positiveDuration)
    const maxRetryMillis = yield* option(
      "maxRetryTimeout",
      60_000,
      duration(
        (ms) => ms >= initialRetryMillis,
        `a duration of at least initialRetryTimeout (${initialRetryMillis} ms)`
      )
    )
    const retryTimeoutExponent = yield* option(
      "retryTimeoutExponent",
      1.5,
      number((n) => n >= 1 && Number.isFinite(n), "a finite number of at least 1")
    )
    const refreshRequestMillis = yield* option("refreshRequestTimeout", 5_000, positiveDuration)
    const jitter = yield* option(
      "jitter",
      0.2,
      number((n) => n >= 0 && n < 1, "a number in [0, 1)")
    )
    const expiryMarginMillis = yield* option("expiryMargin", 10_000, duration())
    const eager = yield* option("eager", false, boolean)
    const name = yield* option("name", "default", string())
    const storeKey = yield* option("storeKey", name, string())
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
