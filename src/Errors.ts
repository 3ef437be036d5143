/**
 * The errors of the renewable bearer. A `fetch` fails with exactly `RenewalError | StoppedError`; a
 * `TokenSource` fails with `TokenSourceError`; building a bearer with bad options fails with
 * `InvalidOptionsError`; a key or a discovery that cannot be used, with `KeyError` or `DiscoveryError`; a
 * `TokenStore` operation, with `TokenStoreError`. None of them ever carries a token value.
 *
 * @since 0.1.0
 */
import type { RenewalError, StoppedError } from "./internal/errors.js"

export {
  /**
   * The symbol every error of this module carries (a value and its type).
   *
   * @since 0.1.0
   * @category type ids
   */
  TypeId
} from "./internal/errors.js"

export {
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
  TokenSourceError
} from "./internal/errors.js"

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

export {
  /**
   * A token could not be had: the attempt failed, or the caller's wait ran out. The `cause` is the
   * underlying failure (for `Timeout`: the cause of the last failed attempt, if there was one).
   *
   * @since 0.1.0
   * @category errors
   */
  RenewalError
} from "./internal/errors.js"

export {
  /**
   * The bearer's scope is closed: no token will ever be fetched again.
   *
   * @since 0.1.0
   * @category errors
   */
  StoppedError
} from "./internal/errors.js"

export {
  /**
   * An option given to `RenewableBearer.layer` (or read by `layerConfig`), or to a token source such as
   * `FileTokenSource`, is out of range or of the wrong type. `module` names the module whose option it is
   * (absent: `RenewableBearer`).
   *
   * @since 0.1.0
   * @category errors
   */
  InvalidOptionsError
} from "./internal/errors.js"

/**
 * The error channel of every fetch.
 *
 * @since 0.1.0
 * @category errors
 */
export type FetchError = RenewalError | StoppedError

export {
  /**
   * @since 0.1.0
   * @category refinements
   */
  isRenewalError
} from "./internal/errors.js"

export {
  /**
   * @since 0.1.0
   * @category refinements
   */
  isStoppedError
} from "./internal/errors.js"

export {
  /**
   * @since 0.1.0
   * @category refinements
   */
  isTokenSourceError
} from "./internal/errors.js"

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

export {
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
  KeyError
} from "./internal/errors.js"

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

export {
  /**
   * The authorization server's metadata (RFC 8414 or OpenID Connect discovery) could not be used to build a
   * source. Raised when the layer is built.
   *
   * @since 0.2.0
   * @category errors
   */
  DiscoveryError
} from "./internal/errors.js"

export {
  /**
   * @since 0.2.0
   * @category refinements
   */
  isKeyError
} from "./internal/errors.js"

export {
  /**
   * @since 0.2.0
   * @category refinements
   */
  isDiscoveryError
} from "./internal/errors.js"

/**
 * What a store was doing when it failed.
 *
 * @since 0.1.0
 * @category errors
 */
export type TokenStoreOperation = "open" | "get" | "put" | "lock" | "unlock"

/**
 * Why a store operation failed: `Unavailable` (the store cannot be reached), `Timeout` (it did not answer in
 * time), `Failure` (its medium failed, such as a file system error), `InvalidOptions` (an option of a store's
 * `make` or of `withStore` is not valid; the operation is `open`), `Untrusted` (the file store's directory is
 * a symbolic link, owned by another user, or writable by group or others), `TooLarge` (a record is larger
 * than the store's `maxRecordBytes`; nothing more was read), `Unauthenticated` (Redis refused the
 * credentials).
 *
 * @since 0.1.0
 * @category errors
 */
export type TokenStoreErrorReason =
  "Unavailable" | "Timeout" | "Failure" | "InvalidOptions" | "Untrusted" | "TooLarge" | "Unauthenticated"

export {
  /**
   * A store operation failed: the store is unreachable, timed out, or its medium failed (a file system error).
   * A record that cannot be decoded or decrypted is not an error: it reads as absent. The bearer never fails a
   * request because of this error: it logs a warning and calls its source itself.
   *
   * @since 0.1.0
   * @category errors
   */
  TokenStoreError
} from "./internal/errors.js"
