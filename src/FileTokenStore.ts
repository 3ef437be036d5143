/**
 * A `TokenStore` on the file system, for the processes of one machine (workers of a server, CLI invocations,
 * sidecars sharing a volume). One file per key in a directory only its owner can write; files `0600`; a token
 * is replaced atomically (written to a temporary file, then renamed; a temporary file is removed when a write
 * fails); the refresh lock is a lock file created exclusively, holding its owner and expiry, and broken once
 * it has expired or claims to live longer than a lock's TTL. A corrupt or truncated file reads as no token,
 * never as a crash. With `encryptionKey` the records are sealed with AES-256-GCM.
 *
 * The store trusts only a directory it can: a directory that is a symbolic link, owned by another user, or
 * writable by group or others is refused (`TokenStoreError`, reason `Untrusted`) and never changed; the layer
 * then logs why and the bearer runs without the store. Files are read without following symbolic links, at
 * most `maxRecordBytes` of each.
 *
 * Use it on a local file system: the lock relies on atomic `link` and `rename`, and lock expiry compares the
 * clocks of the processes that share the directory. It uses `node:fs` directly (it needs `O_NOFOLLOW` and
 * the owner and mode of the directory, which `@effect/platform`'s `FileSystem` does not offer).
 *
 * Node only (`node:crypto`, `node:path`), so it is not re-exported from the package root: import it from
 * `effect-renewable-bearer/FileTokenStore`.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { RenewableBearer, Token, TokenSource } from "effect-renewable-bearer"
 * import * as FileTokenStore from "effect-renewable-bearer/FileTokenStore"
 *
 * const BearerLive = RenewableBearer.RenewableBearerLive.pipe(
 *   Layer.provide(TokenSource.layerToken(Token.make("s3cr3t"))),
 *   Layer.provide(FileTokenStore.layer({ directory: "/run/my-service/tokens" }))
 * )
 * ```
 *
 * @since 0.1.0
 */
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
  /**
   * The directory of the token and lock files; created (with its parents, mode `0700`) if missing. An
   * existing one is used as it is, never changed: it must be a real directory (not a symbolic link), owned by
   * this process's user, and not writable by group or others.
   */
  readonly directory: string
  /**
   * Seal the records with AES-256-GCM under a key derived (HKDF-SHA256) from this secret: use a random one,
   * such as `openssl rand -base64 32`. A record sealed under another key, or not sealed, reads as no token.
   */
  readonly encryptionKey?: Redacted.Redacted<string> | undefined
  /**
   * The most bytes of a record this store reads or writes; a larger record fails with `TokenStoreError`
   * reason `TooLarge` (when reading: after one byte more, nothing else read). Default
   * `DEFAULT_MAX_RECORD_BYTES` (64 KiB).
   */
  readonly maxRecordBytes?: number | undefined
}

/**
 * The default `maxRecordBytes`: 64 KiB, room for a sealed 16 KiB token several times over.
 *
 * @since 0.2.0
 * @category constants
 */
export const DEFAULT_MAX_RECORD_BYTES: number = internal.DEFAULT_MAX_RECORD_BYTES

/**
 * Builds the store, creating its directory if it is missing. Fails with `TokenStoreError` (operation `open`):
 * reason `Untrusted` when the directory is a symbolic link, owned by another user, or writable by group or
 * others; `Failure` when it cannot be created or read; `InvalidOptions` for an option of the wrong type.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (options: Options) => Effect.Effect<TokenStore["Type"], TokenStoreError> = internal.make

/**
 * The file store as a layer. A directory that `make` refuses or cannot open does not fail the layer: it logs
 * a warning saying why, and every store operation fails with that error, so the bearer calls its source
 * directly (as without a store). Only an invalid option fails the layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<TokenStore, TokenStoreError> =>
  Layer.effect(TokenStore, internal.makeOrDisabled(options))

/**
 * The file store, its options read from `Config` (the key with `Config.redacted`); a refused directory is
 * handled as by `layer`.
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
): Layer.Layer<TokenStore, TokenStoreError | ConfigError.ConfigError> =>
  Layer.effect(TokenStore, Effect.flatMap(Config.unwrap(config), internal.makeOrDisabled))
