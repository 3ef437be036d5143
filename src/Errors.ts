/**
 * The errors of the renewable bearer. A `fetch` fails with exactly `RenewalError | StoppedError`; a
 * `TokenSource` fails with `TokenSourceError`; building a bearer with bad options fails with
 * `InvalidOptionsError`. None of them ever carries a token value.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import * as Predicate from "effect/Predicate"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("effect-renewable-bearer/Errors")

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * One attempt of a `TokenSource` failed. `retryable: false` marks a permanent failure (a revoked client,
 * a wrong secret): the bearer then waits the longest backoff before it tries again instead of hammering the
 * identity provider. `status` and `code` carry the HTTP status and the OAuth error code where there is one.
 * `retryAfter` is how long the source asked to be left alone (an HTTP `Retry-After` on a 429 or 503): the
 * bearer's next attempt waits at least that long, and at most its `maxRetryTimeout`.
 *
 * @example
 * ```ts
 * import { Duration } from "effect"
 * import { TokenSourceError } from "effect-renewable-bearer/Errors"
 *
 * const error = new TokenSourceError({ message: "token endpoint answered 503", retryable: true, status: 503 })
 * const slowDown = new TokenSourceError({
 *   message: "token endpoint answered 429",
 *   status: 429,
 *   retryAfter: Duration.seconds(120)
 * })
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class TokenSourceError extends Data.TaggedError("TokenSourceError")<{
  readonly message: string
  readonly retryable?: boolean | undefined
  readonly status?: number | undefined
  readonly code?: string | undefined
  /** The least wait the source asked for before the next attempt (a `Retry-After`). */
  readonly retryAfter?: Duration.DurationInput | undefined
  readonly cause?: unknown
}> {
  /**
   * @since 0.1.0
   */
  readonly [TypeId]: TypeId = TypeId

  /**
   * Whether the bearer should retry on its normal backoff (the default) or treat the failure as permanent.
   *
   * @since 0.1.0
   */
  get isRetryable(): boolean {
    return this.retryable !== false
  }
}

/**
 * Why a renewal failed:
 *
 * - `SourceError`: the source failed with a `TokenSourceError` (the `cause`).
 * - `SourceTimeout`: the source did not answer within the request timeout and was interrupted.
 * - `SourceDefect`: the source died (threw); the `cause` is the defect (as Effect reports it: an `Error`
 *   that died inside a span arrives as a copy with the same class and message).
 * - `InvalidToken`: the source returned a token the bearer will not cache (empty, unsendable in a header,
 *   longer than 16 KiB, or already expired).
 * - `Timeout`: the caller's own `timeout` ran out while it waited; the `cause` is the last attempt's cause.
 * - `InvalidOptions`: the fetch options were malformed (a negative or non-numeric timeout).
 *
 * @since 0.1.0
 * @category errors
 */
export type RenewalErrorReason =
  "SourceError" | "SourceTimeout" | "SourceDefect" | "InvalidToken" | "Timeout" | "InvalidOptions"

/**
 * A token could not be had: the attempt failed, or the caller's wait ran out. The `cause` is the
 * underlying failure (for `Timeout`: the cause of the last failed attempt, if there was one).
 *
 * @since 0.1.0
 * @category errors
 */
export class RenewalError extends Data.TaggedError("RenewalError")<{
  readonly reason: RenewalErrorReason
  readonly detail?: string | undefined
  readonly cause?: unknown
}> {
  /**
   * @since 0.1.0
   */
  readonly [TypeId]: TypeId = TypeId

  /**
   * @since 0.1.0
   */
  override get message(): string {
    const base = renewalMessages[this.reason]
    return this.detail === undefined ? base : `${base}: ${this.detail}`
  }
}

const renewalMessages: Record<RenewalErrorReason, string> = {
  SourceError: "Token renewal failed: the token source returned an error",
  SourceTimeout: "Token renewal failed: the token source did not answer in time",
  SourceDefect: "Token renewal failed: the token source died with a defect",
  InvalidToken: "Token renewal failed: the token source returned an unusable token",
  Timeout: "Timed out waiting for a token",
  InvalidOptions: "Invalid fetch options"
}

/**
 * The bearer's scope is closed: no token will ever be fetched again.
 *
 * @since 0.1.0
 * @category errors
 */
export class StoppedError extends Data.TaggedError("StoppedError")<{}> {
  /**
   * @since 0.1.0
   */
  readonly [TypeId]: TypeId = TypeId

  /**
   * @since 0.1.0
   */
  override get message(): string {
    return "Renewal is stopped."
  }
}

/**
 * An option given to `RenewableBearer.layer` (or read by `layerConfig`), or to a token source such as
 * `FileTokenSource`, is out of range or of the wrong type. `module` names the module whose option it is
 * (absent: `RenewableBearer`).
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidOptionsError extends Data.TaggedError("InvalidOptionsError")<{
  readonly option: string
  readonly detail: string
  readonly module?: string | undefined
}> {
  /**
   * @since 0.1.0
   */
  readonly [TypeId]: TypeId = TypeId

  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `Invalid ${this.module ?? "RenewableBearer"} option "${this.option}": ${this.detail}`
  }
}

