/**
 * Keyed bearers: one renewable bearer per key (an audience, a scope, a tenant), built on first use and shared
 * by every caller of that key, closed when idle, bounded by a capacity.
 *
 * A key is any value with `Equal`/`Hash`, such as a `Data` struct. The user gives a function from key to
 * token source (a token exchange for the key's audience, a client per tenant). Each key's bearer is a
 * `RenewableBearer` with the options given here; its `name` (metric label, span attribute, log annotation) is
 * `label(key)`, a constant by default, so metrics stay bounded whatever the keys: never the raw key.
 *
 * - A key's bearer is built on the first use of the key; concurrent first uses share the build, so a cold
 *   herd over 100 keys makes exactly 100 source calls.
 * - A bearer is in use while a `fetch` or a `use` of its key runs, or while the scope of a `get` is open. A
 *   bearer no longer in use for `idleTimeToLive` is closed: its fiber stopped, and the next use of its key
 *   builds a new one.
 * - At `capacity`, a new key evicts the least recently used idle bearer. When every bearer is in use, the new
 *   key waits until one is idle; a `timeout` in the fetch options bounds that wait too, failing with a
 *   `RenewalError` of reason `Timeout`.
 * - Closing the scope of the service stops every bearer: their waiting callers fail with `StoppedError`, as
 *   does every later use.
 *
 * The service is built on `MutableHashMap` rather than Effect's `RcMap`: at capacity `RcMap` fails instead of
 * evicting an idle entry, and it keeps one fiber per idle entry to wait out `idleTimeToLive`; here one fiber
 * does that for the whole map.
 *
 * Without `storeKey`, keyed bearers do not use a `TokenStore` in context (one store key for all would hand
 * one key's token to another); with it, each key's bearer shares its token under `storeKey(key)`.
 *
 * @example
 * ```ts
 * import { Data, Effect } from "effect"
 * import { KeyedBearer, Token, TokenSource } from "effect-renewable-bearer"
 *
 * class Audience extends Data.Class<{ readonly audience: string }> {}
 *
 * class AudienceBearers extends KeyedBearer.Tag("app/AudienceBearers")<AudienceBearers, Audience>() {}
 *
 * const AudienceBearersLive = KeyedBearer.layer(AudienceBearers, {
 *   source: (key: Audience) => Effect.succeed(TokenSource.fromToken(Token.make(`token-for-${key.audience}`))),
 *   idleTimeToLive: "10 minutes",
 *   capacity: 1_000
 * })
 *
 * const program = Effect.gen(function* () {
 *   const bearers = yield* AudienceBearers
 *   return yield* bearers.fetch(new Audience({ audience: "https://billing.example.com" }))
 * }).pipe(Effect.provide(AudienceBearersLive))
 * ```
 *
 * @since 0.2.0
 */
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type { FetchError, InvalidOptionsError } from "./Errors.js"
import type { FetchOptions } from "./FetchOptions.js"
import * as internal from "./internal/keyedBearer.js"
import type * as RenewableBearer from "./RenewableBearer.js"
import type * as Token from "./Token.js"
import type { TokenSource } from "./TokenSource.js"

/**
 * The keyed bearer service.
 *
 * @since 0.2.0
 * @category models
 */
export interface KeyedBearer<in K> {
  /**
   * The token of `key`'s bearer, building the bearer on first use (see `RenewableBearer`'s `fetch`). A
   * `timeout` also bounds the wait for a free slot at capacity.
   */
  readonly fetch: (key: K, options?: FetchOptions) => Effect.Effect<Token.Token, FetchError>
  /**
   * Runs `f` with `key`'s bearer, which stays in use (neither closed when idle nor evicted) until `f` ends.
   * A `timeout` bounds the wait for a free slot at capacity.
   */
  readonly use: <A, E, R>(
    key: K,
    f: (bearer: RenewableBearer.Service) => Effect.Effect<A, E, R>,
    options?: { readonly timeout?: Duration.DurationInput | undefined }
  ) => Effect.Effect<A, E | FetchError, R>
  /** `key`'s bearer, in use until the scope closes. */
  readonly get: (key: K) => Effect.Effect<RenewableBearer.Service, FetchError, Scope.Scope>
  /** How many bearers are alive (in use, idle, or being built). */
  readonly size: Effect.Effect<number>
  /** How many of them are idle (candidates for eviction, closed after `idleTimeToLive`). */
  readonly idleSize: Effect.Effect<number>
}

/**
 * Options of the keyed bearer service.
 *
 * @since 0.2.0
 * @category models
 */
export interface Options<K, E = never, R = never> {
  /**
   * The token source of a key, made on the key's first use (and again after its bearer was closed). A
   * failure fails that use with a `RenewalError` of reason `SourceError` (the next use tries again).
   */
  readonly source: (key: K) => Effect.Effect<TokenSource["Type"], E, R>
  /** Options of every key's bearer (their `name` is `label(key)`, their store key `storeKey(key)`). */
  readonly bearer?: Omit<RenewableBearer.Options, "name" | "storeKey"> | undefined
  /** Close a bearer that has not been in use for this long. Default 10 minutes; `Duration.infinity` never. */
  readonly idleTimeToLive?: Duration.DurationInput | undefined
  /** The most bearers alive at once, a positive integer. Default `Infinity`. */
  readonly capacity?: number | undefined
  /**
   * The bearer's name in metric labels, span attributes and log annotations: keep the number of labels
   * bounded, and never put a secret in one. Default: `"keyed"` for every key.
   */
  readonly label?: ((key: K) => string) | undefined
  /** The key of a key's token in a shared `TokenStore`. Without it, keyed bearers do not use the store. */
  readonly storeKey?: ((key: K) => string) | undefined
}

/**
 * Builds the service in the current scope; closing the scope stops every bearer. Fails with
 * `InvalidOptionsError` for options out of range.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make: <K, E = never, R = never>(
  options: Options<K, E, R>
) => Effect.Effect<KeyedBearer<K>, InvalidOptionsError, R | Scope.Scope> = internal.make

/**
 * Declares a tag for a keyed bearer service whose keys are `K`.
 *
 * @since 0.2.0
 * @category tags
 */
export const Tag =
  <const Id extends string>(id: Id) =>
  <Self, K>(): Context.TagClass<Self, Id, KeyedBearer<K>> =>
    Context.Tag(id)<Self, KeyedBearer<K>>()

/**
 * The service as a layer for `tag`.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = <Self, K, E = never, R = never>(
  tag: Context.Tag<Self, KeyedBearer<K>>,
  options: Options<K, E, R>
): Layer.Layer<Self, InvalidOptionsError, Exclude<R, Scope.Scope>> => Layer.scoped(tag, make(options))
