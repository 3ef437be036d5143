import type * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Encoding from "effect/Encoding"
import * as ParseResult from "effect/ParseResult"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { TokenSourceError } from "../Errors.js"
import * as Token from "../Token.js"

/** How the client authenticates to the token endpoint (RFC 6749 section 2.3.1). @internal */
export type ClientAuthMethod = "client_secret_basic" | "client_secret_post"

/** @internal */
export interface ClientAuth {
  readonly clientId: string
  readonly clientSecret?: Redacted.Redacted<string> | undefined
  readonly method?: ClientAuthMethod | undefined
}

/** A successful token response (RFC 6749 section 5.1, RFC 8693 section 2.2.1). @internal */
export const TokenResponse = Schema.Struct({
  access_token: Schema.Redacted(Schema.NonEmptyTrimmedString),
  token_type: Schema.String,
  expires_in: Schema.optional(
    Schema.Union(Schema.Number, Schema.NumberFromString).pipe(Schema.finite(), Schema.nonNegative())
  ),
  issued_token_type: Schema.optional(Schema.String),
  scope: Schema.optional(Schema.String)
})

/** An error response (RFC 6749 section 5.2). @internal */
export const ErrorResponse = Schema.Struct({
  error: Schema.String,
  error_description: Schema.optional(Schema.String),
  error_uri: Schema.optional(Schema.String)
})

const decodeTokenResponse = Schema.decodeUnknownEither(Schema.parseJson(TokenResponse))
const decodeErrorResponse = Schema.decodeUnknownEither(Schema.parseJson(ErrorResponse))

/**
 * Where a decoding failed, as paths only: a parse error's message quotes the input, which holds the token.
 */
const failedPaths = (error: ParseResult.ParseError): string => {
  const paths = ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) =>
    issue.path.length === 0 ? "(body)" : issue.path.map(String).join(".")
  )
  return Array.from(new Set(paths)).join(", ")
}

/** RFC 6749 appendix B: the form encoding, applied to the client id and secret before Basic encoding. */
const formEncode = (s: string): string => encodeURIComponent(s).replace(/%20/g, "+")

/** @internal */
export const basicCredentials = (clientId: string, clientSecret: Redacted.Redacted<string>): string =>
  `Basic ${Encoding.encodeBase64(`${formEncode(clientId)}:${formEncode(Redacted.value(clientSecret))}`)}`

/** Replaces every occurrence of a secret in text that came from the server. */
const scrub = (text: string, secrets: ReadonlyArray<Redacted.Redacted<string>>): string =>
  secrets.reduce((acc, secret) => {
    const value = Redacted.value(secret)
    return value.length === 0 ? acc : acc.split(value).join("<redacted>")
  }, text)

/** @internal */
export const isPermanentStatus = (status: number): boolean =>
  status >= 400 && status < 500 && status !== 408 && status !== 429

/** @internal */
export const isTransientStatus = (status: number): boolean =>
  status >= 500 || status === 408 || status === 429

/** @internal */
export interface TokenRequest {
  /** Names the span; its label starts every error message. */
  readonly flow: "clientCredentials" | "tokenExchange"
  readonly tokenUrl: string
  /** The form parameters; `undefined` values are left out. */
  readonly params: Readonly<Record<string, string | undefined>>
  readonly auth?: ClientAuth | undefined
  /** Values that must never appear in an error, even if the server echoes them. */
  readonly secrets: ReadonlyArray<Redacted.Redacted<string>>
  /** The `token_type` values (lower case) that may be used as a bearer token. */
  readonly tokenTypes: ReadonlyArray<string>
}

const labels = {
  clientCredentials: "OAuth 2.0 client credentials",
  tokenExchange: "OAuth 2.0 token exchange"
} as const

