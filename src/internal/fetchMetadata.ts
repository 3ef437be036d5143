/**
 * The parser of `FetchOptions.fromMetadata`: the original module's string keys, as they travel in request
 * metadata, read into typed fetch options; a malformed value is logged as a warning and ignored.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type { FetchOptions } from "../FetchOptions.js"
import { MAX_RETRIES_LIMIT } from "./options.js"

/** See `FetchOptions.OPTION_RENEW_REQUIRED`. @internal */
export const OPTION_RENEW_REQUIRED = "token_renew_required"

/** See `FetchOptions.OPTION_RENEW_SYNCHRONOUS`. @internal */
export const OPTION_RENEW_SYNCHRONOUS = "token_renew_synchronous"

/** See `FetchOptions.OPTION_REPORT_ERROR`. @internal */
export const OPTION_REPORT_ERROR = "token_renew_report_error"

/** See `FetchOptions.OPTION_RENEW_REQUEST_TIMEOUT`. @internal */
export const OPTION_RENEW_REQUEST_TIMEOUT = "token_renew_request_timeout"

/** See `FetchOptions.OPTION_MAX_RETRIES`. @internal */
export const OPTION_MAX_RETRIES = "max_fetch_token_retries"

/** Plain decimal numbers only: no sign, exponent, hexadecimal, binary, octal or surrounding whitespace. */
const DECIMAL = /^(?:\d+(?:\.\d*)?|\.\d+)$/
const INTEGER = /^\d+$/

/** What a warning shows of an ignored value: a string cut to 64 characters, or the type of anything else. */
const shown = (value: unknown): string =>
  typeof value !== "string"
    ? `(not a string: ${value === null ? "null" : typeof value})`
    : value.length > 64
      ? `${JSON.stringify(value.slice(0, 64))}… (${value.length} characters)`
      : JSON.stringify(value)

const ignore = (key: string, value: unknown): Effect.Effect<undefined> =>
  Effect.as(
    Effect.logWarning(`Ignoring malformed fetch option ${key}`).pipe(
      Effect.annotateLogs({ value: shown(value) })
    ),
    undefined
  )

const flag = (
  metadata: Readonly<Record<string, unknown>>,
  key: string
): Effect.Effect<boolean | undefined> => {
  const raw = metadata[key]
  if (raw === undefined) return Effect.succeed(undefined)
  return typeof raw === "string" ? Effect.succeed(raw.length > 0) : ignore(key, raw)
}

const parseNumber = (
  metadata: Readonly<Record<string, unknown>>,
  key: string,
  pattern: RegExp,
  isValid: (n: number) => boolean
): Effect.Effect<number | undefined> => {
  const raw = metadata[key]
  if (raw === undefined || raw === "") return Effect.succeed(undefined)
  if (typeof raw !== "string") return ignore(key, raw)
  const parsed = Number(raw)
  return pattern.test(raw) && isValid(parsed) ? Effect.succeed(parsed) : ignore(key, raw)
}

/** See `FetchOptions.fromMetadata`. @internal */
export const fromMetadata = (metadata: Readonly<Record<string, string>>): Effect.Effect<FetchOptions> =>
  Effect.gen(function* () {
    // Metadata comes from outside the type system (headers, RPC metadata): every value is checked at run time.
    const untrusted: Readonly<Record<string, unknown>> = metadata ?? {}
    const seconds = yield* parseNumber(untrusted, OPTION_RENEW_REQUEST_TIMEOUT, DECIMAL, Number.isFinite)
    const retries = yield* parseNumber(
      untrusted,
      OPTION_MAX_RETRIES,
      INTEGER,
      (n) => Number.isSafeInteger(n) && n <= MAX_RETRIES_LIMIT
    )
    const options: {
      -readonly [K in keyof FetchOptions]: FetchOptions[K]
    } = {}
    const renewRequired = yield* flag(untrusted, OPTION_RENEW_REQUIRED)
    const synchronous = yield* flag(untrusted, OPTION_RENEW_SYNCHRONOUS)
    const reportError = yield* flag(untrusted, OPTION_REPORT_ERROR)
    if (renewRequired !== undefined) options.renewRequired = renewRequired
    if (synchronous !== undefined) options.synchronous = synchronous
    if (reportError !== undefined) options.reportError = reportError
    if (seconds !== undefined) options.renewRequestTimeout = Duration.seconds(seconds)
    if (retries !== undefined) options.maxRetries = retries
    return options
  })
