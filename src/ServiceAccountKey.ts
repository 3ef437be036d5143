/**
 * Service-account key files as users have them, read through `@effect/platform`'s `FileSystem` and decoded
 * with `Schema`: the Nebius CLI credentials file (`nebius iam auth-public-key generate --output …`) and a
 * Google service-account JSON key. The private key is held as `Redacted` from the moment it is decoded and
 * never appears in an error, a log line or any rendering of the values here.
 *
 * A file that does not exist, is not the expected JSON, holds a PEM of the wrong type (a public key, a
 * certificate, a PKCS#1 key) or names an algorithm the library does not sign with fails the layer, when it
 * is built, with a `KeyError` that says which.
 *
 * @since 0.2.0
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as HttpClient from "@effect/platform/HttpClient"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { InvalidOptionsError, KeyError } from "./Errors.js"
import * as assertion from "./internal/assertion.js"
import * as keyFiles from "./internal/keyFiles.js"
import type * as JwtAssertion from "./JwtAssertion.js"
import * as OAuth2TokenSource from "./OAuth2TokenSource.js"
import { TokenSource } from "./TokenSource.js"

/**
 * A Nebius service account's credentials: the service account id (the assertion's `iss` and `sub`), the
 * public key id (`kid`), and the private key.
 *
 * @since 0.2.0
 * @category models
 */
export interface NebiusCredentials {
  readonly serviceAccountId: string
  readonly keyId: string
  readonly key: JwtAssertion.PrivateKey
}

/**
 * A Google service-account key: the account's e-mail (the assertion's `iss`), the key id (`kid`), the token
 * endpoint (`token_uri`, Google's when the file has none), and the private key (RS256).
 *
 * @since 0.2.0
 * @category models
 */
export interface GoogleServiceAccountKey {
  readonly clientEmail: string
  readonly keyId: string
  readonly tokenUri: string
  readonly projectId?: string | undefined
  readonly key: JwtAssertion.PrivateKey
}

/**
 * The audience the Nebius SDKs sign a service account's assertion for.
 *
 * @since 0.2.0
 * @category constants
 */
export const NebiusAudience = "token-service.iam.new.nebiuscloud.net"

/**
 * Reads a Nebius CLI credentials file: `{"subject-credentials": {"type": "JWT", "alg": "RS256",
 * "private-key": "-----BEGIN PRIVATE KEY-----…", "kid": "publickey-…", "iss": "serviceaccount-…", "sub":
 * "serviceaccount-…"}}`. `iss` and `sub` must be the same service account id.
 *
 * @since 0.2.0
 * @category constructors
 */
export const readNebiusCredentials: (
  path: string
) => Effect.Effect<NebiusCredentials, KeyError, FileSystem.FileSystem> = keyFiles.readNebiusCredentials

/**
 * Reads a Google service-account JSON key (`type` `service_account`, `client_email`, `private_key`,
 * `private_key_id`, `token_uri`).
 *
 * @since 0.2.0
 * @category constructors
 */
export const readGoogleKey: (
  path: string
) => Effect.Effect<GoogleServiceAccountKey, KeyError, FileSystem.FileSystem> = keyFiles.readGoogleKey

/**
 * Options of the Nebius assertion source.
 *
 * @since 0.2.0
 * @category models
 */
export interface NebiusOptions {
  /** The credentials file. */
  readonly path: string
  /** The assertion's `aud`. Default `NebiusAudience`. */
  readonly audience?: string | undefined
  /** How long each assertion is valid. Default 5 minutes. */
  readonly lifetime?: Duration.DurationInput | undefined
}

