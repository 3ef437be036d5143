/**
 * A token source of signed JWT assertions: every fetch signs a fresh, short-lived JWT with a private key
 * (`iss`, `sub`, `aud`, `iat`, `exp`, a random `jti`, the key id as `kid` in the header). Such an assertion
 * is not sent to an API itself: it is the subject token of a token exchange (how a Nebius service account
 * gets its access token) or the assertion of the JWT bearer grant (how a Google service account does).
 *
 * Keys are imported once, when the layer is built, with `jose` (Web Crypto: Node, Deno, Bun, workers) as
 * non-extractable keys; a key that cannot be imported fails the layer with a `KeyError` that never holds the
 * key. Times come from Effect's `Clock`, so `TestClock` drives `iat` and `exp`.
 *
 * @example
 * ```ts
 * import { FetchHttpClient } from "@effect/platform"
 * import { Layer, Redacted } from "effect"
 * import { JwtAssertion, OAuth2TokenSource, RenewableBearer } from "effect-renewable-bearer"
 *
 * // A service account: the signed assertion is exchanged for an access token (RFC 8693).
 * const AssertionLive = JwtAssertion.layer({
 *   key: { alg: "RS256", pem: Redacted.make(process.env.SA_PRIVATE_KEY ?? ""), keyId: "publickey-e00abc" },
 *   issuer: "serviceaccount-e00xyz",
 *   audience: "token-service.iam.example.com"
 * })
 *
 * const BearerLive = RenewableBearer.RenewableBearerLive.pipe(
 *   Layer.provide(
 *     OAuth2TokenSource.layerTokenExchange({
 *       tokenUrl: "https://auth.example.com/oauth2/token/exchange",
 *       requestedTokenType: OAuth2TokenSource.TokenTypeAccessToken
 *     })
 *   ),
 *   Layer.provide(AssertionLive),
 *   Layer.provide(FetchHttpClient.layer)
 * )
 * ```
 *
 * @since 0.2.0
 */
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import type { JWK } from "jose"
import type { InvalidOptionsError, KeyError } from "./Errors.js"
import * as internal from "./internal/assertion.js"
import { TokenSource } from "./TokenSource.js"

/**
 * The asymmetric signing algorithms (RFC 7518, RFC 8037): RSA PKCS#1 v1.5 (`RS*`), RSA-PSS (`PS*`),
 * ECDSA (`ES*`) and Ed25519 (`EdDSA`, or its fully specified name `Ed25519`).
 *
 * @since 0.2.0
 * @category models
 */
export type Algorithm =
  | "RS256"
  | "RS384"
  | "RS512"
  | "PS256"
  | "PS384"
  | "PS512"
  | "ES256"
  | "ES384"
  | "ES512"
  | "EdDSA"
  | "Ed25519"

/**
 * The HMAC algorithms of `client_secret_jwt` (an assertion signed with the client secret).
 *
 * @since 0.2.0
 * @category models
 */
export type HmacAlgorithm = "HS256" | "HS384" | "HS512"

/**
 * The supported asymmetric algorithms, as a list.
 *
 * @since 0.2.0
 * @category constants
 */
export const algorithms: ReadonlyArray<Algorithm> = internal.privateKeyAlgorithms

/**
 * A private key: a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`) or a private JWK, always `Redacted`, the
 * algorithm it signs with, and the key id that goes in the JWT header as `kid` (for a JWK, its own `kid`
 * when `keyId` is absent).
 *
 * @since 0.2.0
 * @category models
 */
export type PrivateKey =
  | {
      readonly alg: Algorithm
      readonly pem: Redacted.Redacted<string>
      readonly keyId?: string | undefined
    }
  | {
      readonly alg: Algorithm
      readonly jwk: Redacted.Redacted<JWK>
      readonly keyId?: string | undefined
    }

/**
 * Options of the assertion source.
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
  readonly key: PrivateKey
  /** `iss`: who signs (a service account id, a client id, an e-mail address). */
  readonly issuer: string
  /** `sub`; defaults to `issuer`. */
  readonly subject?: string | undefined
  /** `aud`: the token endpoint or service that will check the assertion. */
  readonly audience: string | ReadonlyArray<string>
  /** How long each assertion is valid (`exp - iat`). Default 5 minutes. */
  readonly lifetime?: Duration.DurationInput | undefined
  /**
   * More claims (Google's `scope`, for example). The registered claims the source sets itself (`iss`,
   * `sub`, `aud`, `iat`, `exp`, `jti`) are refused with `InvalidOptionsError`.
   */
  readonly claims?: Readonly<Record<string, unknown>> | undefined
}

/**
 * The default lifetime of an assertion: 5 minutes.
 *
 * @since 0.2.0
 * @category constants
 */
export const defaultLifetime: Duration.Duration = internal.defaultLifetime

/**
 * A source of signed assertions: the key is imported once, every fetch signs a new JWT. The token's
 * expiration is the assertion's `exp`, so the bearer signs a new one before it runs out.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<TokenSource["Type"], KeyError | InvalidOptionsError> =>
  internal.makeSource(options, "options")

/**
 * The assertion source as a layer.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<TokenSource, KeyError | InvalidOptionsError> =>
  Layer.effect(TokenSource, make(options))