/**
 * The error channel of every fetch.
 *
 * @since 0.1.0
 * @category errors
 */
export type FetchError = RenewalError | StoppedError

/**
 * @since 0.1.0
 * @category refinements
 */
export const isRenewalError = (u: unknown): u is RenewalError => Predicate.isTagged(u, "RenewalError")

/**
 * @since 0.1.0
 * @category refinements
 */
export const isStoppedError = (u: unknown): u is StoppedError => Predicate.isTagged(u, "StoppedError")

/**
 * @since 0.1.0
 * @category refinements
 */
export const isTokenSourceError = (u: unknown): u is TokenSourceError =>
  Predicate.isTagged(u, "TokenSourceError")

/**
 * Why a private key could not be used:
 *
 * - `NotFound`: the key file does not exist.
 * - `Unreadable`: the key file cannot be read (permission denied, a directory, …).
 * - `Malformed`: the file is not the JSON the format expects, or a field is missing or of the wrong type.
 * - `WrongKeyType`: the key is not a PKCS#8 private key (a public key, a certificate, a PKCS#1
 *   `RSA PRIVATE KEY`), or its type does not match the algorithm (an EC key for `RS256`).
 * - `UnsupportedAlgorithm`: the algorithm is not one the library signs with.
 *
 * @since 0.2.0
 * @category errors
 */
export type KeyErrorReason = "NotFound" | "Unreadable" | "Malformed" | "WrongKeyType" | "UnsupportedAlgorithm"

/**
 * A private key (or a key file) could not be read or imported. Raised when a layer is built, never during a
 * fetch. Neither the message nor any field ever holds the key material: `source` names the file (or
 * `"options"` for a key given inline) and `detail` says what is wrong with it.
 *
 * @example
 * ```ts
 * import { KeyError } from "effect-renewable-bearer/Errors"
 *
 * const error = new KeyError({ reason: "UnsupportedAlgorithm", source: "credentials.json", detail: "HS999" })
 * console.log(error.message) // Key credentials.json: unsupported algorithm: HS999
 * ```
 *
 * @since 0.2.0
 * @category errors
 */
export class KeyError extends Data.TaggedError("KeyError")<{
  readonly reason: KeyErrorReason
  /** The key file's path, or `"options"` for a key given inline. */
  readonly source: string
  readonly detail: string
  readonly cause?: unknown
}> {
  /**
   * @since 0.2.0
   */
  readonly [TypeId]: TypeId = TypeId

  /**
   * @since 0.2.0
   */
  override get message(): string {
    return `Key ${this.source}: ${keyMessages[this.reason]}: ${this.detail}`
  }
}

const keyMessages: Record<KeyErrorReason, string> = {
  NotFound: "the file does not exist",
  Unreadable: "the file cannot be read",
  Malformed: "malformed key file",
  WrongKeyType: "wrong key type",
  UnsupportedAlgorithm: "unsupported algorithm"
}

/**
 * Why discovery failed:
 *
 * - `Unreachable`: no metadata document could be fetched (transport error, or every well-known URL
 *   answered an error status).
 * - `Timeout`: the discovery did not finish within its timeout.
 * - `InvalidDocument`: the document is not JSON, or lacks `issuer` or `token_endpoint`.
 * - `IssuerMismatch`: the document's `issuer` is not the issuer it was fetched for (RFC 8414 section 3.3).
 * - `UnsupportedAuthMethod`: the server lists its client authentication methods and the one the client
 *   needs is not among them.
 *
 * @since 0.2.0
 * @category errors
 */
export type DiscoveryErrorReason =
  "Unreachable" | "Timeout" | "InvalidDocument" | "IssuerMismatch" | "UnsupportedAuthMethod"

/**
 * The authorization server's metadata (RFC 8414 or OpenID Connect discovery) could not be used to build a
 * source. Raised when the layer is built.
 *
 * @since 0.2.0
 * @category errors
 */
export class DiscoveryError extends Data.TaggedError("DiscoveryError")<{
  readonly reason: DiscoveryErrorReason
  readonly issuer: string
  readonly detail: string
  readonly cause?: unknown
}> {
  /**
   * @since 0.2.0
   */
  readonly [TypeId]: TypeId = TypeId

  /**
   * @since 0.2.0
   */
  override get message(): string {
    return `Discovery of ${this.issuer} failed (${this.reason}): ${this.detail}`
  }
}

/**
 * @since 0.2.0
 * @category refinements
 */
export const isKeyError = (u: unknown): u is KeyError => Predicate.isTagged(u, "KeyError")

/**
 * @since 0.2.0
 * @category refinements
 */
export const isDiscoveryError = (u: unknown): u is DiscoveryError => Predicate.isTagged(u, "DiscoveryError")
