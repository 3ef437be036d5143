/**
 * File primitives of `FileTokenStore` that never follow a symbolic link and never leave a half-written or
 * temporary file behind: bounded reads, exclusive creates, hard links as atomic exclusive creates.
 */
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as FsPromises from "node:fs/promises"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"

/** Reads never follow a symbolic link: a link planted in place of a store file is an error, not a redirect. */
const READ_FLAGS = Fs.constants.O_RDONLY | (Fs.constants.O_NOFOLLOW ?? 0) | (Fs.constants.O_NONBLOCK ?? 0)
/** A temporary file is always a new file: `O_EXCL` fails on anything already there, a symbolic link too. */
const CREATE_FLAGS =
  Fs.constants.O_WRONLY | Fs.constants.O_CREAT | Fs.constants.O_EXCL | (Fs.constants.O_NOFOLLOW ?? 0)

const codeOf = (cause: unknown): string | undefined =>
  typeof cause === "object" && cause !== null && "code" in cause && typeof cause.code === "string"
    ? cause.code
    : undefined

/** @internal */
export const messageOf = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

/** A file system call that failed: its error code is kept for the callers that handle one. @internal */
export class FsFailure {
  readonly _tag = "FsFailure"
  constructor(
    readonly code: string | undefined,
    readonly message: string,
    readonly cause: unknown
  ) {}
}

/** @internal */
export const call = <A>(run: () => Promise<A>): Effect.Effect<A, FsFailure> =>
  Effect.tryPromise({ try: run, catch: (cause) => new FsFailure(codeOf(cause), messageOf(cause), cause) })

/** @internal */
export const isCode =
  (...codes: ReadonlyArray<string>) =>
  (error: FsFailure): boolean =>
    error.code !== undefined && codes.includes(error.code)

/** @internal */
export const remove = (path: string): Effect.Effect<void, FsFailure> => call(() => FsPromises.unlink(path))

/** @internal */
export const ignore = <A>(self: Effect.Effect<A, FsFailure>): Effect.Effect<void> => Effect.ignore(self)

/** A new name beside `path`, unique across processes. @internal */
export const sidePath = (path: string, suffix: string): string => `${path}.${Crypto.randomUUID()}.${suffix}`

/** Reads an open file from its start, at most `limit + 1` bytes. */
const readUpTo = (handle: FsPromises.FileHandle, path: string, limit: number) =>
  Effect.gen(function* () {
    const stat = yield* call(() => handle.stat())
    if (!stat.isFile())
      return yield* Effect.fail(new FsFailure("EINVAL", `${path} is not a regular file`, undefined))
    const buffer = Buffer.alloc(limit + 1)
    let size = 0
    while (size < buffer.length) {
      const { bytesRead } = yield* call(() => handle.read(buffer, size, buffer.length - size, size))
      if (bytesRead === 0) break
      size += bytesRead
    }
    return size > limit
      ? Either.left(Math.max(size, stat.size))
      : Either.right(buffer.toString("utf8", 0, size))
  })

/**
 * Reads `path` without following a symbolic link, at most `limit + 1` bytes: `None` when it does not exist,
 * `Left` with its size when it holds more than `limit` bytes (nothing more is read).
 *
 * @internal
 */
export const readBounded = (
  path: string,
  limit: number
): Effect.Effect<Option.Option<Either.Either<string, number>>, FsFailure> =>
  Effect.acquireUseRelease(
    call(() => FsPromises.open(path, READ_FLAGS)).pipe(
      Effect.map(Option.some<FsPromises.FileHandle>),
      Effect.catchIf(isCode("ENOENT"), () => Effect.succeed(Option.none<FsPromises.FileHandle>()))
    ),
    Option.match({
      onNone: () => Effect.succeedNone,
      onSome: (handle) => Effect.map(readUpTo(handle, path, limit), Option.some)
    }),
    Option.match({ onNone: () => Effect.void, onSome: (handle) => Effect.promise(() => handle.close()) })
  )

/**
 * Creates `path` (exclusively, `0600`) and writes `content`, uninterruptibly: if the write fails (a full
 * disk) the new file is removed. Once it is written, removing it is the caller's job (see `withTemp`).
 *
 * @internal
 */
export const writeNew = (path: string, content: string): Effect.Effect<string, FsFailure> =>
  Effect.uninterruptible(
    Effect.flatMap(
      call(() => FsPromises.open(path, CREATE_FLAGS, 0o600)),
      (handle) =>
        call(async () => {
          await handle.writeFile(content, "utf8")
        }).pipe(
          Effect.ensuring(Effect.promise(() => handle.close().catch(() => undefined))),
          Effect.tapError(() => ignore(remove(path))),
          Effect.as(path)
        )
    )
  )

/**
 * Runs `use` with a new temporary file beside `path` holding `content`, and removes the file afterwards
 * (also on failure or interruption).
 *
 * @internal
 */
export const withTemp = <A>(
  path: string,
  content: string,
  use: (temp: string) => Effect.Effect<A, FsFailure>
): Effect.Effect<A, FsFailure> =>
  Effect.acquireUseRelease(writeNew(sidePath(path, "tmp"), content), use, (temp) => ignore(remove(temp)))

/** Replaces `path` atomically: a reader sees the old file or the new one, never a part. @internal */
export const replace = (path: string, content: string): Effect.Effect<void, FsFailure> =>
  Effect.flatMap(writeNew(sidePath(path, "tmp"), content), (temp) =>
    call(() => FsPromises.rename(temp, path)).pipe(Effect.tapError(() => ignore(remove(temp))))
  )

/** Hard-links `temp` to `path`: `true` if it created `path`, `false` if `path` exists. @internal */
export const linkNew = (temp: string, path: string): Effect.Effect<boolean, FsFailure> =>
  call(() => FsPromises.link(temp, path)).pipe(
    Effect.as(true),
    Effect.catchIf(isCode("EEXIST"), () => Effect.succeed(false))
  )