const transportError = (
  flow: string,
  url: string,
  error: HttpClientError.HttpClientError
): TokenSourceError =>
  new TokenSourceError({
    message: `${flow}: the request to ${url} failed (${error.reason}${error.description === undefined ? "" : `: ${error.description}`})`,
    // An unreachable endpoint may come back; a malformed URL or body will not.
    retryable: error.reason === "Transport" || error._tag === "ResponseError",
    // Keep the low-level cause only: the request itself carries the client credentials.
    cause: error.cause
  })

/**
 * Posts a token request and decodes the answer into a `Token`. The expiration is counted from the instant
 * the response arrived, read from Effect's `Clock`.
 *
 * @internal
 */
export const requestToken = (
  client: HttpClient.HttpClient,
  request: TokenRequest
): Effect.Effect<Token.Token, TokenSourceError> =>
  Effect.gen(function* () {
    const { auth, tokenUrl } = request
    const flow = labels[request.flow]
    const params: Array<[string, string]> = []
    for (const [key, value] of Object.entries(request.params)) {
      if (value !== undefined) params.push([key, value])
    }
    let httpRequest = HttpClientRequest.post(tokenUrl).pipe(HttpClientRequest.acceptJson)
    if (auth !== undefined) {
      if (
        auth.clientSecret !== undefined &&
        (auth.method ?? "client_secret_basic") === "client_secret_basic"
      ) {
        httpRequest = HttpClientRequest.setHeader(
          httpRequest,
          "Authorization",
          basicCredentials(auth.clientId, auth.clientSecret)
        )
      } else {
        params.push(["client_id", auth.clientId])
        if (auth.clientSecret !== undefined) params.push(["client_secret", Redacted.value(auth.clientSecret)])
      }
    }
    httpRequest = HttpClientRequest.bodyUrlParams(httpRequest, params)

    const response = yield* Effect.mapError(client.execute(httpRequest), (error) =>
      transportError(flow, tokenUrl, error)
    )
    const arrivedAt = yield* Clock.currentTimeMillis
    const body = yield* Effect.mapError(response.text, (error) => transportError(flow, tokenUrl, error))
    const status = response.status

    if (status < 200 || status >= 300) {
      const oauthError = Either.getRight(decodeErrorResponse(body))
      // Scrubbed before it is stored: the code travels on (a token exchange copies it, callers log it).
      const code = oauthError._tag === "Some" ? scrub(oauthError.value.error, request.secrets) : undefined
      const description =
        oauthError._tag === "Some" && oauthError.value.error_description !== undefined
          ? `: ${scrub(oauthError.value.error_description, request.secrets)}`
          : ""
      return yield* new TokenSourceError({
        message: `${flow}: ${tokenUrl} answered ${status}${code === undefined ? "" : ` ${code}`}${description}`,
        status,
        code,
        retryable: isTransientStatus(status) ? true : isPermanentStatus(status) ? false : undefined
      })
    }

    const decoded = decodeTokenResponse(body)
    if (Either.isLeft(decoded)) {
      return yield* new TokenSourceError({
        message: `${flow}: ${tokenUrl} answered ${status} with an invalid token response (${failedPaths(decoded.left)})`,
        status,
        code: "invalid_token_response",
        retryable: true
      })
    }
    const answer = decoded.right
    if (!request.tokenTypes.includes(answer.token_type.toLowerCase())) {
      return yield* new TokenSourceError({
        message: `${flow}: ${tokenUrl} issued a token of type "${scrub(answer.token_type, request.secrets)}", which cannot be used as a bearer token`,
        status,
        code: "unsupported_token_type",
        retryable: false
      })
    }
    return Token.make(answer.access_token, {
      expiresAt: answer.expires_in === undefined ? undefined : arrivedAt + answer.expires_in * 1000
    })
  }).pipe(
    Effect.withSpan(`OAuth2TokenSource.${request.flow}`, {
      attributes: { "oauth2.token_url": request.tokenUrl }
    })
  )

/** @internal */
export const scopeParam = (scope: string | ReadonlyArray<string> | undefined): string | undefined =>
  scope === undefined
    ? undefined
    : typeof scope === "string"
      ? scope
      : scope.length === 0
        ? undefined
        : scope.join(" ")
