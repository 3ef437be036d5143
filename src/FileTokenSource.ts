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
import { InvalidOptionsError, TokenSourceError } from "./Errors.js"
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
export const DEFAULT_MAX_BYTES = 64 * 1024

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

const invalid = (option: string, detail: string) =>
  Effect.fail(new InvalidOptionsError({ module: "FileTokenSource", option, detail }))

const shown = (value: unknown) => (typeof value === "string" ? JSON.stringify(value) : String(value))

/** Checks the options at run time: a wrong type is an error, never silently a default. */
const validate = (
  options: Options | string
): Effect.Effect<
  Required<Omit<Options, "maxBytes">> & { readonly maxBytes: number },
  InvalidOptionsError
> => {
  const given: Options = typeof options === "string" ? { path: options } : options
  if (typeof given !== "object" || given === null)
    return invalid("options", `expected an object or a path, got ${shown(given)}`)
  const { jwtExpiration = true, maxBytes = DEFAULT_MAX_BYTES, path } = given
  if (typeof path !== "string" || path.length === 0)
    return invalid("path", `expected a non-empty string, got ${shown(path)}`)
  if (typeof jwtExpiration !== "boolean")
    return invalid("jwtExpiration", `expected a boolean, got ${shown(jwtExpiration)}`)
  if (!(Number.isSafeInteger(maxBytes) && maxBytes > 0))
    return invalid("maxBytes", `expected a positive integer, got ${shown(maxBytes)}`)
  return Effect.succeed({ path, jwtExpiration, maxBytes })
}

/** Reads at most `maxBytes + 1` bytes of `path`: `None` when there are more than `maxBytes`. */
const readBounded = (fs: FileSystem.FileSystem, path: string, maxBytes: number) =>
  Effect.scoped(
    Effect.gen(function* () {
      const file = yield* fs.open(path, { flag: "r" })
      const buffer = new Uint8Array(maxBytes + 1)
      let size = 0
      while (size < buffer.length) {
        const read = Number(yield* file.read(buffer.subarray(size)))
        if (read === 0) break
        size += read
      }
      return size > maxBytes ? Option.none() : Option.some(new TextDecoder().decode(buffer.subarray(0, size)))
    })
  )

/**
 * A source that reads the token file on every fetch, at most `maxBytes` of it. Fails with
 * `InvalidOptionsError` (module `FileTokenSource`) for an option of the wrong type or out of range.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options | string
): Effect.Effect<TokenSource["Type"], InvalidOptionsError, FileSystem.FileSystem> =>
  Effect.flatMap(validate(options), ({ jwtExpiration, maxBytes, path }) =>
    Effect.map(FileSystem.FileSystem, (fs) =>
      TokenSource.of({
        fetch: readBounded(fs, path, maxBytes).pipe(
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
            if (Option.isNone(content)) {
              return Effect.fail(
                new TokenSourceError({
                  message: `Token file ${path} is larger than ${maxBytes} bytes (maxBytes); nothing more was read`,
                  code: "file_too_large" satisfies ErrorCode,
                  retryable: false
                })
              )
            }
            const value = content.value.trim()
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
    )
  )

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
