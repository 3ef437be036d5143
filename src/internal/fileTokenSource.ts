/**
 * The source of `FileTokenSource`: its options checked at run time, then the token file read on every fetch,
 * at most `maxBytes` of it, a JWT's `exp` claim becoming the token's expiration.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type { ErrorCode, Options } from "../FileTokenSource.js"
import { InvalidOptionsError, TokenSourceError } from "./errors.js"
import * as jwt from "./jwt.js"
import { TokenSource } from "./tags.js"
import { make as makeToken } from "./token.js"

/** See `FileTokenSource.DEFAULT_MAX_BYTES`. @internal */
export const DEFAULT_MAX_BYTES = 64 * 1024

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

/** See `FileTokenSource.make`. @internal */
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
            return Effect.succeed(makeToken(Redacted.make(value), { expiresAt }))
          })
        )
      })
    )
  )
