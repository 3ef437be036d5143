/**
 * A `TokenStore` on Redis, for a fleet of processes on many machines. A token is stored with an expiry equal
 * to its remaining lifetime (`PX`); the refresh lock is `SET NX PX`, released only by its owner (a
 * compare-and-delete script); a lock key without a TTL, or with a longer one than the taker's, is stale and
 * taken over in the same atomic step. Records are read only up to `maxRecordBytes`. Refused credentials are
 * reported as such (reason `Unauthenticated`), not as an unreachable Redis. With `encryptionKey` the records are sealed with AES-256-GCM, so Redis never
 * holds a token in clear.
 *
 * Redis is never in a request's way: every command is bounded by `operationTimeout`, commands fail at once
 * while the connection is down (no offline queue), and a failed store operation makes the bearer log a
 * warning and call its source itself. The client reconnects in the background and is closed with the layer.
 *
 * `ioredis` is an optional peer dependency, loaded when the store is built. Node only (`node:crypto`,
 * `ioredis`), so it is not re-exported from the package root: import it from
 * `effect-renewable-bearer/RedisTokenStore`.
 *
 * @example
 * ```ts
 * import { Config, Layer } from "effect"
 * import { RenewableBearer, Token, TokenSource } from "effect-renewable-bearer"
 * import * as RedisTokenStore from "effect-renewable-bearer/RedisTokenStore"
 *
 * const BearerLive = RenewableBearer.layer({ storeKey: "idp.example.com/client-42" }).pipe(
 *   Layer.provide(TokenSource.layerToken(Token.make("s3cr3t"))),
 *   Layer.provide(
 *     RedisTokenStore.layerConfig({
 *       url: Config.redacted("REDIS_URL"),
 *       keyPrefix: Config.succeed("my-service:tokens:"),
 *       encryptionKey: Config.redacted("TOKEN_STORE_KEY")
 *     })
 *   )
 * )
 * ```
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as internal from "./internal/redisTokenStore.js"
import { TokenStore, type TokenStoreError } from "./TokenStore.js"

/**
 * Options of the Redis store. Give a `url` (`redis://user:password@host:6379/0`, `rediss://` for TLS) or the
 * separate fields; fields given next to a `url` override it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The connection URL; it may hold a password, so prefer `Redacted`. */
  readonly url?: Redacted.Redacted<string> | string | undefined
  readonly host?: string | undefined
  readonly port?: number | undefined
  readonly db?: number | undefined
  readonly username?: string | undefined
  readonly password?: Redacted.Redacted<string> | undefined
  /** Connect with TLS (also implied by a `rediss://` URL). Default `false`. */
  readonly tls?: boolean | undefined
  /** Prefix of every key this store writes, such as `"my-service:tokens:"`. */
  readonly keyPrefix: string
  /** Seal the records with AES-256-GCM under a key derived from this secret (see `FileTokenStore`). */
  readonly encryptionKey?: Redacted.Redacted<string> | undefined
  /**
   * The most bytes of a record this store reads or writes; a larger one fails with `TokenStoreError` reason
   * `TooLarge` (when reading, Redis checks the size first: the record is never sent). Default
   * `DEFAULT_MAX_RECORD_BYTES` (64 KiB).
   */
  readonly maxRecordBytes?: number | undefined
  /** Bound of each Redis command. Default 500 millis. */
  readonly operationTimeout?: Duration.DurationInput | undefined
  /** Bound of a connection attempt, and of the wait for the first connection at build. Default 2 seconds. */
  readonly connectTimeout?: Duration.DurationInput | undefined
}

/**
 * The default `maxRecordBytes`: 64 KiB, room for a sealed 16 KiB token several times over.
 *
 * @since 0.2.0
 * @category constants
 */
export const DEFAULT_MAX_RECORD_BYTES: number = internal.DEFAULT_MAX_RECORD_BYTES

/**
 * Builds the store in the current scope: the client is closed when the scope closes. Redis being unreachable
 * does not fail the build (the store fails its operations until Redis is back); failing to load `ioredis`
 * does, with a `TokenStoreError` (operation `open`), and so does an option of the wrong type or out of range
 * (reason `InvalidOptions`: `operationTimeout` or `connectTimeout` not a finite positive duration, `tls` not
 * a boolean, `port` not an integer, a `password` not `Redacted`, …).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (options: Options) => Effect.Effect<TokenStore["Type"], TokenStoreError, Scope.Scope> =
  internal.make

/**
 * The Redis store as a layer; the client lives as long as the layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<TokenStore, TokenStoreError> =>
  Layer.scoped(TokenStore, internal.make(options))

/**
 * The Redis store, its options read from `Config` (URL, password and key with `Config.redacted`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<Options>
): Layer.Layer<TokenStore, TokenStoreError | ConfigError.ConfigError> =>
  Layer.scoped(TokenStore, Effect.flatMap(Config.unwrap(config), internal.make))
