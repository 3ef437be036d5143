import type * as HttpBody from "@effect/platform/HttpBody"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Tracer from "effect/Tracer"
import type * as BearerHttpClient from "../BearerHttpClient.js"
import type { FetchError } from "../Errors.js"
import type { FetchOptions } from "../FetchOptions.js"
import type * as KeyedBearer from "../KeyedBearer.js"
import * as Context from "effect/Context"
import type { Receiver } from "../Receiver.js"
import type { Service as BearerService } from "../RenewableBearer.js"
import type * as Token from "../Token.js"
import { AuthorizedResponse, redactCause } from "./authorizedResponse.js"
import { DEFAULT_MAX_RESPONSE_BYTES, readBounded } from "./boundedBody.js"
import { UnauthorizedError } from "./errors.js"
import { countAttempt, isOwn as isOwnReceiver } from "./receiver.js"
import { lazyScrubber, type Scrubber } from "./sanitize.js"
import { RenewableBearer } from "./tags.js"

/**
 * Whether a body can be sent twice. A stream (or a raw body that is a stream) is consumed by the first
 * attempt; bytes, text, form data and blobs are not.
 *
 * @internal
 */
export const isReplayable = (body: HttpBody.HttpBody): boolean => {
  switch (body._tag) {
    case "Empty":
    case "Uint8Array":
    case "FormData":
      return true
    case "Stream":
      return false
    case "Raw":
      return (
        typeof body.body === "string" ||
        body.body instanceof Uint8Array ||
        body.body instanceof ArrayBuffer ||
        body.body instanceof URLSearchParams ||
        (typeof Blob !== "undefined" && body.body instanceof Blob)
      )
  }
}

/**
 * The token fetch options when the caller gives none: a request waits at most 30 seconds for a token, so a
 * hung token endpoint does not hold every request forever. Options given by the caller are used as they are.
 *
 * @internal
 */
export const defaultFetchOptions: FetchOptions = { timeout: Duration.seconds(30) }

/**
 * Drops the body of a `401` before the replay: read (so a short body lets the connection go back to the
 * pool) up to 64 KiB and for at most 5 seconds; a longer or slower body is cut and its connection closed, so
 * a hostile server cannot make the client hold an endless body.
 */
const discard = (response: HttpClientResponse.HttpClientResponse): Effect.Effect<void> =>
  readBounded(response, DEFAULT_MAX_RESPONSE_BYTES).pipe(Effect.timeout("5 seconds"), Effect.ignore)

/**
 * An error of the inner client as the caller may see it: its request is the caller's, without the
 * `Authorization` header, its response (if any) one whose request is the caller's, and its cause scrubbed
 * of the token. Anything that is not an `HttpClientError` passes as it is.
 *
 * @internal
 */
export const redactError = <E>(
  error: E,
  request: HttpClientRequest.HttpClientRequest,
  scrub: Scrubber
): E => {
  if (!HttpClientError.isHttpClientError(error)) return error
  const description = error.description === undefined ? {} : { description: error.description }
  switch (error._tag) {
    case "RequestError":
      return new HttpClientError.RequestError({
        request,
        reason: error.reason,
        ...description,
        cause: redactCause(error.cause, scrub)
      }) as E
    case "ResponseError":
      return new HttpClientError.ResponseError({
        request,
        response: new AuthorizedResponse(request, error.response, scrub),
        reason: error.reason,
        ...description,
        cause: redactCause(error.cause, scrub)
      }) as E
  }
}

const scrubberOf = (token: Token.Token): Scrubber => lazyScrubber([token.value])

/**
 * The token of a request's first attempt: the bearer's fetch for the client's options, built once per
 * client. A fresh cached token costs what `bearer.fetch()` does: no receiver (one is made only when a `401`
 * asks for a retry), no option decoding, no timeout bookkeeping on a hit.
 *
 * @internal
 */
export const firstAttemptToken = (
  bearer: BearerService,
  fetchOptions: FetchOptions
): Effect.Effect<Token.Token, FetchError> => bearer.fetch(fetchOptions)

/** @internal */
export const withBearer =
  (bearer: RenewableBearer["Type"], options?: BearerHttpClient.Options) =>
  <E, R>(
    self: HttpClient.HttpClient.With<E, R>
  ): HttpClient.HttpClient.With<E | FetchError | UnauthorizedError, R> => {
    const client = new AuthorizingClient(self, bearer, options)
    return HttpClient.makeWith<never, never, E | FetchError | UnauthorizedError, R>(
      (effect) => Effect.flatMap(effect, (request) => client.execute(request)),
      Effect.succeed
    )
  }

