import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Equal from "effect/Equal"
import { dual } from "effect/Function"
import * as Hash from "effect/Hash"
import { format, NodeInspectSymbol } from "effect/Inspectable"
import * as Option from "effect/Option"
import { pipeArguments } from "effect/Pipeable"
import * as Predicate from "effect/Predicate"
import * as Redacted from "effect/Redacted"
import type * as Token from "../Token.js"

/** @internal */
export const TypeId: Token.TypeId = Symbol.for("effect-renewable-bearer/Token") as Token.TypeId

/** @internal */
export interface TokenImpl extends Token.Token {
  /** Expiration as epoch milliseconds; `Infinity` when the token never expires (may be `NaN` if bad). */
  readonly expiresAtMillis: number
}

const TokenProto = {
  [TypeId]: TypeId,
  get expiresAt(): Option.Option<DateTime.Utc> {
    const millis = (this as unknown as TokenImpl).expiresAtMillis
    return Number.isFinite(millis) ? DateTime.make(millis) : Option.none()
  },
  [Equal.symbol](this: TokenImpl, that: unknown): boolean {
    return (
      isToken(that) &&
      Object.is(this.expiresAtMillis, (that as TokenImpl).expiresAtMillis) &&
      Equal.equals(this.value, that.value)
    )
  },
  [Hash.symbol](this: TokenImpl): number {
    return Hash.cached(this, Hash.combine(Hash.hash(this.value))(Hash.number(this.expiresAtMillis)))
  },
  toJSON(this: TokenImpl) {
    return {
      _id: "Token",
      value: "<redacted>",
      expiresAt: Number.isFinite(this.expiresAtMillis)
        ? Option.getOrElse(Option.map(this.expiresAt, DateTime.formatIso), () => String(this.expiresAtMillis))
        : this.expiresAtMillis === Infinity
          ? null
          : String(this.expiresAtMillis)
    }
  },
  toString(this: TokenImpl) {
    return format(this.toJSON())
  },
  [NodeInspectSymbol](this: TokenImpl) {
    return this.toJSON()
  },
  pipe() {
    return pipeArguments(this, arguments)
  }
}

/** @internal */
export const isToken = (u: unknown): u is Token.Token => Predicate.hasProperty(u, TypeId)

const toMillis = (input: Token.ExpirationInput): number =>
  typeof input === "number"
    ? input
    : input instanceof Date
      ? input.getTime()
      : DateTime.isDateTime(input)
        ? DateTime.toEpochMillis(input)
        : NaN

/** @internal */
export const make = (
  value: string | Redacted.Redacted<string>,
  options?: { readonly expiresAt?: Token.ExpirationInput | undefined }
): Token.Token => {
  const self = Object.create(TokenProto)
  self.value = typeof value === "string" ? Redacted.make(value) : value
  self.expiresAtMillis = options?.expiresAt === undefined ? Infinity : toMillis(options.expiresAt)
  return self
}

/** @internal */
export const expiresAtMillis = (self: Token.Token): number => (self as TokenImpl).expiresAtMillis

const instantMillis = (at: DateTime.DateTime | number): number =>
  typeof at === "number" ? at : DateTime.toEpochMillis(at)

/** @internal */
export const isExpiredAt: {
  (at: DateTime.DateTime | number): (self: Token.Token) => boolean
  (self: Token.Token, at: DateTime.DateTime | number): boolean
} = dual(2, (self: Token.Token, at: DateTime.DateTime | number): boolean => {
  const expires = expiresAtMillis(self)
  return !(instantMillis(at) < expires)
})

/** @internal */
export const remainingLifetime: {
  (at: DateTime.DateTime | number): (self: Token.Token) => Duration.Duration
  (self: Token.Token, at: DateTime.DateTime | number): Duration.Duration
} = dual(2, (self: Token.Token, at: DateTime.DateTime | number): Duration.Duration => {
  const expires = expiresAtMillis(self)
  if (expires === Infinity) return Duration.infinity
  const left = expires - instantMillis(at)
  return left > 0 ? Duration.millis(left) : Duration.zero
})

/** The largest instant a JavaScript `Date` (and so `DateTime`) can hold. */
const MAX_DATE_MILLIS = 8.64e15

/**
 * The longest token value the bearer caches: 16 KiB. Servers answer `431` to larger headers and proxies drop
 * them, so a longer token would fail every request for its whole lifetime.
 *
 * @internal
 */
export const MAX_TOKEN_LENGTH = 16 * 1024

/**
 * A character a token may not hold: anything but visible ASCII (`!` to `~`). That is RFC 6750's `b64token`
 * widened to every character a header value can carry unquoted, since tokens in the wild go beyond the
 * strict grammar; it rules out spaces, tabs, CR, LF, NUL and every other control or non-ASCII character.
 */
const unsendable = /[^\x21-\x7e]/

/**
 * Why a token from a source must not be cached, or `undefined` when it is fine. The detail names what is
 * wrong and where, never the value.
 *
 * @internal
 */
export const invalidReason = (self: Token.Token, now: number): string | undefined => {
  const value = Redacted.value(self.value)
  if (value.length === 0) return "the token value is empty"
  if (value.length > MAX_TOKEN_LENGTH)
    return `the token value is longer than ${MAX_TOKEN_LENGTH} characters (${value.length})`
  const bad = unsendable.exec(value)
  if (bad !== null)
    return `the token value has a character that cannot be sent in a header (a space, a control or a non-ASCII character) at index ${bad.index}`
  const expires = expiresAtMillis(self)
  if (Number.isNaN(expires)) return "the expiration is not a valid time"
  if (expires !== Infinity && Math.abs(expires) > MAX_DATE_MILLIS)
    return "the expiration is outside the range of dates (beyond year 275760)"
  if (!(now < expires)) return "the token is already expired"
  return undefined
}
