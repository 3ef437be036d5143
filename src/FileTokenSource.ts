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
import * as FileSystem from "@effect/platform/FileSystem"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { TokenSourceError } from "./Errors.js"
import * as jwt from "./internal/jwt.js"
import * as Token from "./Token.js"
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
}

/**
 * The `code` of the `TokenSourceError` when the file does not exist (`file_not_found`, retryable: the file
 * may appear), holds nothing but whitespace (`file_empty`, retryable: it may be in the middle of a
 * rotation), or cannot be read (`file_unreadable`: permission denied, a directory, …; permanent).
 *
 * @since 0.1.0
 * @category models
 */
export type ErrorCode = "file_not_found" | "file_empty" | "file_unreadable"

/**
 * A source that reads the token file on every fetch.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options | string
): Effect.Effect<TokenSource["Type"], never, FileSystem.FileSystem> =>
  Effect.map(FileSystem.FileSystem, (fs) => {
    const { path, jwtExpiration = true } = typeof options === "string" ? { path: options } : options
    return TokenSource.of({
      fetch: fs.readFileString(path).pipe(
        Effect.mapError((error) =>
          error._tag === "SystemError" && error.reason === "NotFound"
            ? new TokenSourceError({
                message: `Token file ${path} does not exist`,
                code: "file_not_found" satisfies ErrorCode,
                retryable: true,
                cause: error
              })
            : new TokenSourceError({
                message: `Token file ${path} cannot be read (${error._tag === "SystemError" ? error.reason : error._tag})`,
                code: "file_unreadable" satisfies ErrorCode,
                retryable: false,
                cause: error
              })
        ),
        Effect.flatMap((content) => {
          const value = content.trim()
          if (value.length === 0) {
            return Effect.fail(
              new TokenSourceError({
                message: `Token file ${path} is empty`,
                code: "file_empty" satisfies ErrorCode,
                retryable: true
              })
            )
          }
          const expiresAt = jwtExpiration ? Option.getOrUndefined(jwt.expirationMillis(value)) : undefined
          return Effect.succeed(Token.make(Redacted.make(value), { expiresAt }))
        })
      )
    })
  })

/**
 * The source of `make` as a layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options | string): Layer.Layer<TokenSource, never, FileSystem.FileSystem> =>
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
): Layer.Layer<TokenSource, ConfigError.ConfigError, FileSystem.FileSystem> =>
  Layer.effect(TokenSource, Effect.flatMap(Config.unwrap(config), make))