/** One authorizing client: what it was made with, and the steps of a request (fetch, send, after a `401`). */
class AuthorizingClient<E, R> {
  private readonly fetchOptions: FetchOptions
  private readonly failOnUnauthorized: boolean
  private readonly firstToken: Effect.Effect<Token.Token, FetchError>
  /**
   * Whether this bearer's receivers are the library's own, which can count an attempt made without them;
   * unknown until the first request. Wrapped receivers (a caller's instrumentation, say) see every attempt.
   */
  private ownReceivers: boolean | undefined

  constructor(
    private readonly self: HttpClient.HttpClient.With<E, R>,
    private readonly bearer: RenewableBearer["Type"],
    options: BearerHttpClient.Options | undefined
  ) {
    this.fetchOptions = options?.fetchOptions ?? defaultFetchOptions
    this.failOnUnauthorized = options?.failOnUnauthorized === true
    this.firstToken = firstAttemptToken(bearer, this.fetchOptions)
  }

  execute(request: HttpClientRequest.HttpClientRequest): Authorized<E, R> {
    if (this.ownReceivers === true)
      return Effect.flatMap(this.firstToken, (token) => this.send(request, token, undefined, 1))
    return Effect.flatMap(this.bearer.receiver, (receiver) => {
      this.ownReceivers = isOwnReceiver(receiver)
      return Effect.flatMap(receiver.fetchWith(this.fetchOptions), (token) =>
        this.send(request, token, receiver, 1)
      )
    })
  }

  /** Sends `request` with `token`; a `401` goes to `unauthorized`, anything else to the caller. */
  private send(
    request: HttpClientRequest.HttpClientRequest,
    token: Token.Token,
    receiver: Receiver["Type"] | undefined,
    attempts: number
  ): Authorized<E, R> {
    // Whatever comes back shows the caller's request, never the one that carried the token.
    const scrub = scrubberOf(token)
    return Effect.flatMap(
      Effect.mapError(this.self.execute(HttpClientRequest.bearerToken(request, token.value)), (error) =>
        redactError(error, request, scrub)
      ),
      (sent) => {
        const response = new AuthorizedResponse(request, sent, scrub)
        if (response.status === 401)
          return this.unauthorized(request, token, receiver, attempts, sent, response)
        return Effect.as(annotate(attempts), response)
      }
    )
  }

  /**
   * After a `401`: the receiver decides whether to try again (and invalidates the token if it is still the
   * cached one); a request that fetched its token without a receiver gets one now, which counts that attempt.
   */
  private unauthorized(
    request: HttpClientRequest.HttpClientRequest,
    token: Token.Token,
    known: Receiver["Type"] | undefined,
    attempts: number,
    sent: HttpClientResponse.HttpClientResponse,
    response: AuthorizedResponse
  ): Authorized<E, R> {
    return Effect.gen(this, function* () {
      let receiver = known
      if (receiver === undefined) {
        receiver = yield* this.bearer.receiver
        countAttempt(receiver, token)
      }
      const replayable = isReplayable(request.body)
      // Within the budget the receiver invalidates the token (if it is still the cached one), so the next
      // fetch, of this request or of any other, waits for a renewed token.
      if ((yield* receiver.canRetry(response, this.fetchOptions)) && replayable) {
        yield* Effect.logDebug("401 Unauthorized: replaying the request with a renewed token").pipe(
          Effect.annotateLogs({ method: request.method, url: request.url, attempt: attempts })
        )
        // The replay's fetch starts in the same step as the invalidation, before the bearer takes that up: a
        // synchronous fetch's own attempt is then the one renewal. The refused body goes after it.
        const renewed = yield* Effect.ensuring(receiver.fetchWith(this.fetchOptions), discard(sent))
        return yield* this.send(request, renewed, receiver, attempts + 1)
      }
      yield* annotate(attempts)
      if (this.failOnUnauthorized) {
        return yield* new UnauthorizedError({ request, response, attempts, replayable })
      }
      return response
    })
  }
}

/** What an authorizing client's request results in. */
type Authorized<E, R> = Effect.Effect<
  HttpClientResponse.HttpClientResponse,
  E | FetchError | UnauthorizedError,
  R
>

/**
 * Authorizes each request with the bearer of the key `keyOf` picks for it: the bearer is in use (neither
 * closed when idle nor evicted) for the whole request, replays included. The fetch options' `timeout` also
 * bounds the wait for a free slot when every keyed bearer is in use.
 *
 * @internal
 */
