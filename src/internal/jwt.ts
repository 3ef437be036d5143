import * as Option from "effect/Option"
import * as Schema from "effect/Schema"

/**
 * The claims of a JWT payload that the library reads. Other claims are ignored; `exp` is NumericDate
 * (seconds since the epoch, RFC 7519 section 2), possibly fractional.
 */
const Claims = Schema.Struct({
  exp: Schema.optional(Schema.Number.pipe(Schema.finite()))
})

const Header = Schema.Struct({ alg: Schema.String })

const decodeSegment = <A, I>(schema: Schema.Schema<A, I>) =>
  Schema.decodeUnknownOption(Schema.compose(Schema.StringFromBase64Url, Schema.parseJson(schema)))

const decodeHeader = decodeSegment(Header)
const decodeClaims = decodeSegment(Claims)

const segment = /^[A-Za-z0-9_-]+$/

/**
 * The expiration of a JWT, in epoch milliseconds: decoded only, the signature is not checked. `None` when
 * the value is not a JWT (three base64url segments whose header and payload are JSON objects, the header
 * with an `alg`), or when its payload has no `exp` claim.
 *
 * @internal
 */
export const expirationMillis = (value: string): Option.Option<number> => {
  const parts = value.split(".")
  if (parts.length !== 3 || !segment.test(parts[0]) || !segment.test(parts[1])) return Option.none()
  if (Option.isNone(decodeHeader(parts[0]))) return Option.none()
  return Option.flatMap(decodeClaims(parts[1]), (claims) =>
    claims.exp === undefined ? Option.none() : Option.some(claims.exp * 1000)
  )
}
