/**
 * An `HttpClient` that authorizes every request with the bearer's token: `Authorization: Bearer <token>`,
 * from a fresh `Receiver` per request.
 *
 * On `401 Unauthorized` it asks the receiver whether the request may try again; within the receiver's retry
 * budget (`maxRetries`, default 2 attempts) that invalidates the token, if it is still the cached one, and
 * the request is replayed with the renewed token. Many concurrent 401s for one token cause one renewal. A
 * request whose body cannot be sent twice (a stream) is not replayed. Other statuses pass through untouched.
 * When the budget is spent the caller gets the last `401` response, or, with `failOnUnauthorized: true`, an
 * `UnauthorizedError`. A token that cannot be had fails the request with the bearer's `RenewalError` or
 * `StoppedError`.
 *
 * Without `fetchOptions` a request waits at most 30 seconds for a token (`{ timeout: "30 seconds" }`), then
 * fails with a `RenewalError` of reason `Timeout`, so a hung token endpoint does not hold every request
 * forever. `fetchOptions` given by the caller replace that default as they are: without a `timeout` of their
 * own, a request waits until a token comes or the bearer stops.
 *
 * The current span gets `bearer.retried` (whether the request was replayed) and `bearer.attempts`. The token
 * is never logged, and nothing the client hands out carries it: every response, and every error of the inner
 * client (a transport `RequestError`, a `ResponseError`, also one from reading the body later), shows the
 * request as the caller made it, without the `Authorization` header, in every rendering (`String`,
 * `JSON.stringify`, `util.inspect` also with `showHidden`, `console.log`, `Cause.pretty`); a cause whose
 * message quotes the token is scrubbed. One thing beyond this module's control: a client that follows
 * redirects (`HttpClient.followRedirects`, before or after authorizing) sends the token to wherever a
 * redirect points, another origin included: follow redirects only where every target may see the token.
 *
 * @example
 * ```ts
 * import { FetchHttpClient, HttpClient } from "@effect/platform"
 * import { Effect } from "effect"
 * import { BearerHttpClient } from "effect-renewable-bearer"
 *
 * const program = Effect.gen(function* () {
 *   const client = yield* BearerHttpClient.authorize(yield* HttpClient.HttpClient)
 *   const response = yield* client.get("https://api.example.com/v1/me")
 *   return yield* response.json
 * }).pipe(Effect.provide(FetchHttpClient.layer))
 * ```
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import type * as Layer from "effect/Layer"
import * as Predicate from "effect/Predicate"
import type { FetchError } from "./Errors.js"
import type { FetchOptions } from "./FetchOptions.js"
import * as internal from "./internal/bearerHttpClient.js"
import type * as KeyedBearer from "./KeyedBearer.js"
import type * as Context from "effect/Context"
import type { RenewableBearer, Service as BearerService } from "./RenewableBearer.js"
import type { UnauthorizedError } from "./internal/errors.js"

const isHttpClient = (u: unknown): u is HttpClient.HttpClient.With<unknown, unknown> =>
  Predicate.hasProperty(u, HttpClient.TypeId)

/**
 * Options of the authorized client.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Fail with `UnauthorizedError` instead of returning the last `401` response. Default `false`. */
  readonly failOnUnauthorized?: boolean | undefined
  /**
   * Options of every token fetch and retry decision (a `timeout`, a `maxRetries` budget, …). Default
   * `{ timeout: "30 seconds" }`; given options are used as they are, so options without a `timeout` wait for
   * a token as long as it takes.
   */
  readonly fetchOptions?: FetchOptions | undefined
}

export {
  /**
   * The request was still `401 Unauthorized` when the retry budget was spent (or its body could not be
   * replayed). `request` is the request as the caller made it, without the `Authorization` header. `response`
   * is the last `401`, whose body the caller may still read (not enumerable); its `request` is the caller's
   * too, so no rendering of the error shows the token.
   *
   * @since 0.1.0
   * @category errors
   */
  UnauthorizedError
} from "./internal/errors.js"

