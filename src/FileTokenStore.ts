/**
 * A `TokenStore` on the file system, for the processes of one machine (workers of a server, CLI invocations,
 * sidecars sharing a volume). One file per key in a directory only its owner can enter (`0700`, files
 * `0600`); a token is replaced atomically (written to a temporary file, then renamed); the refresh lock is a
 * lock file created exclusively, holding its owner and expiry, and broken once it has expired. A corrupt or
 * truncated file reads as no token, never as a crash. With `encryptionKey` the records are sealed with
 * AES-256-GCM.
 *
 * Use it on a local file system: the lock relies on atomic `link` and `rename`, and lock expiry compares the
 * clocks of the processes that share the directory.
 *
 * Node only (`node:crypto`, `node:path`), so it is not re-exported from the package root: import it from
 * `effect-renewable-bearer/FileTokenStore`.
 *
 * @example
 * ```ts
 * import { NodeFileSystem } from "@effect/platform-node"
 * import { Layer } from "effect"
 * import { RenewableBearer, Token, TokenSource } from "effect-renewable-bearer"
 * import * as FileTokenStore from "effect-renewable-bearer/FileTokenStore"
 *
 * const BearerLive = RenewableBearer.RenewableBearerLive.pipe(
 *   Layer.provide(TokenSource.layerToken(Token.make("s3cr3t"))),
 *   Layer.provide(FileTokenStore.layer({ directory: "/run/my-service/tokens" })),
 *   Layer.provide(NodeFileSystem.layer)
 * )
 * ```
 *
 * @since 0.1.0
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import * as internal from "./internal/fileTokenStore.js"
import { TokenStore, type TokenStoreError } from "./TokenStore.js"

/**
 * Options of the file store.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The directory of the token and lock files; created (with its parents) if missing, then made `0700`. */
  readonly directory: string
  /**
   * Seal the records with AES-256-GCM under a key derived (HKDF-SHA256) from this secret: use a random one,
   * such as `openssl rand -base64 32`. A record sealed under another key, or not sealed, reads as no token.
   */
  readonly encryptionKey?: Redacted.Redacted<string> | undefined
}

/**
 * Builds the store, creating its directory. Fails with `TokenStoreError` (operation `open`) when the
 * directory cannot be created or made owner-only.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (
  options: Options
) => Effect.Effect<TokenStore["Type"], TokenStoreError, FileSystem.FileSystem> = internal.make

/**
 * The file store as a layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<TokenStore, TokenStoreError, FileSystem.FileSystem> =>
  Layer.effect(TokenStore, internal.make(options))

/**
 * The file store, its options read from `Config` (the key with `Config.redacted`).
 *
 * @example
 * ```ts
 * import { Config } from "effect"
 * import * as FileTokenStore from "effect-renewable-bearer/FileTokenStore"
 *
 * const StoreLive = FileTokenStore.layerConfig({
 *   directory: Config.string("TOKEN_STORE_DIR"),
 *   encryptionKey: Config.option(Config.redacted("TOKEN_STORE_KEY")).pipe(
 *     Config.map((key) => (key._tag === "Some" ? key.value : undefined))
 *   )
 * })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<Options>
): Layer.Layer<TokenStore, TokenStoreError | ConfigError.ConfigError, FileSystem.FileSystem> =>
  Layer.effect(TokenStore, Effect.flatMap(Config.unwrap(config), internal.make))