export const withKeyedBearer =
  <K>(
    keyed: KeyedBearer.KeyedBearer<K>,
    keyOf: (request: HttpClientRequest.HttpClientRequest) => K,
    options?: BearerHttpClient.Options
  ) =>
  <E, R>(
    self: HttpClient.HttpClient.With<E, R>
  ): HttpClient.HttpClient.With<E | FetchError | UnauthorizedError, R> => {
    const useOptions = { timeout: (options?.fetchOptions ?? defaultFetchOptions).timeout }
    // One authorized client per keyed bearer, kept as long as the bearer is (so its token step is built once).
    const clients = new WeakMap<
      BearerService,
      HttpClient.HttpClient.With<E | FetchError | UnauthorizedError, R>
    >()
    const clientOf = (bearer: BearerService) => {
      let client = clients.get(bearer)
      if (client === undefined) {
        client = withBearer(bearer, options)(self)
        clients.set(bearer, client)
      }
      return client
    }
    return HttpClient.makeWith<never, never, E | FetchError | UnauthorizedError, R>(
      (effect) =>
        Effect.flatMap(effect, (request) =>
          keyed.use(keyOf(request), (bearer) => clientOf(bearer).execute(request), useOptions)
        ),
      Effect.succeed
    )
  }

/**
 * Annotates the current span with the attempts; outside any span it does nothing (and costs nothing:
 * `Effect.annotateCurrentSpan` without a span builds an error to find that out).
 */
const annotate = (attempts: number): Effect.Effect<void> =>
  Effect.withFiberRuntime((fiber) =>
    Context.getOption(fiber.currentContext, Tracer.ParentSpan)._tag === "None"
      ? Effect.void
      : Effect.annotateCurrentSpan({ "bearer.retried": attempts > 1, "bearer.attempts": attempts })
  )

/** @internal */
export const authorizeFrom = <Self, E, R>(
  tag: Context.Tag<Self, BearerService>,
  self: HttpClient.HttpClient.With<E, R>,
  options?: BearerHttpClient.Options
): Effect.Effect<HttpClient.HttpClient.With<E | FetchError | UnauthorizedError, R>, never, Self> =>
  Effect.map(tag, (bearer) => withBearer(bearer, options)(self))

/** @internal */
export const authorize = <E, R>(
  self: HttpClient.HttpClient.With<E, R>,
  options?: BearerHttpClient.Options
): Effect.Effect<HttpClient.HttpClient.With<E | FetchError | UnauthorizedError, R>, never, RenewableBearer> =>
  authorizeFrom(RenewableBearer, self, options)

/**
 * Folds the bearer's errors into `HttpClientError`, so the authorized client can stand in for `HttpClient`.
 *
 * @internal
 */
export const toHttpClientError = (
  request: HttpClientRequest.HttpClientRequest,
  error: HttpClientError.HttpClientError | FetchError | UnauthorizedError
): HttpClientError.HttpClientError => {
  switch (error._tag) {
    case "RequestError":
    case "ResponseError":
      return error
    case "UnauthorizedError":
      return new HttpClientError.ResponseError({
        request,
        response: error.response,
        reason: "StatusCode",
        description: error.message,
        cause: error
      })
    case "RenewalError":
    case "StoppedError":
      return new HttpClientError.RequestError({
        request,
        reason: "Transport",
        description: error.message,
        cause: error
      })
  }
}

/**
 * An authorized client that can stand in for `HttpClient`: the bearer's errors folded into `HttpClientError`.
 *
 * @internal
 */
export const asHttpClient = (
  authorized: HttpClient.HttpClient.With<HttpClientError.HttpClientError | FetchError | UnauthorizedError>
): HttpClient.HttpClient =>
  HttpClient.makeWith<never, never, HttpClientError.HttpClientError, never>(
    (effect) =>
      Effect.flatMap(effect, (request) =>
        Effect.mapError(authorized.execute(request), (error) => toHttpClientError(request, error))
      ),
    Effect.succeed
  )

/** @internal */
export const layerFor = <Self>(
  tag: Context.Tag<Self, BearerService>,
  options?: BearerHttpClient.Options
): Layer.Layer<HttpClient.HttpClient, never, HttpClient.HttpClient | Self> =>
  Layer.effect(
    HttpClient.HttpClient,
    Effect.gen(function* () {
      const client = yield* HttpClient.HttpClient
      return asHttpClient(yield* authorizeFrom(tag, client, options))
    })
  )

/** @internal */
export const layer = (
  options?: BearerHttpClient.Options
): Layer.Layer<HttpClient.HttpClient, never, HttpClient.HttpClient | RenewableBearer> =>
  layerFor(RenewableBearer, options)
