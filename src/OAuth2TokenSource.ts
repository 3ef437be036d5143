/**
 * Token sources that ask an OAuth 2.0 token endpoint over `HttpClient`: the client credentials grant
 * (RFC 6749 section 4.4) and token exchange (RFC 8693), the flow of workload identity federation.
 *
 * Every fetch is one token request. The answer is decoded with `Schema`; `expires_in` is counted from the
 * instant the response arrived (read from Effect's `Clock`), and a token without `expires_in` never
 * expires. An error answer (RFC 6749 section 5.2) becomes a `TokenSourceError` with the OAuth error code as
 * `code` and the HTTP status as `status`. Transport errors, `408`, `429` and `5xx` are retryable; any other
 * `4xx` (`invalid_client`, `invalid_grant`, `unauthorized_client`, …) is permanent (`retryable: false`), so
 * the bearer backs off as far as it can instead of hammering the identity provider. A `429` or `503` with
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
import * as HttpClient from "@effect/platform/HttpClient"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { TokenSourceError } from "./Errors.js"
import * as internal from "./internal/oauth2.js"
import { TokenSource } from "./TokenSource.js"

/**
 * How the client authenticates to the token endpoint (RFC 6749 section 2.3.1, names from RFC 7591):
 * `client_secret_basic` sends HTTP Basic credentials, `client_secret_post` sends `client_id` and
 * `client_secret` in the form body.
 *
 * @since 0.1.0
 * @category models
 */
export type ClientAuthMethod = internal.ClientAuthMethod

/**
 * Options of the client credentials source.
 *
 * @since 0.1.0
 * @category models
 */
export interface ClientCredentialsOptions {
  /** The token endpoint. */
  readonly tokenUrl: string
  readonly clientId: string
  readonly clientSecret: Redacted.Redacted<string>
  /** Sent as `scope`; a list is joined with spaces. */
  readonly scope?: string | ReadonlyArray<string> | undefined
  /** Sent as `audience` (Auth0, Okta and others use it to pick the API). */
  readonly audience?: string | undefined
  /** Default `client_secret_basic`. */
  readonly authMethod?: ClientAuthMethod | undefined
  /**
   * The most bytes of a response body read, after decompression; a longer body is a `TokenSourceError`
   * (`code: "response_too_large"`) and the connection is dropped. Default 64 KiB.
   */
  readonly maxResponseBytes?: number | undefined
}

/**
 * Options of the token exchange source. The subject token comes from another `TokenSource`.
 *
 * @since 0.1.0
 * @category models
 */
export interface TokenExchangeOptions {
  /** The token endpoint (for example a security token service). */
  readonly tokenUrl: string
  /** Default `urn:ietf:params:oauth:token-type:jwt`. */
  readonly subjectTokenType?: string | undefined
  readonly audience?: string | undefined
  /** Sent as `scope`; a list is joined with spaces. */
  readonly scope?: string | ReadonlyArray<string> | undefined
  readonly resource?: string | undefined
  readonly requestedTokenType?: string | undefined
  /** Client authentication, when the endpoint wants it. Without a secret, `client_id` goes in the body. */
  readonly clientId?: string | undefined
  /** Used only with a `clientId`: without one the request carries no client authentication at all. */
  readonly clientSecret?: Redacted.Redacted<string> | undefined
  /** Default `client_secret_basic` (when there is a secret). */
  readonly authMethod?: ClientAuthMethod | undefined
  /**
   * The most bytes of a response body read, after decompression; a longer body is a `TokenSourceError`
   * (`code: "response_too_large"`) and the connection is dropped. Default 64 KiB.
   */
  readonly maxResponseBytes?: number | undefined
}

/**
 * The grant type of token exchange.
 *
 * @since 0.1.0
 * @category constants
 */
export const GrantTypeTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"

/**
 * The token type of a JWT (RFC 8693 section 3): the default subject token type.
 *
 * @since 0.1.0
 * @category constants
 */
export const TokenTypeJwt = "urn:ietf:params:oauth:token-type:jwt"