/**
 * The signed assertions of a Nebius service account, from its credentials file: a `TokenSource` to give
 * to `OAuth2TokenSource.layerTokenExchange`, which exchanges each one for an access token (RFC 8693,
 * `subject_token_type` JWT), as the Nebius SDKs do.
 *
 * @example
 * ```ts
 * import { FetchHttpClient } from "@effect/platform"
 * import { NodeFileSystem } from "@effect/platform-node"
 * import { Layer } from "effect"
 * import { OAuth2TokenSource, RenewableBearer, ServiceAccountKey } from "effect-renewable-bearer"
 *
 * const BearerLive = RenewableBearer.RenewableBearerLive.pipe(
 *   Layer.provide(
 *     OAuth2TokenSource.layerTokenExchange({
 *       tokenUrl: "https://auth.example.com/oauth2/token/exchange",
 *       requestedTokenType: OAuth2TokenSource.TokenTypeAccessToken
 *     })
 *   ),
 *   Layer.provide(ServiceAccountKey.layerNebiusAssertion({ path: "/home/app/.nebius/credentials.json" })),
 *   Layer.provide([FetchHttpClient.layer, NodeFileSystem.layer])
 * )
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layerNebiusAssertion = (
  options: NebiusOptions
): Layer.Layer<TokenSource, KeyError | InvalidOptionsError, FileSystem.FileSystem> =>
  Layer.effect(
    TokenSource,
    Effect.flatMap(readNebiusCredentials(options.path), (credentials) =>
      assertion.makeSource(
        {
          key: credentials.key,
          issuer: credentials.serviceAccountId,
          subject: credentials.serviceAccountId,
          audience: options.audience ?? NebiusAudience,
          lifetime: options.lifetime
        },
        options.path
      )
    )
  )

/**
 * Options of the Google service-account source.
 *
 * @since 0.2.0
 * @category models
 */
export interface GoogleOptions {
  /** The JSON key file. */
  readonly path: string
  /** The OAuth scopes, sent in the assertion's `scope` claim (joined with spaces). */
  readonly scopes: ReadonlyArray<string>
  /** The user to impersonate (domain-wide delegation): the assertion's `sub`. */
  readonly subject?: string | undefined
  /** How long each assertion is valid. Default 5 minutes (Google accepts up to 1 hour). */
  readonly lifetime?: Duration.DurationInput | undefined
}

/**
 * Access tokens for a Google service account from its JSON key: on every fetch an assertion (`iss` the
 * account's e-mail, `aud` the key's `token_uri`, `scope` the scopes) is signed with the key and posted to
 * `token_uri` with the JWT bearer grant (RFC 7523 section 2.1).
 *
 * @example
 * ```ts
 * import { FetchHttpClient } from "@effect/platform"
 * import { NodeFileSystem } from "@effect/platform-node"
 * import { Layer } from "effect"
 * import { RenewableBearer, ServiceAccountKey } from "effect-renewable-bearer"
 *
 * const BearerLive = RenewableBearer.RenewableBearerLive.pipe(
 *   Layer.provide(
 *     ServiceAccountKey.layerGoogle({
 *       path: "/etc/secrets/service-account.json",
 *       scopes: ["https://www.googleapis.com/auth/cloud-platform"]
 *     })
 *   ),
 *   Layer.provide([FetchHttpClient.layer, NodeFileSystem.layer])
 * )
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layerGoogle = (
  options: GoogleOptions
): Layer.Layer<TokenSource, OAuth2TokenSource.BuildError, FileSystem.FileSystem | HttpClient.HttpClient> =>
  Layer.unwrapEffect(
    Effect.map(readGoogleKey(options.path), (key) =>
      OAuth2TokenSource.layerJwtBearer({ tokenUrl: key.tokenUri }).pipe(
        Layer.provide(
          Layer.effect(
            TokenSource,
            assertion.makeSource(
              {
                key: key.key,
                issuer: key.clientEmail,
                subject: options.subject ?? key.clientEmail,
                audience: key.tokenUri,
                lifetime: options.lifetime,
                claims: { scope: options.scopes.join(" ") }
              },
              options.path
            )
          )
        )
      )
    )
  )
