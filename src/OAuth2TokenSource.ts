/**
 * Token sources that ask an OAuth 2.0 token endpoint over `HttpClient`: the client credentials grant
 * (RFC 6749 section 4.4), token exchange (RFC 8693, the flow of workload identity federation and of service
 * accounts) and the JWT bearer grant (RFC 7523 section 2.1), with every client authentication method of
 * RFC 7591 (secrets in a header or the body, JWT client assertions signed with the secret or a private key),
 * RFC 8707 `resource`, and the token endpoint given or discovered from the issuer (RFC 8414, OpenID Connect).
 *
 * Every fetch is one token request. The answer is decoded with `Schema`; `expires_in` is counted from the
 * instant the response arrived (read from Effect's `Clock`). Without `expires_in`, a JWT access token's `exp`
 * is its expiration (decoded, not verified), and any other token lives `defaultLifetime` (1 hour unless set;
 * `Duration.infinity` for a token that never expires). An error answer (RFC 6749 section 5.2) becomes a
 * `TokenSourceError` with the OAuth error code as `code` and the HTTP status as `status`. Transport errors,
 * `408`, `429` and `5xx` are retryable; any other `4xx` (`invalid_client`, `invalid_grant`,
 * `unauthorized_client`, …) is permanent (`retryable: false`), so the bearer backs off as far as it can
 * instead of hammering the identity provider. A `429` or `503` with
 * `Retry-After` sets the error's `retryAfter`.
 *
 * The token endpoint is not trusted: the body is read up to `maxResponseBytes` (default 64 KiB, counted after
 * decompression), a redirect (`3xx`) is a `TokenSourceError` and is never followed, and of an error answer
 * only the OAuth error code and description are kept, cut to 300 characters, control characters removed.
 * Neither the client secret, nor the subject token, nor an issued token ever appears in an error, a log or a
 * span, even when the server echoes one raw, URL- or form-encoded, JSON-escaped, in base64 (the `Basic`
 * credentials) or in another letter case. See docs/security.md.
 *
 * @since 0.1.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import type { DiscoveryError, InvalidOptionsError, KeyError } from "./Errors.js"
import * as internal from "./internal/grants.js"
import type * as JwtAssertion from "./JwtAssertion.js"
import { TokenSource } from "./TokenSource.js"

/**
 * How the client authenticates to the token endpoint (names from RFC 7591 and OpenID Connect Core section 9):
 *
 * - `client_secret_basic`: HTTP Basic with the id and secret (RFC 6749 section 2.3.1);
 * - `client_secret_post`: `client_id` and `client_secret` in the form body;
 * - `client_secret_jwt`: a JWT client assertion (RFC 7523 section 2.2) signed with the secret (HS256);
 * - `private_key_jwt`: a JWT client assertion signed with the client's private key;
 * - `none`: only `client_id` in the body (a public client).
 *
 * @since 0.1.0
 * @category models
 */
export type ClientAuthMethod =
  "client_secret_basic" | "client_secret_post" | "client_secret_jwt" | "private_key_jwt" | "none"

/**
 * Where the token endpoint is: `tokenUrl`, or `issuer` to read it from the issuer's metadata (RFC 8414
 * `/.well-known/oauth-authorization-server`, then OpenID Connect `/.well-known/openid-configuration`) once,
 * when the layer is built. The document's `issuer` must equal `issuer`, and when it lists
 * `token_endpoint_auth_methods_supported`, the client's method must be among them (without `authMethod`,
 * the first one the client's credentials allow is picked). Give exactly one of the two.
 *
 * @since 0.2.0
 * @category models
 */
export interface EndpointOptions {
  /** The token endpoint. */
  readonly tokenUrl?: string | undefined
  /** The issuer identifier, for discovery. */
  readonly issuer?: string | undefined
  /** How long discovery may take before the layer fails. Default 10 seconds. */
  readonly discoveryTimeout?: Duration.DurationInput | undefined
}

/**
 * Client authentication: a `clientSecret` (`client_secret_basic`, the default, `client_secret_post` or
 * `client_secret_jwt`) or a `privateKey` (`private_key_jwt`, the default when there is one). A JWT client
 * assertion is signed for every request: `iss` and `sub` the client id, `aud` the token endpoint, a one
 * minute lifetime, a fresh `jti`.
 *
 * @since 0.2.0
 * @category models
 */
export interface ClientAuthOptions {
  readonly clientId?: string | undefined
  readonly clientSecret?: Redacted.Redacted<string> | undefined
  readonly privateKey?: JwtAssertion.PrivateKey | undefined
  readonly authMethod?: ClientAuthMethod | undefined
}

/**
 * The request parameters every grant accepts, and the lifetime of a token the endpoint gives none for.
 *
 * @since 0.2.0
 * @category models
 */
