/**
 * A token store shared by many processes, so that a fleet of replicas asks the token endpoint for one token
 * per lifetime instead of one per replica. The bearer consults it when a `TokenStore` is in its context:
 * before it calls its source it adopts a token another process has already renewed, and otherwise it takes
 * the store's refresh lock, calls the source and writes the token for the others. Without a store the bearer
 * works exactly as before.
 *
 * Stores: `layerMemory` (one process, for tests), `FileTokenStore` (one machine), `RedisTokenStore` (a fleet).
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { RenewableBearer, TestTokenSource, TokenStore } from "effect-renewable-bearer"
 *
 * // Two bearers over one in-memory store share one token.
 * const BearerLive = RenewableBearer.RenewableBearerLive.pipe(
 *   Layer.provide(TestTokenSource.layer([TestTokenSource.token("t1", { expiresIn: "1 hour" })])),
 *   Layer.provide(TokenStore.layerMemory)
 * )
 * ```
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as internal from "./internal/tokenStore.js"
import type * as Token from "./Token.js"
import type { TokenSource } from "./TokenSource.js"
import { TokenStore } from "./internal/tags.js"
import type { TokenStoreError } from "./Errors.js"

/**
 * A token as a store holds it: the token and the instant (epoch millis, by the writer's clock) it was
 * written, from which a reader tells how much of its lifetime is left.
 *
 * @since 0.1.0
 * @category models
 */
export interface StoredToken {
  readonly token: Token.Token
  readonly writtenAt: number
}

export {
  /**
   * A store operation failed (see `Errors.TokenStoreError`, where it lives).
   *
   * @since 0.1.0
   * @category errors
   */
  TokenStoreError,
  /**
   * What a store was doing when it failed (see `Errors.TokenStoreOperation`).
   *
   * @since 0.1.0
   * @category errors
   */
  type TokenStoreOperation,
  /**
   * Why a store operation failed (see `Errors.TokenStoreErrorReason`).
   *
   * @since 0.1.0
   * @category errors
   */
  type TokenStoreErrorReason
} from "./Errors.js"

export {
  /**
   * The store service. A key names a source's configuration (say, the token URL and client id), never a
   * secret. Every operation may fail with `TokenStoreError`; locks expire by themselves, so a dead holder never
   * blocks anyone for longer than the lock's `ttl`.
   *
   * @since 0.1.0
   * @category tags
   */
  TokenStore
} from "./internal/tags.js"

/**
 * How a source shares its tokens through a store. The bearer derives every timing from its own options (see
 * `withStore`); set them here only when wrapping a source by hand.
 *
 * @since 0.1.0
 * @category models
 */
export interface SharedOptions {
  /** The store key: names the source's configuration, never its secret. */
  readonly key: string
  /**
   * How long the refresh lock lives if its holder never releases it (a crashed process). Default 5 seconds:
   * the bearer uses its `refreshRequestTimeout`, which bounds the source call the lock protects, so a live
   * holder's lock never expires under it.
   */
  readonly lockTtl?: Duration.DurationInput | undefined
  /**
   * How long a process that finds the lock taken waits for the holder's token before it calls the source
   * itself. Default 3.75 seconds (three quarters of the default `refreshRequestTimeout`). It is shorter than
   * `lockTtl` on purpose: nobody is stalled for the whole lock. The trade-off: when a holder dies, a waiter
   * that came less than `lockTtl - waitTimeout` after it took the lock gives up before the lock expires and
   * calls the source itself (one call each, its token shared); a later one takes the expired lock over.
   */
  readonly waitTimeout?: Duration.DurationInput | undefined
  /** How often a waiting process looks at the store. Default 100 millis. */
  readonly pollInterval?: Duration.DurationInput | undefined
  /** The bound of each store operation; a slower one counts as a store failure. Default 1 second. */
  readonly operationTimeout?: Duration.DurationInput | undefined
  /**
   * A stored token is adopted while less than this fraction of its lifetime (counted from when it was
   * written) has passed. The bearer passes its `lifetimeSafeFraction`. Default `0.9`.
   */
  readonly freshFraction?: number | undefined
  /** Names the bearer in log annotations. Default `"default"`. */
  readonly name?: string | undefined
}

/**
 * Wraps a source so that it shares its tokens through `store`; fails with a `TokenStoreError` (operation
 * `open`, reason `InvalidOptions`) if an option is not valid (a negative or infinite duration, a
 * `freshFraction` outside (0, 1]). One `fetch`:
 *
 * 1. adopts the stored token if it is newer than the last one this wrapper handed out and still fresh;
 * 2. otherwise takes the refresh lock, looks again, calls the source, writes the token, releases the lock;
 * 3. if the lock is taken, polls the store until the holder's token appears, the lock expires (then it takes
 *    the lock itself) or `waitTimeout` passes (then it calls the source itself);
 * 4. if the store fails, logs a warning and calls the source itself: the store never fails a fetch.
 *
 * The bearer does this by itself when a `TokenStore` is in its context; call `withStore` only to share a
 * source outside a bearer.
 *
 * @since 0.1.0
 * @category combinators
 */
export const withStore: (
  source: TokenSource["Type"],
  store: TokenStore["Type"],
  options: SharedOptions
) => Effect.Effect<TokenSource["Type"], TokenStoreError> = internal.make

/**
 * An in-memory store for one process: the tokens and locks live in the layer's instance. Time is read from
 * Effect's `Clock`, so lock expiry follows `TestClock` in tests.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory: Effect.Effect<TokenStore["Type"]> = internal.makeMemory

/**
 * The in-memory store as a layer (see `makeMemory`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<TokenStore> = Layer.effect(TokenStore, internal.makeMemory)
