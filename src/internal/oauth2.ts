import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import type * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type * as Token from "../Token.js"
import { type BoundedBody, DEFAULT_MAX_RESPONSE_BYTES, readBounded } from "./boundedBody.js"
import * as clientAuth from "./clientAuth.js"
import { TokenSourceError } from "./errors.js"
import * as jwt from "./jwt.js"
import { makeScrubber, sanitize, type Scrubber } from "./sanitize.js"
import { make as makeToken } from "./token.js"

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

/** @internal */
export const isPermanentStatus = (status: number): boolean =>
  status >= 400 && status < 500 && status !== 408 && status !== 429

/** @internal */
export const isTransientStatus = (status: number): boolean =>
  status >= 500 || status === 408 || status === 429

/** @internal */
export interface TokenRequest {
  /** Names the span; its label starts every error message. */
  readonly flow: "clientCredentials" | "tokenExchange" | "jwtBearer"
  readonly tokenUrl: string
  /** The form parameters; `undefined` values are left out, a list is sent as one parameter per value. */
  readonly params: Readonly<Record<string, string | ReadonlyArray<string> | undefined>>
  readonly auth?: clientAuth.ClientAuth | undefined
  /**
   * The lifetime of a token whose answer has no `expires_in` and which is not a JWT with `exp`, in
   * milliseconds; `Infinity` for a token that never expires.
   */
  readonly defaultLifetimeMillis: number
  /** Values that must never appear in an error, even if the server echoes them. */
  readonly secrets: ReadonlyArray<Redacted.Redacted<string>>
  /** The `token_type` values (lower case) that may be used as a bearer token. */
  readonly tokenTypes: ReadonlyArray<string>
  /** The most bytes of the response body read (after decompression); default 64 KiB. */
  readonly maxResponseBytes?: number | undefined
}

const labels = {
  clientCredentials: "OAuth 2.0 client credentials",
  tokenExchange: "OAuth 2.0 token exchange",
  jwtBearer: "OAuth 2.0 JWT bearer grant"
} as const

/**
 * What went wrong underneath a transport error, from its chain of causes: `fetch failed: connect
 * ECONNREFUSED 127.0.0.1:8080`. Messages only, never the request the error may hold.
 */
const describeCause = (cause: unknown): string | undefined => {
  const parts: Array<string> = []
  let current = cause
  for (let depth = 0; depth < 5 && typeof current === "object" && current !== null; depth++) {
    const { code, message } = current as { readonly message?: unknown; readonly code?: unknown }
    const text =
      typeof message === "string" && message.length > 0
        ? message
        : typeof code === "string"
          ? code
          : undefined
    if (text !== undefined && !parts.includes(text)) parts.push(text)
    current = (current as { readonly cause?: unknown }).cause
  }
  return parts.length === 0 ? undefined : parts.join(": ")
}

const transportError = (
  flow: string,
  url: string,
  error: HttpClientError.HttpClientError,
  scrub: Scrubber
): TokenSourceError => {
  const detail = [error.reason, error.description, describeCause(error.cause)]
    .filter((part) => part !== undefined)
    .join(": ")
  return new TokenSourceError({
    message: `${flow}: the request to ${url} failed (${sanitize(detail, scrub)})`,
    // An unreachable endpoint may come back; a malformed URL or body will not.
    retryable: error.reason === "Transport" || error._tag === "ResponseError"
    // No cause: the request inside it carries the client credentials, the undici error may quote them.
  })
}

/**
 * The delay a `Retry-After` header asks for (RFC 9110 section 10.2.3): delay-seconds, or an HTTP-date
 * counted from `now`. `undefined` when it is absent or malformed.
 */
const retryAfterOf = (
  response: HttpClientResponse.HttpClientResponse,
  now: number
): Duration.Duration | undefined => {
  const header = response.headers["retry-after"]?.trim()
  if (header === undefined || header === "") return undefined
  if (/^\d+$/.test(header)) return Duration.seconds(Number(header))
  const date = Date.parse(header)
  return Number.isNaN(date) ? undefined : Duration.millis(Math.max(0, date - now))
}

/**
 * Runs a token request without following redirects: `FetchHttpClient` (which follows them by default) is
 * told `redirect: "manual"`, keeping the caller's other `RequestInit` options.
 *
 * @internal
 */
export const withoutRedirects = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(Effect.serviceOption(FetchHttpClient.RequestInit), (init) =>
    Effect.provideService(effect, FetchHttpClient.RequestInit, {
      ...Option.getOrUndefined(init),
      redirect: "manual"
    })
  )