export interface RequestOptions {
  /** Sent as `scope`; a list is joined with spaces. */
  readonly scope?: string | ReadonlyArray<string> | undefined
  /** Sent as `audience` (Auth0, Okta and token exchange use it to pick the API); a list, one per value. */
  readonly audience?: string | ReadonlyArray<string> | undefined
  /** Sent as `resource` (RFC 8707): the URI of the API the token is for; a list, one per value. */
  readonly resource?: string | ReadonlyArray<string> | undefined
  /**
   * More form parameters. A parameter the library sets itself (`grant_type`, `scope`, `audience`,
   * `resource`, the client authentication and grant parameters) is refused with `InvalidOptionsError` when
   * the layer is built: use the option that sets it.
   */
  readonly extraParams?: Readonly<Record<string, string | ReadonlyArray<string>>> | undefined
  /**
   * The lifetime of a token whose answer has no `expires_in` and that is not a JWT with an `exp` claim.
   * Default 1 hour; `Duration.infinity` treats such a token as never expiring.
   */
  readonly defaultLifetime?: Duration.DurationInput | undefined
  /**
   * The most bytes of a response body read, after decompression; a longer body is a `TokenSourceError`
   * (`code: "response_too_large"`) and the connection is dropped. Default 64 KiB.
   */
  readonly maxResponseBytes?: number | undefined
}

/**
 * Options of the client credentials source.
 *
 * @since 0.1.0
 * @category models
 */
export interface ClientCredentialsOptions extends EndpointOptions, ClientAuthOptions, RequestOptions {
  readonly clientId: string
}

/**
 * Options of the token exchange source. The subject token comes from another `TokenSource` (a token file,
 * or a `JwtAssertion` source for a service account).
 *
 * @since 0.1.0
 * @category models
 */
export interface TokenExchangeOptions extends EndpointOptions, ClientAuthOptions, RequestOptions {
  /** Default `urn:ietf:params:oauth:token-type:jwt`. */
  readonly subjectTokenType?: string | undefined
  readonly requestedTokenType?: string | undefined
}

/**
 * Options of the JWT bearer grant. The assertion comes from another `TokenSource` (a `JwtAssertion`
 * source signs a new one for every fetch). Client authentication is optional (RFC 7523 section 3.1).
 *
 * @since 0.2.0
 * @category models
 */
export interface JwtBearerOptions extends EndpointOptions, ClientAuthOptions, RequestOptions {}

/**
 * What can go wrong when a source is built: an invalid option, a private key that cannot be imported, or a
 * failed discovery.
 *
 * @since 0.2.0
 * @category errors
 */
export type BuildError = InvalidOptionsError | KeyError | DiscoveryError

export {
  /**
   * The default of `defaultLifetime`: 1 hour.
   *
   * @since 0.2.0
   * @category constants
   */
  DefaultLifetime
} from "./internal/grants.js"

export {
  /**
   * The default of `discoveryTimeout`: 10 seconds.
   *
   * @since 0.2.0
   * @category constants
   */
  DefaultDiscoveryTimeout
} from "./internal/grants.js"

export {
  /**
   * The grant type of the JWT bearer grant (RFC 7523 section 2.1).
   *
   * @since 0.2.0
   * @category constants
   */
  GrantTypeJwtBearer
} from "./internal/grants.js"

export {
  /**
   * The grant type of token exchange.
   *
   * @since 0.1.0
   * @category constants
   */
  GrantTypeTokenExchange
} from "./internal/grants.js"

export {
  /**
   * The token type of a JWT (RFC 8693 section 3): the default subject token type.
   *
   * @since 0.1.0
   * @category constants
   */
  TokenTypeJwt
} from "./internal/grants.js"

export {
  /**
   * The token type of an OAuth 2.0 access token (RFC 8693 section 3).
   *
   * @since 0.1.0
   * @category constants
   */
  TokenTypeAccessToken
} from "./internal/grants.js"

export {
  /**
   * The token type of an OpenID Connect ID token (RFC 8693 section 3).
   *
   * @since 0.1.0
   * @category constants
   */
  TokenTypeIdToken
} from "./internal/grants.js"

/**
 * A client credentials source, with the `HttpClient` from context. The options are checked, the private
 * key imported and the issuer discovered here, once.
 *
 * @since 0.1.0
 * @category constructors
 */
export const clientCredentials: (
  options: ClientCredentialsOptions
) => Effect.Effect<TokenSource["Type"], BuildError, HttpClient.HttpClient> = internal.clientCredentials

