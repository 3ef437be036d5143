/**
 * Options of a single fetch, typed, plus the original module's string keys and a parser for them.
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as internal from "./internal/fetchMetadata.js"
import * as options from "./internal/options.js"

/**
 * How one fetch behaves when the cached token must be renewed (it is missing, invalidated, expired, or
 * `renewRequired` is set). A fresh cached token is returned at once whatever these say.
 *
 * @since 0.1.0
 * @category models
 */
export interface FetchOptions {
  /** How long this caller waits at most. Without it the caller waits until a token comes or the bearer stops. */
  readonly timeout?: Duration.DurationInput | undefined
  /** Renew even if the cached token is still fresh; the caller waits for the new token. */
  readonly renewRequired?: boolean | undefined
  /** Abandon a background attempt in flight and run one now, bounded by `renewRequestTimeout`; return its result. */
  readonly synchronous?: boolean | undefined
  /** Wait for the next attempt and fail with its error, instead of waiting through failures. */
  readonly reportError?: boolean | undefined
  /** Bound of the attempt that a synchronous fetch starts (default: the bearer's `refreshRequestTimeout`). */
  readonly renewRequestTimeout?: Duration.DurationInput | undefined
  /**
   * Overrides the bearer's `maxRetries` for `Receiver.canRetry`: an integer in [0, `MAX_RETRIES_LIMIT`]; any
   * other value (larger, negative, fractional, not a number) is malformed and the bearer's own applies.
   */
  readonly maxRetries?: number | undefined
}

/**
 * The original module's option key for `renewRequired`.
 *
 * @since 0.1.0
 * @category constants
 */
export const OPTION_RENEW_REQUIRED: "token_renew_required" = internal.OPTION_RENEW_REQUIRED

/**
 * The original module's option key for `synchronous`.
 *
 * @since 0.1.0
 * @category constants
 */
export const OPTION_RENEW_SYNCHRONOUS: "token_renew_synchronous" = internal.OPTION_RENEW_SYNCHRONOUS

/**
 * The original module's option key for `reportError`.
 *
 * @since 0.1.0
 * @category constants
 */
export const OPTION_REPORT_ERROR: "token_renew_report_error" = internal.OPTION_REPORT_ERROR

/**
 * The original module's option key for `renewRequestTimeout`, in seconds (a float).
 *
 * @since 0.1.0
 * @category constants
 */
export const OPTION_RENEW_REQUEST_TIMEOUT: "token_renew_request_timeout" =
  internal.OPTION_RENEW_REQUEST_TIMEOUT

/**
 * The original module's option key for `maxRetries` (an integer).
 *
 * @since 0.1.0
 * @category constants
 */
export const OPTION_MAX_RETRIES: "max_fetch_token_retries" = internal.OPTION_MAX_RETRIES

/**
 * Ten years: the original module's wait for a token that never expires, and for a caller without timeout.
 *
 * @deprecated A bearer constant, not a fetch option: use `RenewableBearer.VeryLongTimeout`.
 * @since 0.1.0
 * @category constants
 */
export const VeryLongTimeout: Duration.Duration = options.VeryLongTimeout

/**
 * The largest retry budget a fetch may ask for (`maxRetries`, or the metadata key `max_fetch_token_retries`),
 * and the largest `maxRetries` a bearer accepts: a receiver makes at most this many attempts for one request.
 * A larger value is malformed: `fromMetadata` ignores it with a warning (so the bearer's own budget applies),
 * and `RenewableBearer.layer` refuses it with `InvalidOptionsError`.
 *
 * @since 0.2.0
 * @category constants
 */
export const MAX_RETRIES_LIMIT: 100 = options.MAX_RETRIES_LIMIT

/**
 * Reads fetch options from the original module's string keys (as they travel in request metadata): a flag
 * is on when its value is non-empty; a number must be a plain decimal (`"2.5"`, `".5"`, `"3"`: no sign, exponent,
 * `0x`/`0b`/`0o` prefix or surrounding whitespace), a retry budget an integer of at most
 * `MAX_RETRIES_LIMIT`. A malformed number, or a value that is not a string at all, is logged as a warning and
 * ignored. Keys it does not know are ignored.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { FetchOptions } from "effect-renewable-bearer"
 *
 * const options = FetchOptions.fromMetadata({
 *   [FetchOptions.OPTION_RENEW_SYNCHRONOUS]: "1",
 *   [FetchOptions.OPTION_RENEW_REQUEST_TIMEOUT]: "2.5"
 * })
 * // Effect<FetchOptions>: { synchronous: true, renewRequestTimeout: Duration.seconds(2.5) }
 * Effect.runSync(options)
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromMetadata: (metadata: Readonly<Record<string, string>>) => Effect.Effect<FetchOptions> =
  internal.fromMetadata
