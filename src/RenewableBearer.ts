/**
 * The renewable bearer: one token, kept fresh in the background by a fiber that belongs to the layer's scope,
 * handed to every request without waiting while it is fresh.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { RenewableBearer, Token, TokenSource } from "effect-renewable-bearer"
 *
 * const program = Effect.gen(function* () {
 *   const bearer = yield* RenewableBearer.RenewableBearer
 *   const token = yield* bearer.fetch()
 *   yield* Effect.log(`got ${token}`) // the value prints as <redacted>
 * })
 *
 * program.pipe(
 *   Effect.provide(
 *     RenewableBearer.RenewableBearerLive.pipe(Layer.provide(TokenSource.layerToken(Token.make("s3cr3t"))))
 *   ),
 *   Effect.runPromise
 * )
 * ```
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type { InvalidOptionsError, RenewalError } from "./Errors.js"
import * as internal from "./internal/build.js"
import * as options from "./internal/options.js"
import type { TokenSource } from "./TokenSource.js"
import { RenewableBearer } from "./internal/tags.js"

/**
 * Ten years: how long the bearer keeps a token that never expires before it renews it, and the original
 * module's `VERY_LONG_TIMEOUT`.
 *
 * @since 0.3.0
 * @category constants
 */
export const VeryLongTimeout: Duration.Duration = options.VeryLongTimeout

export {
  /**
   * The renewable bearer service.
   *
   * @since 0.1.0
   * @category tags
   */
  RenewableBearer
} from "./internal/tags.js"

/**
 * The bearer's interface: what `RenewableBearer`, and every named bearer declared with `Tag`, hands out.
 *
 * @since 0.2.0
 * @category models
 */
export type Service = RenewableBearer["Type"]

/**
 * Options of the bearer. Every field is optional; the defaults are the original module's.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Attempts a receiver may make before `canRetry` says no. Default `2`. */
  readonly maxRetries?: number | undefined
  /** Refresh after this fraction of the token's remaining lifetime, in (0, 1]. Default `0.9`. */
  readonly lifetimeSafeFraction?: number | undefined
  /** First backoff after a failure, and the least delay between two scheduled attempts. Default 1 second. */
  readonly initialRetryTimeout?: Duration.DurationInput | undefined
  /** The longest backoff; also the backoff after a permanent (non-retryable) failure. Default 1 minute. */
  readonly maxRetryTimeout?: Duration.DurationInput | undefined
  /** Growth of the backoff per consecutive failure, at least 1. Default `1.5`. */
  readonly retryTimeoutExponent?: number | undefined
  /** Bound of one source call; a slower call is interrupted and counts as a failure. Default 5 seconds. */
  readonly refreshRequestTimeout?: Duration.DurationInput | undefined
  /**
   * Random spread, in [0, 1): a backoff varies by ± this fraction; a scheduled refresh comes up to this
   * fraction earlier (never later). Default `0.2`.
   */
  readonly jitter?: number | undefined
  /**
   * Treat a token as expired this much before its expiration, against clock skew between this machine and
   * the server. Capped at half of the part of the lifetime after the refresh point,
   * `(1 - lifetimeSafeFraction) / 2` of the lifetime when received, so a fresh token is never counted as
   * expired and a token whose refresh fails is still served for a while. Default 10 seconds.
   */
  readonly expiryMargin?: Duration.DurationInput | undefined
  /** Start fetching when the layer is built instead of on the first fetch. Default `false`. */
  readonly eager?: boolean | undefined
  /**
   * Fail fast: building the bearer waits for its first token, at most this long (`true`: 30 seconds), so a
   * wrong secret or an unreachable token endpoint fails the layer with the `RenewalError` at start-up instead
   * of failing requests later. A permanent failure (a `TokenSourceError` with `retryable: false`, such as an
   * OAuth 2.0 `invalid_client` or a missing environment variable) fails the build at once; a transient one
   * is retried on the usual backoff until the bound, which then fails the build with a `Timeout`
   * `RenewalError` whose `cause` is the last attempt's. Default `false`: the layer is built without waiting.
   */
  readonly awaitFirstToken?: boolean | Duration.DurationInput | undefined
  /** Names this bearer in metric labels, log annotations and span attributes. Default `"default"`. */
  readonly name?: string | undefined
  /**
   * The key of this bearer's token in a shared `TokenStore`, when one is in the context: name the source's
   * configuration (token URL, client id, scope), never its secret. Default: the bearer's `name`.
   */
  readonly storeKey?: string | undefined
}

/**
 * Why building a bearer failed: `InvalidOptionsError` for options out of range; `RenewalError` only with
 * `awaitFirstToken`, when no first token came.
 *
 * @since 0.2.0
 * @category errors
 */
export type BuildError = InvalidOptionsError | RenewalError