/**
 * The token type of an OAuth 2.0 access token (RFC 8693 section 3).
 *
 * @since 0.1.0
 * @category constants
 */
export const TokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"

/**
 * The token type of an OpenID Connect ID token (RFC 8693 section 3).
 *
 * @since 0.1.0
 * @category constants
 */
export const TokenTypeIdToken = "urn:ietf:params:oauth:token-type:id_token"

/**
 * A client credentials source, with the `HttpClient` from context.
 *
 * @since 0.1.0
 * @category constructors
 */
export const clientCredentials = (
  options: ClientCredentialsOptions
): Effect.Effect<TokenSource["Type"], never, HttpClient.HttpClient> =>
  Effect.map(HttpClient.HttpClient, (client) =>
    TokenSource.of({
      fetch: internal.requestToken(client, {
        flow: "clientCredentials",
        tokenUrl: options.tokenUrl,
        params: {
          grant_type: "client_credentials",
          scope: internal.scopeParam(options.scope),
          audience: options.audience
        },
        auth: { clientId: options.clientId, clientSecret: options.clientSecret, method: options.authMethod },
        secrets: [options.clientSecret],
        tokenTypes: ["bearer"],
        maxResponseBytes: options.maxResponseBytes
      })
    })
  )

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
): Layer.Layer<TokenSource, never, HttpClient.HttpClient> =>
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
): Layer.Layer<TokenSource, ConfigError.ConfigError, HttpClient.HttpClient> =>
  Layer.effect(TokenSource, Effect.flatMap(Config.unwrap(config), clientCredentials))

/**
 * A token exchange source: on every fetch it takes a subject token from the `TokenSource` in context (for
 * example a `FileTokenSource` reading a projected service-account token) and exchanges it for an access
 * token. A failure of the subject source keeps its `code` and `retryable` flag.
 *
 * @since 0.1.0
 * @category constructors
 */
export const tokenExchange = (
  options: TokenExchangeOptions
): Effect.Effect<TokenSource["Type"], never, HttpClient.HttpClient | TokenSource> =>
  Effect.gen(function* () {
    const client = yield* HttpClient.HttpClient
    const subject = yield* TokenSource
    const auth =
      options.clientId === undefined
        ? undefined
        : { clientId: options.clientId, clientSecret: options.clientSecret, method: options.authMethod }
    return TokenSource.of({
      fetch: subject.fetch.pipe(
        Effect.mapError(
          (error) =>
            new TokenSourceError({
              message: `OAuth 2.0 token exchange: the subject token is not available: ${error.message}`,
              retryable: error.retryable,
              code: error.code,
              status: error.status,
              cause: error
            })
        ),
        Effect.flatMap((subjectToken) =>
          internal.requestToken(client, {
            flow: "tokenExchange",
            tokenUrl: options.tokenUrl,
            params: {
              grant_type: GrantTypeTokenExchange,
              subject_token: Redacted.value(subjectToken.value),
              subject_token_type: options.subjectTokenType ?? TokenTypeJwt,
              requested_token_type: options.requestedTokenType,
              audience: options.audience,
              scope: internal.scopeParam(options.scope),
              resource: options.resource
            },
            auth,
            secrets:
              options.clientSecret === undefined
                ? [subjectToken.value]
                : [subjectToken.value, options.clientSecret],
            // RFC 8693 section 2.2.1: "N_A" when the issued token is not an access token (an ID token, a JWT).
            tokenTypes: ["bearer", "n_a"],
            maxResponseBytes: options.maxResponseBytes
          })
        )
      )
    })
  })

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
): Layer.Layer<TokenSource, never, HttpClient.HttpClient | TokenSource> =>
  Layer.effect(TokenSource, tokenExchange(options))

/**
 * The token exchange source, its options read from `Config`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerTokenExchangeConfig = (
  config: Config.Config.Wrap<TokenExchangeOptions>
): Layer.Layer<TokenSource, ConfigError.ConfigError, HttpClient.HttpClient | TokenSource> =>
  Layer.effect(TokenSource, Effect.flatMap(Config.unwrap(config), tokenExchange))
