/**
 * A token source that reads a token file on every fetch, through `FileSystem`: Kubernetes projected
 * service-account tokens and other workload identities rotate the file on disk. Surrounding whitespace is
 * trimmed. When the content is a JWT, its `exp` claim becomes the token's expiration (the payload is only
 * decoded, the signature is not checked), so the bearer re-reads the file before the token expires.
 *
 * @example
 * ```ts
 * import { NodeFileSystem } from "@effect/platform-node"
 * import { Layer } from "effect"
 * import { FileTokenSource, RenewableBearer } from "effect-renewable-bearer"
 *
 * const BearerLive = RenewableBearer.RenewableBearerLive.pipe(
 *   Layer.provide(FileTokenSource.layer("/var/run/secrets/tokens/api-token")),
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
import type { InvalidOptionsError } from "./Errors.js"
import * as internal from "./internal/fileTokenSource.js"
import { TokenSource } from "./TokenSource.js"

/**
 * Options of the file source.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The token file. */
  readonly path: string
  /** Read a JWT's `exp` claim as the token's expiration. Default `true`. */
  readonly jwtExpiration?: boolean | undefined
  /**
   * The most bytes read from the file; a larger file (or an endless one, such as `/dev/zero`) fails with code
   * `file_too_large` after reading one byte more than this, never more. Default `DEFAULT_MAX_BYTES` (64 KiB).
   */
  readonly maxBytes?: number | undefined
}

/**
 * The default `maxBytes`: 64 KiB, far more than any token a server accepts in a header.
 *
 * @since 0.2.0
 * @category constants
 */
export const DEFAULT_MAX_BYTES: number = internal.DEFAULT_MAX_BYTES

/**
 * The `code` of the `TokenSourceError` when the file does not exist (`file_not_found`, retryable: the file
 * may appear), holds nothing but whitespace (`file_empty`, retryable: it may be in the middle of a
 * rotation), cannot be read (`file_unreadable`: permission denied, a directory, …; permanent), or holds more
 * than `maxBytes` (`file_too_large`; permanent).
 *
 * @since 0.1.0
 * @category models
 */
export type ErrorCode = "file_not_found" | "file_empty" | "file_unreadable" | "file_too_large"

/**
 * A source that reads the token file on every fetch, at most `maxBytes` of it. Fails with
 * `InvalidOptionsError` (module `FileTokenSource`) for an option of the wrong type or out of range.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (
  options: Options | string
) => Effect.Effect<TokenSource["Type"], InvalidOptionsError, FileSystem.FileSystem> = internal.make

/**
 * The source of `make` as a layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options | string
): Layer.Layer<TokenSource, InvalidOptionsError, FileSystem.FileSystem> =>
  Layer.effect(TokenSource, make(options))

/**
 * The file source, its options read from `Config`.
 *
 * @example
 * ```ts
 * import { Config } from "effect"
 * import { FileTokenSource } from "effect-renewable-bearer"
 *
 * const SourceLive = FileTokenSource.layerConfig({
 *   path: Config.string("TOKEN_FILE").pipe(Config.withDefault("/var/run/secrets/tokens/api-token"))
 * })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<Options>
): Layer.Layer<TokenSource, InvalidOptionsError | ConfigError.ConfigError, FileSystem.FileSystem> =>
  Layer.effect(TokenSource, Effect.flatMap(Config.unwrap(config), make))