/** Where a response came from, when a client (`HttpClient.followRedirects`) followed a redirect. */
const redirectedTo = (
  sent: HttpClientRequest.HttpClientRequest,
  response: HttpClientResponse.HttpClientResponse
): string | undefined => (response.request.url === sent.url ? undefined : response.request.url)

/** What every error of one token request names, and the scrubber its server-sent texts pass through. */
interface Exchange {
  readonly flow: string
  readonly tokenUrl: string
  readonly secrets: ReadonlyArray<Redacted.Redacted<string>>
  readonly scrub: Scrubber
}

/** An answer as read: the response, the instant it arrived, and its body read up to `maxResponseBytes`. */
interface Answer {
  readonly response: HttpClientResponse.HttpClientResponse
  readonly arrivedAt: number
  readonly body: BoundedBody
}

/** The POST of a token request: the form parameters (a list as one parameter per value), then client authentication's. */
const tokenHttpRequest = (
  request: TokenRequest,
  applied: clientAuth.Applied
): HttpClientRequest.HttpClientRequest => {
  const params: Array<readonly [string, string]> = []
  for (const [key, value] of Object.entries(request.params)) {
    if (typeof value === "string") params.push([key, value])
    else if (value !== undefined) for (const each of value) params.push([key, each])
  }
  params.push(...applied.params)
  let httpRequest = HttpClientRequest.post(request.tokenUrl).pipe(HttpClientRequest.acceptJson)
  if (applied.authorization !== undefined) {
    httpRequest = HttpClientRequest.setHeader(httpRequest, "Authorization", applied.authorization)
  }
  return HttpClientRequest.bodyUrlParams(httpRequest, params)
}

/** Sends the request without following redirects and reads the body, bounded; a transport error is scrubbed. */
const send = (
  client: HttpClient.HttpClient,
  httpRequest: HttpClientRequest.HttpClientRequest,
  exchange: Exchange,
  maxBytes: number
): Effect.Effect<Answer, TokenSourceError> =>
  Effect.gen(function* () {
    const { flow, scrub, tokenUrl } = exchange
    const response = yield* Effect.mapError(withoutRedirects(client.execute(httpRequest)), (error) =>
      transportError(flow, tokenUrl, error, scrub)
    )
    const arrivedAt = yield* Clock.currentTimeMillis
    const body = yield* Effect.mapError(readBounded(response, maxBytes), (error) =>
      transportError(flow, tokenUrl, error, scrub)
    )
    return { response, arrivedAt, body }
  })

/**
 * The body of a token response, or the error of an answer that is none: a redirect, a body over the bound, a
 * status not 2xx.
 */
const acceptedBody = (
  exchange: Exchange,
  httpRequest: HttpClientRequest.HttpClientRequest,
  { arrivedAt, body, response }: Answer,
  maxBytes: number
): Either.Either<string, TokenSourceError> => {
  const { flow, scrub, tokenUrl } = exchange
  const status = response.status
  const redirect = redirectedTo(httpRequest, response)
  if ((status >= 300 && status < 400) || redirect !== undefined) {
    const location = redirect ?? response.headers["location"]
    return Either.left(
      new TokenSourceError({
        message: `${flow}: ${tokenUrl} answered ${redirect === undefined ? status : "with a redirect"}${location === undefined ? "" : ` to ${sanitize(location, scrub)}`}: a token request never follows redirects`,
        status,
        code: "redirect",
        retryable: false
      })
    )
  }
  if (body._tag === "TooLarge") {
    return Either.left(
      new TokenSourceError({
        message: `${flow}: ${tokenUrl} answered ${status} with a body larger than ${maxBytes} bytes (maxResponseBytes); the rest was not read`,
        status,
        code: "response_too_large",
        retryable: true
      })
    )
  }
  if (status < 200 || status >= 300) return Either.left(errorStatus(exchange, response, body.text, arrivedAt))
  return Either.right(body.text)
}

/** The error of a status not 2xx: only the OAuth error code and a short description are kept, never the body. */
const errorStatus = (
  { flow, scrub, tokenUrl }: Exchange,
  response: HttpClientResponse.HttpClientResponse,
  text: string,
  arrivedAt: number
): TokenSourceError => {
  const status = response.status
  const oauthError = Either.getRight(decodeErrorResponse(text))
  const code = oauthError._tag === "Some" ? sanitize(oauthError.value.error, scrub) : undefined
  const description =
    oauthError._tag === "Some" && oauthError.value.error_description !== undefined
      ? `: ${sanitize(oauthError.value.error_description, scrub)}`
      : ""
  const retryAfter = status === 429 || status === 503 ? retryAfterOf(response, arrivedAt) : undefined
  return new TokenSourceError({
    message: `${flow}: ${tokenUrl} answered ${status}${code === undefined ? "" : ` ${code}`}${description}`,
    status,
    code,
    retryable: isTransientStatus(status) ? true : isPermanentStatus(status) ? false : undefined,
    ...(retryAfter === undefined ? {} : { retryAfter })
  })
}