/**
 * The client credentials source as a layer.
 *
 * @example
 * ```ts
 * import { FetchHttpClient } from "@effect/platform"
 * import { Layer, Redacted } from "effect"
 * import { OAuth2TokenSource, RenewableBearer } from "effect-renewable-bearer"
 *
 * const BearerLive = RenewableBearer.RenewableBearerLive.pipe(
 *   Layer.provide(
 *     OAuth2TokenSource.layerClientCredentials({
 *       tokenUrl: "https://auth.example.com/oauth/token",
 *       clientId: "billing-worker",
 *       clientSecret: Redacted.make("from-a-vault"),
 *       scope: ["invoices:read"]
 *     })
 *   ),
 *   Layer.provide(FetchHttpClient.layer)
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClientCredentials = (
  options: ClientCredentialsOptions
): Layer.Layer<TokenSource, BuildError, HttpClient.HttpClient> =>
  Layer.effect(TokenSource, clientCredentials(options))

/**
 * The client credentials source, its options read from `Config` (the secret with `Config.redacted`).
 *
 * @example
 * ```ts
 * import { Config } from "effect"
 * import { OAuth2TokenSource } from "effect-renewable-bearer"
 *
 * const SourceLive = OAuth2TokenSource.layerClientCredentialsConfig({
 *   tokenUrl: Config.string("OAUTH_TOKEN_URL"),
 *   clientId: Config.string("OAUTH_CLIENT_ID"),
 *   clientSecret: Config.redacted("OAUTH_CLIENT_SECRET"),
 *   scope: Config.string("OAUTH_SCOPE").pipe(Config.withDefault(undefined))
 * })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClientCredentialsConfig = (
  config: Config.Config.Wrap<ClientCredentialsOptions>
): Layer.Layer<TokenSource, ConfigError.ConfigError | BuildError, HttpClient.HttpClient> =>
  Layer.effect(TokenSource, Effect.flatMap(Config.unwrap(config), clientCredentials))

/**
 * A token exchange source: on every fetch it takes a subject token from the `TokenSource` in context (for
 * example a `FileTokenSource` reading a projected service-account token, or a `JwtAssertion` source signing
 * a service account's assertion) and exchanges it for an access token. A failure of the subject source keeps
 * its `code` and `retryable` flag.
 *
 * @since 0.1.0
 * @category constructors
 */
export const tokenExchange: (
  options: TokenExchangeOptions
) => Effect.Effect<TokenSource["Type"], BuildError, HttpClient.HttpClient | TokenSource> =
  internal.tokenExchange

/**
 * A JWT bearer grant source (RFC 7523 section 2.1): on every fetch it takes an assertion from the
 * `TokenSource` in context (a `JwtAssertion` source signs a fresh one each time) and posts it as
 * `assertion` with `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`. A failure of the assertion
 * source keeps its `code` and `retryable` flag.
 *
 * @since 0.2.0
 * @category constructors
 */
export const jwtBearer: (
  options: JwtBearerOptions
) => Effect.Effect<TokenSource["Type"], BuildError, HttpClient.HttpClient | TokenSource> = internal.jwtBearer

/**
 * The JWT bearer grant source as a layer; the `TokenSource` it needs gives the assertions.
 *
 * @example
 * ```ts
 * import { FetchHttpClient } from "@effect/platform"
 * import { Layer, Redacted } from "effect"
 * import { JwtAssertion, OAuth2TokenSource } from "effect-renewable-bearer"
 *
 * const SourceLive = OAuth2TokenSource.layerJwtBearer({
 *   tokenUrl: "https://auth.example.com/oauth2/token",
 *   scope: "reports:read"
 * }).pipe(
 *   Layer.provide(
 *     JwtAssertion.layer({
 *       key: { alg: "ES256", pem: Redacted.make(process.env.PRIVATE_KEY ?? ""), keyId: "key-1" },
 *       issuer: "reporting-service",
 *       audience: "https://auth.example.com/oauth2/token"
 *     })
 *   ),
 *   Layer.provide(FetchHttpClient.layer)
 * )
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layerJwtBearer = (
  options: JwtBearerOptions
): Layer.Layer<TokenSource, BuildError, HttpClient.HttpClient | TokenSource> =>
  Layer.effect(TokenSource, jwtBearer(options))

/**
 * The token exchange source as a layer; the `TokenSource` it needs is the subject source.
 *
 * @example
 * ```ts
 * import { FetchHttpClient } from "@effect/platform"
 * import { NodeFileSystem } from "@effect/platform-node"
 * import { Layer } from "effect"
 * import { FileTokenSource, OAuth2TokenSource } from "effect-renewable-bearer"
 *
 * const SourceLive = OAuth2TokenSource.layerTokenExchange({
 *   tokenUrl: "https://sts.example.com/v1/token",
 *   audience: "//iam.example.com/pools/prod/providers/k8s"
 * }).pipe(
 *   Layer.provide(FileTokenSource.layer("/var/run/secrets/tokens/sts")),
 *   Layer.provide([FetchHttpClient.layer, NodeFileSystem.layer])
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerTokenExchange = (
  options: TokenExchangeOptions
): Layer.Layer<TokenSource, BuildError, HttpClient.HttpClient | TokenSource> =>
  Layer.effect(TokenSource, tokenExchange(options))

/**
 * The token exchange source, its options read from `Config`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerTokenExchangeConfig = (
  config: Config.Config.Wrap<TokenExchangeOptions>
): Layer.Layer<TokenSource, ConfigError.ConfigError | BuildError, HttpClient.HttpClient | TokenSource> =>
  Layer.effect(TokenSource, Effect.flatMap(Config.unwrap(config), tokenExchange))
