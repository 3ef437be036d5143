/**
 * The grants of `OAuth2TokenSource`: client credentials, and the two grants that post a token from an
 * upstream source (token exchange, JWT bearer), each one token request per fetch over `internal/oauth2.ts`,
 * its endpoint prepared once by `internal/tokenEndpoint.ts`.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type {
  BuildError,
  ClientCredentialsOptions,
  JwtBearerOptions,
  RequestOptions,
  TokenExchangeOptions
} from "../OAuth2TokenSource.js"
import type * as Token from "../Token.js"
import { TokenSourceError } from "./errors.js"
import * as oauth2 from "./oauth2.js"
import { TokenSource } from "./tags.js"
import * as tokenEndpoint from "./tokenEndpoint.js"

/** See `OAuth2TokenSource.DefaultLifetime`. @internal */
export const DefaultLifetime: Duration.Duration = Duration.hours(1)

/** See `OAuth2TokenSource.DefaultDiscoveryTimeout`. @internal */
export const DefaultDiscoveryTimeout: Duration.Duration = Duration.seconds(10)

/** See `OAuth2TokenSource.GrantTypeJwtBearer`. @internal */
export const GrantTypeJwtBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"

/** See `OAuth2TokenSource.GrantTypeTokenExchange`. @internal */
export const GrantTypeTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"

/** See `OAuth2TokenSource.TokenTypeJwt`. @internal */
export const TokenTypeJwt = "urn:ietf:params:oauth:token-type:jwt"

/** See `OAuth2TokenSource.TokenTypeAccessToken`. @internal */
export const TokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"

/** See `OAuth2TokenSource.TokenTypeIdToken`. @internal */
export const TokenTypeIdToken = "urn:ietf:params:oauth:token-type:id_token"

const defaults = { defaultLifetime: DefaultLifetime, discoveryTimeout: DefaultDiscoveryTimeout }

/** The request parameters every grant sends from its options. */
const commonParams = (options: RequestOptions) => ({
  scope: oauth2.scopeParam(options.scope),
  audience: options.audience,
  resource: options.resource
})

/** See `OAuth2TokenSource.clientCredentials`. @internal */
export const clientCredentials = (
  options: ClientCredentialsOptions
): Effect.Effect<TokenSource["Type"], BuildError, HttpClient.HttpClient> =>
  Effect.gen(function* () {
    const client = yield* HttpClient.HttpClient
    const endpoint = yield* tokenEndpoint.prepare(client, options, defaults)
    return TokenSource.of({
      fetch: oauth2.requestToken(client, {
        flow: "clientCredentials",
        tokenUrl: endpoint.tokenUrl,
        params: { ...endpoint.extraParams, grant_type: "client_credentials", ...commonParams(options) },
        auth: endpoint.auth,
        defaultLifetimeMillis: endpoint.defaultLifetimeMillis,
        secrets: [],
        tokenTypes: ["bearer"],
        maxResponseBytes: options.maxResponseBytes
      })
    })
  })

/** The failure of the source that gives the subject token or the assertion, in the words of the grant. */
const upstreamError = (flow: string, what: string) => (error: TokenSourceError) =>
  new TokenSourceError({
    message: `${flow}: the ${what} is not available: ${error.message}`,
    retryable: error.retryable,
    retryAfter: error.retryAfter,
    code: error.code,
    status: error.status,
    cause: error
  })

/** A grant that posts, on every fetch, a token taken from the `TokenSource` in context. */
interface UpstreamGrant<O> {
  readonly flow: "tokenExchange" | "jwtBearer"
  /** The grant's name in error messages, and what the upstream token is to it. */
  readonly label: string
  readonly upstream: string
  /** The form parameters (but `extraParams`), with the upstream token's value. */
  readonly params: (
    options: O,
    upstream: string
  ) => Readonly<Record<string, string | ReadonlyArray<string> | undefined>>
  readonly tokenTypes: ReadonlyArray<string>
}

const upstreamGrant =
  <O extends RequestOptions & Parameters<typeof tokenEndpoint.prepare>[1]>(grant: UpstreamGrant<O>) =>
  (options: O): Effect.Effect<TokenSource["Type"], BuildError, HttpClient.HttpClient | TokenSource> =>
    Effect.gen(function* () {
      const client = yield* HttpClient.HttpClient
      const upstream = yield* TokenSource
      const endpoint = yield* tokenEndpoint.prepare(client, options, defaults)
      const exchange = (token: Token.Token) =>
        oauth2.requestToken(client, {
          flow: grant.flow,
          tokenUrl: endpoint.tokenUrl,
          params: { ...endpoint.extraParams, ...grant.params(options, Redacted.value(token.value)) },
          auth: endpoint.auth,
          defaultLifetimeMillis: endpoint.defaultLifetimeMillis,
          secrets: [token.value],
          tokenTypes: grant.tokenTypes,
          maxResponseBytes: options.maxResponseBytes
        })
      return TokenSource.of({
        fetch: upstream.fetch.pipe(
          Effect.mapError(upstreamError(grant.label, grant.upstream)),
          Effect.flatMap(exchange)
        )
      })
    })

/** See `OAuth2TokenSource.tokenExchange`. @internal */
export const tokenExchange = upstreamGrant<TokenExchangeOptions>({
  flow: "tokenExchange",
  label: "OAuth 2.0 token exchange",
  upstream: "subject token",
  params: (options, subjectToken) => ({
    grant_type: GrantTypeTokenExchange,
    subject_token: subjectToken,
    subject_token_type: options.subjectTokenType ?? TokenTypeJwt,
    requested_token_type: options.requestedTokenType,
    audience: options.audience,
    scope: oauth2.scopeParam(options.scope),
    resource: options.resource
  }),
  // RFC 8693 section 2.2.1: "N_A" when the issued token is not an access token (an ID token, a JWT).
  tokenTypes: ["bearer", "n_a"]
})

/** See `OAuth2TokenSource.jwtBearer`. @internal */
export const jwtBearer = upstreamGrant<JwtBearerOptions>({
  flow: "jwtBearer",
  label: "OAuth 2.0 JWT bearer grant",
  upstream: "assertion",
  params: (options, assertion) => ({ grant_type: GrantTypeJwtBearer, assertion, ...commonParams(options) }),
  tokenTypes: ["bearer"]
})
