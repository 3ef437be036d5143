/**
 * A bearer token: its value, always held as `Redacted<string>`, and an optional expiration.
 *
 * @since 0.1.0
 */
import type * as DateTime from "effect/DateTime"
import type * as Duration from "effect/Duration"
import type * as Equal from "effect/Equal"
import type { Inspectable } from "effect/Inspectable"
import type * as Option from "effect/Option"
import type { Pipeable } from "effect/Pipeable"
import type * as Redacted from "effect/Redacted"
import * as internal from "./internal/token.js"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = internal.TypeId as never

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * A bearer token. Two tokens are equal when their values and expirations are equal. Printing,
 * `JSON.stringify` and `util.inspect` show `<redacted>` in place of the value.
 *
 * @since 0.1.0
 * @category models
 */
export interface Token extends Equal.Equal, Inspectable, Pipeable {
  readonly [TypeId]: TypeId
  /** The secret. Read it with `Redacted.value` only where it goes on the wire. */
  readonly value: Redacted.Redacted<string>
  /** When the token stops being valid; `None` for a token that never expires. */
  readonly expiresAt: Option.Option<DateTime.Utc>
}

/**
 * What `make` accepts as an expiration: a `DateTime`, a `Date`, or epoch milliseconds.
 *
 * @since 0.1.0
 * @category models
 */
export type ExpirationInput = DateTime.DateTime | Date | number

/**
 * Makes a token. Without `expiresAt` the token never expires.
 *
 * `make` does not check its input; the bearer does, when a source hands it a token: a value that could not
 * be sent in an `Authorization` header (empty, longer than 16 KiB, or holding a character other than
 * visible ASCII: a space, CR, LF, NUL, any other control or a non-ASCII character), an expiration that is
 * not a valid time, or one already past, is rejected with a `RenewalError` whose reason is `InvalidToken`,
 * and is never cached.
 *
 * @example
 * ```ts
 * import { DateTime } from "effect"
 * import { Token } from "effect-renewable-bearer"
 *
 * const token = Token.make("s3cr3t", { expiresAt: DateTime.unsafeMake("2030-01-01T00:00:00Z") })
 * console.log(String(token)) // {"_id":"Token","value":"<redacted>","expiresAt":"2030-01-01T00:00:00.000Z"}
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (
  value: string | Redacted.Redacted<string>,
  options?: { readonly expiresAt?: ExpirationInput | undefined }
) => Token = internal.make

/**
 * @since 0.1.0
 * @category refinements
 */
export const isToken: (u: unknown) => u is Token = internal.isToken

/**
 * Whether the token is expired at the given instant (a `DateTime` or epoch milliseconds). A token without
 * expiration is never expired.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isExpiredAt: {
  (at: DateTime.DateTime | number): (self: Token) => boolean
  (self: Token, at: DateTime.DateTime | number): boolean
} = internal.isExpiredAt

/**
 * How long the token stays valid after the given instant: `Duration.infinity` for a token without
 * expiration, `Duration.zero` for an expired one.
 *
 * @since 0.1.0
 * @category getters
 */
export const remainingLifetime: {
  (at: DateTime.DateTime | number): (self: Token) => Duration.Duration
  (self: Token, at: DateTime.DateTime | number): Duration.Duration
} = internal.remainingLifetime