/**
 * Authorizes a client with the given bearer, data-first (`withBearer(client, bearer, options?)`) or data-last
 * (`client.pipe(withBearer(bearer, options?))`). Fails with `UnauthorizedError` instead of returning a `401`
 * when `failOnUnauthorized` is `true`. The error type has `UnauthorizedError` unless `failOnUnauthorized` is
 * known to be `false` or absent (a `boolean` variable may be `true`, so it keeps it).
 *
 * @example
 * ```ts
 * import { HttpClient } from "@effect/platform"
 * import { Effect } from "effect"
 * import { BearerHttpClient, RenewableBearer } from "effect-renewable-bearer"
 *
 * const makeClient = Effect.gen(function* () {
 *   const bearer = yield* RenewableBearer.RenewableBearer
 *   const client = yield* HttpClient.HttpClient
 *   return client.pipe(BearerHttpClient.withBearer(bearer, { failOnUnauthorized: true }))
 * })
 *
 * // The same, data-first.
 * const makeClientFirst = Effect.gen(function* () {
 *   const bearer = yield* RenewableBearer.RenewableBearer
 *   return BearerHttpClient.withBearer(yield* HttpClient.HttpClient, bearer)
 * })
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const withBearer: {
  (
    bearer: RenewableBearer["Type"],
    options: Options & { readonly failOnUnauthorized: true }
  ): <E, R>(
    self: HttpClient.HttpClient.With<E, R>
  ) => HttpClient.HttpClient.With<E | FetchError | UnauthorizedError, R>
  (
    bearer: RenewableBearer["Type"],
    options?: Options & { readonly failOnUnauthorized?: false | undefined }
  ): <E, R>(self: HttpClient.HttpClient.With<E, R>) => HttpClient.HttpClient.With<E | FetchError, R>
  (
    bearer: RenewableBearer["Type"],
    options?: Options
  ): <E, R>(
    self: HttpClient.HttpClient.With<E, R>
  ) => HttpClient.HttpClient.With<E | FetchError | UnauthorizedError, R>
  <E, R>(
    self: HttpClient.HttpClient.With<E, R>,
    bearer: RenewableBearer["Type"],
    options: Options & { readonly failOnUnauthorized: true }
  ): HttpClient.HttpClient.With<E | FetchError | UnauthorizedError, R>
  <E, R>(
    self: HttpClient.HttpClient.With<E, R>,
    bearer: RenewableBearer["Type"],
    options?: Options & { readonly failOnUnauthorized?: false | undefined }
  ): HttpClient.HttpClient.With<E | FetchError, R>
  <E, R>(
    self: HttpClient.HttpClient.With<E, R>,
    bearer: RenewableBearer["Type"],
    options?: Options
  ): HttpClient.HttpClient.With<E | FetchError | UnauthorizedError, R>
} = dual(
  (args) => isHttpClient(args[0]),
  <E, R>(self: HttpClient.HttpClient.With<E, R>, bearer: RenewableBearer["Type"], options?: Options) =>
    internal.withBearer(bearer, options)(self)
)

/**
 * Authorizes a client with the `RenewableBearer` from context (see `withBearer`).
 *
 * @since 0.1.0
 * @category combinators
 */
export const authorize: {
  <E, R>(
    self: HttpClient.HttpClient.With<E, R>,
    options: Options & { readonly failOnUnauthorized: true }
  ): Effect.Effect<HttpClient.HttpClient.With<E | FetchError | UnauthorizedError, R>, never, RenewableBearer>
  <E, R>(
    self: HttpClient.HttpClient.With<E, R>,
    options?: Options & { readonly failOnUnauthorized?: false | undefined }
  ): Effect.Effect<HttpClient.HttpClient.With<E | FetchError, R>, never, RenewableBearer>
  <E, R>(
    self: HttpClient.HttpClient.With<E, R>,
    options?: Options
  ): Effect.Effect<HttpClient.HttpClient.With<E | FetchError | UnauthorizedError, R>, never, RenewableBearer>
} = internal.authorize as any

/**
 * Replaces the `HttpClient` in context with an authorized one. An `HttpClient` can only fail with
 * `HttpClientError`, so here a `RenewalError` or `StoppedError` becomes a `RequestError` (reason
 * `Transport`) and an `UnauthorizedError` a `ResponseError` (reason `StatusCode`), each with the original
 * error as `cause`. Use `authorize` to keep them apart in the error channel. As with `authorize`, no
 * response or error shows the `Authorization` header. The token source must not use the authorized client:
 * provide the plain client to it, as below.
 *
 * @example
 * ```ts
 * import { FetchHttpClient } from "@effect/platform"
 * import { Layer } from "effect"
 * import { BearerHttpClient, EnvTokenSource, RenewableBearer } from "effect-renewable-bearer"
 *
 * const HttpLive = BearerHttpClient.layer().pipe(
 *   Layer.provide(RenewableBearer.RenewableBearerLive),
 *   Layer.provide(EnvTokenSource.layer("API_TOKEN")),
 *   Layer.provide(FetchHttpClient.layer)
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: (
  options?: Options
) => Layer.Layer<HttpClient.HttpClient, never, HttpClient.HttpClient | RenewableBearer> = internal.layer

/**
 * Authorizes a client with the bearer of `tag`, such as a named bearer declared with `RenewableBearer.Tag`
 * (see `withBearer`).
 *
 * @example
 * ```ts
 * import { HttpClient } from "@effect/platform"
 * import { Effect } from "effect"
 * import { BearerHttpClient, RenewableBearer } from "effect-renewable-bearer"
 *
 * class BillingBearer extends RenewableBearer.Tag("app/BillingBearer")<BillingBearer>() {}
 *
 * const billingClient = Effect.gen(function* () {
 *   return yield* BearerHttpClient.authorizeFrom(BillingBearer, yield* HttpClient.HttpClient)
 * })
 * ```
 *
 * @since 0.2.0
 * @category combinators
 */