/**
 * Builds the bearer in the current scope: the background fiber is forked into it and closing it stops the
 * bearer. Fails with `InvalidOptionsError` for options out of range and, with `awaitFirstToken`, with the
 * `RenewalError` when no first token came.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (
  options?: Options
) => Effect.Effect<RenewableBearer["Type"], BuildError, TokenSource | Scope.Scope> = internal.make

/**
 * The bearer as a layer. Fails to build with `InvalidOptionsError` for options out of range and, with
 * `awaitFirstToken`, with the `RenewalError` when no first token came.
 *
 * @example
 * ```ts
 * import { RenewableBearer } from "effect-renewable-bearer"
 *
 * // Built only once it holds a token: a wrong secret fails the application at start-up.
 * const BearerLive = RenewableBearer.layer({ refreshRequestTimeout: "2 seconds", awaitFirstToken: "10 seconds" })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: Options): Layer.Layer<RenewableBearer, BuildError, TokenSource> =>
  Layer.scoped(RenewableBearer, make(options))

/**
 * The bearer as a layer, its options read from `Config`.
 *
 * @example
 * ```ts
 * import { Config } from "effect"
 * import { RenewableBearer } from "effect-renewable-bearer"
 *
 * const BearerLive = RenewableBearer.layerConfig({
 *   refreshRequestTimeout: Config.duration("TOKEN_REQUEST_TIMEOUT").pipe(Config.withDefault("5 seconds")),
 *   maxRetries: Config.integer("TOKEN_MAX_RETRIES").pipe(Config.withDefault(2))
 * })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<Options>
): Layer.Layer<RenewableBearer, BuildError | ConfigError.ConfigError, TokenSource> =>
  Layer.scoped(RenewableBearer, Effect.flatMap(Config.unwrap(config), make))

/**
 * The default bearer layer: `layer()` with the original module's defaults.
 *
 * @since 0.1.0
 * @category layers
 */
export const RenewableBearerLive: Layer.Layer<RenewableBearer, never, TokenSource> = Layer.orDie(layer())

/**
 * Declares a named bearer: a tag of its own, so a program can hold two or more bearers in one context, each
 * with its own source, options, metric and span label, log annotation and store key. Build it with
 * `layerFor`; the tag's key is the bearer's default `name`.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { RenewableBearer, Token, TokenSource } from "effect-renewable-bearer"
 *
 * class BillingBearer extends RenewableBearer.Tag("app/BillingBearer")<BillingBearer>() {}
 * class SearchBearer extends RenewableBearer.Tag("app/SearchBearer")<SearchBearer>() {}
 *
 * const BearersLive = Layer.mergeAll(
 *   RenewableBearer.layerFor(BillingBearer, { source: TokenSource.fromToken(Token.make("billing")) }),
 *   RenewableBearer.layerFor(SearchBearer, {
 *     source: TokenSource.fromToken(Token.make("search")),
 *     refreshRequestTimeout: "2 seconds"
 *   })
 * )
 *
 * const program = Effect.gen(function* () {
 *   const billing = yield* (yield* BillingBearer).fetch()
 *   const search = yield* (yield* SearchBearer).fetch()
 *   return [billing, search] as const
 * }).pipe(Effect.provide(BearersLive))
 * ```
 *
 * @since 0.2.0
 * @category tags
 */
export const Tag =
  <const Id extends string>(id: Id) =>
  <Self>(): Context.TagClass<Self, Id, Service> =>
    Context.Tag(id)<Self, Service>()

/**
 * Where a named bearer gets its tokens: a `TokenSource` service itself, or an effect that makes one (such as
 * `OAuth2TokenSource.clientCredentials(...)`, or a tag of one's own for a source provided elsewhere).
 *
 * @since 0.2.0
 * @category models
 */
export type SourceInput<E = never, R = never> = TokenSource["Type"] | Effect.Effect<TokenSource["Type"], E, R>

/**
 * Options of a named bearer: the bearer's options and, optionally, its own `source`. Without `source` it uses
 * the `TokenSource` in context.
 *
 * @since 0.2.0
 * @category models
 */
export interface NamedOptions<E = never, R = never> extends Options {
  readonly source?: SourceInput<E, R> | undefined
}

/**
 * Builds a bearer in the current scope with a source of its own (see `layerFor`); `name` defaults to
 * `defaultName`.
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeWith: {
  <E = never, R = never>(
    options: NamedOptions<E, R> & { readonly source: SourceInput<E, R> },
    defaultName?: string
  ): Effect.Effect<Service, BuildError | E, R | Scope.Scope>
  (options?: Options, defaultName?: string): Effect.Effect<Service, BuildError, TokenSource | Scope.Scope>
} = internal.makeWith

/**
 * The layer of a named bearer declared with `Tag`: its own source (given here, or the `TokenSource` in
 * context), its own options. The bearer's `name` (metric label, span attribute, log annotation, and the
 * default store key) defaults to the tag's key. Fails to build with `InvalidOptionsError` for options out of
 * range.
 *
 * @example
 * ```ts
 * import { FetchHttpClient } from "@effect/platform"
 * import { Layer, Redacted } from "effect"
 * import { OAuth2TokenSource, RenewableBearer } from "effect-renewable-bearer"
 *
 * class BillingBearer extends RenewableBearer.Tag("app/BillingBearer")<BillingBearer>() {}
 *
 * const BillingBearerLive = RenewableBearer.layerFor(BillingBearer, {
 *   source: OAuth2TokenSource.clientCredentials({
 *     tokenUrl: "https://auth.example.com/oauth2/token",
 *     clientId: "billing",
 *     clientSecret: Redacted.make("s3cr3t")
 *   }),
 *   eager: true
 * }).pipe(Layer.provide(FetchHttpClient.layer))
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layerFor: {
  <Self, E = never, R = never>(
    tag: Context.Tag<Self, Service>,
    options: NamedOptions<E, R> & { readonly source: SourceInput<E, R> }
  ): Layer.Layer<Self, BuildError | E, Exclude<R, Scope.Scope>>
  <Self>(tag: Context.Tag<Self, Service>, options?: Options): Layer.Layer<Self, BuildError, TokenSource>
} = <Self, E, R>(
  tag: Context.Tag<Self, Service>,
  options?: NamedOptions<E, R>
): Layer.Layer<Self, BuildError | E, Exclude<R, Scope.Scope> | TokenSource> =>
  Layer.scoped(tag, makeWith(options as NamedOptions<E, R> & { readonly source: SourceInput<E, R> }, tag.key))