/** Decodes a 2xx body into a `Token` of a type usable as a bearer token. */
const decodeToken = (
  { flow, scrub, secrets, tokenUrl }: Exchange,
  request: TokenRequest,
  status: number,
  text: string,
  arrivedAt: number
): Either.Either<Token.Token, TokenSourceError> => {
  const decoded = decodeTokenResponse(text)
  if (Either.isLeft(decoded)) {
    return Either.left(
      new TokenSourceError({
        message: `${flow}: ${tokenUrl} answered ${status} with an invalid token response (${sanitize(failedPaths(decoded.left), scrub)})`,
        status,
        code: "invalid_token_response",
        retryable: true
      })
    )
  }
  const answer = decoded.right
  if (!request.tokenTypes.includes(answer.token_type.toLowerCase())) {
    // A server may echo the token it just issued in the type.
    const scrubIssued = makeScrubber([...secrets, answer.access_token])
    return Either.left(
      new TokenSourceError({
        message: `${flow}: ${tokenUrl} issued a token of type "${sanitize(answer.token_type, scrubIssued)}", which cannot be used as a bearer token`,
        status,
        code: "unsupported_token_type",
        retryable: false
      })
    )
  }
  return Either.right(
    makeToken(answer.access_token, { expiresAt: expiresAt(answer, arrivedAt, request.defaultLifetimeMillis) })
  )
}

/**
 * Posts a token request and decodes the answer into a `Token`. The expiration is counted from the instant
 * the response arrived, read from Effect's `Clock`.
 *
 * The answer is untrusted: the body is read up to `maxResponseBytes`, a redirect is an error, and every
 * server-sent text kept in an error (the error code and description, the token type, a transport error's
 * message) is cut short, freed of control characters and scrubbed of every secret of the request in every
 * encoding (`sanitize`).
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
    const maxBytes = request.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES
    // Client authentication first: a signed client assertion is one more secret to keep out of errors.
    const applied = yield* clientAuth.apply(auth, tokenUrl)
    const secrets = [...request.secrets, ...applied.secrets]
    const exchange: Exchange = { flow, tokenUrl, secrets, scrub: makeScrubber(secrets) }
    if (!(Number.isSafeInteger(maxBytes) && maxBytes > 0)) {
      return yield* new TokenSourceError({
        message: `${flow}: maxResponseBytes must be a positive integer, got ${String(maxBytes)}`,
        code: "invalid_options",
        retryable: false
      })
    }
    const httpRequest = tokenHttpRequest(request, applied)
    const answer = yield* send(client, httpRequest, exchange, maxBytes)
    const text = yield* acceptedBody(exchange, httpRequest, answer, maxBytes)
    return yield* decodeToken(exchange, request, answer.response.status, text, answer.arrivedAt)
  }).pipe(
    Effect.withSpan(`OAuth2TokenSource.${request.flow}`, {
      attributes: { "oauth2.token_url": request.tokenUrl }
    })
  )

/**
 * When a token from the endpoint expires: `expires_in` from the arrival instant; without it, a JWT's `exp`
 * (decoded, not verified); otherwise the default lifetime (`Infinity`: never).
 *
 * @internal
 */
export const expiresAt = (
  answer: { readonly access_token: Redacted.Redacted<string>; readonly expires_in?: number | undefined },
  arrivedAt: number,
  defaultLifetimeMillis: number
): number | undefined => {
  if (answer.expires_in !== undefined) return arrivedAt + answer.expires_in * 1000
  const exp = jwt.expirationMillis(Redacted.value(answer.access_token))
  if (Option.isSome(exp)) return exp.value
  return Number.isFinite(defaultLifetimeMillis) ? arrivedAt + defaultLifetimeMillis : undefined
}

/** @internal */
export const scopeParam = (scope: string | ReadonlyArray<string> | undefined): string | undefined =>
  scope === undefined
    ? undefined
    : typeof scope === "string"
      ? scope
      : scope.length === 0
        ? undefined
        : scope.join(" ")