export const authorizeFrom: {
  <Self, E, R>(
    tag: Context.Tag<Self, BearerService>,
    self: HttpClient.HttpClient.With<E, R>,
    options: Options & { readonly failOnUnauthorized: true }
  ): Effect.Effect<HttpClient.HttpClient.With<E | FetchError | UnauthorizedError, R>, never, Self>
  <Self, E, R>(
    tag: Context.Tag<Self, BearerService>,
    self: HttpClient.HttpClient.With<E, R>,
    options?: Options & { readonly failOnUnauthorized?: false | undefined }
  ): Effect.Effect<HttpClient.HttpClient.With<E | FetchError, R>, never, Self>
  <Self, E, R>(
    tag: Context.Tag<Self, BearerService>,
    self: HttpClient.HttpClient.With<E, R>,
    options?: Options
  ): Effect.Effect<HttpClient.HttpClient.With<E | FetchError | UnauthorizedError, R>, never, Self>
} = internal.authorizeFrom as any

/**
 * `layer` for the bearer of `tag`, such as a named bearer declared with `RenewableBearer.Tag`: replaces the
 * `HttpClient` in context with one authorized by that bearer.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerFor: <Self>(
  tag: Context.Tag<Self, BearerService>,
  options?: Options
) => Layer.Layer<HttpClient.HttpClient, never, HttpClient.HttpClient | Self> = internal.layerFor

/**
 * Authorizes each request with a token of a `KeyedBearer`, for the key `keyOf` picks from the request (its
 * origin, a header, …): one client for many audiences or tenants. The key's bearer stays in use for the
 * whole request, replays after a `401` included. The fetch options' `timeout` (30 seconds by default) also
 * bounds the wait for a free slot when every keyed bearer is in use. Otherwise as `withBearer`.
 *
 * @example
 * ```ts
 * import { HttpClient } from "@effect/platform"
 * import { Data, Effect } from "effect"
 * import { BearerHttpClient, KeyedBearer, Token, TokenSource } from "effect-renewable-bearer"
 *
 * class Audience extends Data.Class<{ readonly audience: string }> {}
 *
 * const makeClient = Effect.gen(function* () {
 *   const bearers = yield* KeyedBearer.make({
 *     source: (key: Audience) => Effect.succeed(TokenSource.fromToken(Token.make(`for ${key.audience}`))),
 *     label: () => "downstream"
 *   })
 *   const client = yield* HttpClient.HttpClient
 *   // One token per origin: each API gets a token for its own audience.
 *   return client.pipe(
 *     BearerHttpClient.withKeyedBearer(bearers, (request) => new Audience({ audience: new URL(request.url).origin }))
 *   )
 * })
 * ```
 *
 * @since 0.2.0
 * @category combinators
 */
export const withKeyedBearer: {
  <K>(
    keyed: KeyedBearer.KeyedBearer<K>,
    keyOf: (request: HttpClientRequest.HttpClientRequest) => K,
    options: Options & { readonly failOnUnauthorized: true }
  ): <E, R>(
    self: HttpClient.HttpClient.With<E, R>
  ) => HttpClient.HttpClient.With<E | FetchError | UnauthorizedError, R>
  <K>(
    keyed: KeyedBearer.KeyedBearer<K>,
    keyOf: (request: HttpClientRequest.HttpClientRequest) => K,
    options?: Options & { readonly failOnUnauthorized?: false | undefined }
  ): <E, R>(self: HttpClient.HttpClient.With<E, R>) => HttpClient.HttpClient.With<E | FetchError, R>
  <K>(
    keyed: KeyedBearer.KeyedBearer<K>,
    keyOf: (request: HttpClientRequest.HttpClientRequest) => K,
    options?: Options
  ): <E, R>(
    self: HttpClient.HttpClient.With<E, R>
  ) => HttpClient.HttpClient.With<E | FetchError | UnauthorizedError, R>
} = internal.withKeyedBearer as any
