import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as FsPromises from "node:fs/promises"
import * as NodePath from "node:path"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as FileTokenStore from "../FileTokenStore.js"
import type { TokenStoreOperation } from "../Errors.js"
import type { TokenStore } from "../TokenStore.js"
import { TokenStoreError } from "./errors.js"
import { makeCodec } from "./storeRecord.js"
import { integer, optional, redacted, string, withDefault } from "./options.js"
import {
  call,
  type FsFailure,
  ignore,
  isCode,
  linkNew,
  readBounded,
  remove,
  replace,
  withTemp
} from "./safeFiles.js"
import { invalidOption, storeOption } from "./tokenStore.js"

/** The content of a lock file, version 1. */
const LockRecord = Schema.parseJson(
  Schema.Struct({ v: Schema.Literal(1), owner: Schema.String, expiresAt: Schema.Finite })
)
const decodeLock = Schema.decodeUnknownOption(LockRecord)

/** A guard file older than this was left by a process that died while it held it. */
const GUARD_STALE_MILLIS = 2_000

/** The default bound of a record read from or written to the store. @internal */
export const DEFAULT_MAX_RECORD_BYTES = 64 * 1024

/** A lock file is a few dozen bytes; anything longer is not a lock. */
const MAX_LOCK_BYTES = 4 * 1024

const storeError = (operation: TokenStoreOperation) => (error: FsFailure | TokenStoreError) =>
  error instanceof TokenStoreError
    ? error
    : new TokenStoreError({
        operation,
        reason: "Failure",
        detail:
          error.code === "ELOOP"
            ? `a store file is a symbolic link, refused (${error.message})`
            : error.message,
        cause: error.cause
      })

const untrusted = (directory: string, why: string) =>
  new TokenStoreError({
    operation: "open",
    reason: "Untrusted",
    detail: `refusing the store directory ${directory}: ${why}; it is never changed, fix it or choose another`
  })

/** What `open` decided about the directory: the checks of `checkDirectory`, in one place. @internal */
export const directoryProblem = (
  info: {
    readonly isSymbolicLink: boolean
    readonly isDirectory: boolean
    readonly uid: number
    readonly mode: number
  },
  currentUid: number | undefined
): string | undefined => {
  if (info.isSymbolicLink) return "it is a symbolic link"
  if (!info.isDirectory) return "it is not a directory"
  // Without user ids (Windows) there are no POSIX owner and mode bits to check either.
  if (currentUid === undefined) return undefined
  if (info.uid !== currentUid)
    return `it is owned by uid ${info.uid}, not by this process's user (uid ${currentUid})`
  if ((info.mode & 0o022) !== 0)
    return `it is writable by ${(info.mode & 0o020) !== 0 ? "its group" : "others"} (mode ${(info.mode & 0o777).toString(8).padStart(4, "0")})`
  return undefined
}

/**
 * Creates the directory if it is missing (mode `0700`, parents too), then checks it without following a
 * symbolic link and never changes it: a link, something else than a directory, another owner, or write access
 * for group or others is refused.
 */
const checkDirectory = (directory: string): Effect.Effect<void, TokenStoreError> =>
  Effect.gen(function* () {
    const lstat = call(() => FsPromises.lstat(directory))
    const existing = yield* lstat.pipe(
      Effect.map((stats): Fs.Stats | undefined => stats),
      Effect.catchIf(isCode("ENOENT"), () => Effect.succeed(undefined))
    )
    const stats =
      existing ??
      (yield* Effect.zipRight(
        call(() => FsPromises.mkdir(directory, { recursive: true, mode: 0o700 })),
        lstat
      ))
    const problem = directoryProblem(
      {
        isSymbolicLink: stats.isSymbolicLink(),
        isDirectory: stats.isDirectory(),
        uid: stats.uid,
        mode: stats.mode
      },
      process.getuid?.()
    )
    if (problem !== undefined) return yield* Effect.fail(untrusted(directory, problem))
  }).pipe(
    Effect.mapError((error) =>
      error instanceof TokenStoreError
        ? error
        : new TokenStoreError({
            operation: "open",
            reason: "Failure",
            detail: `cannot open the store directory ${directory}: ${error.message}`,
            cause: error.cause
          })
    )
  )

/** Options checked at run time: a wrong type is an `InvalidOptions` error, never a default. */
const validate = (options: FileTokenStore.Options) =>
  Effect.gen(function* () {
    if (typeof options !== "object" || options === null)
      return yield* Effect.fail(invalidOption("options", "expected an object"))
    const directory = yield* storeOption("directory", string()(options.directory))
    yield* storeOption("encryptionKey", optional(options.encryptionKey, redacted))
    const maxRecordBytes = yield* storeOption(
      "maxRecordBytes",
      withDefault(options.maxRecordBytes, DEFAULT_MAX_RECORD_BYTES, integer(1, 2 ** 30))
    )
    return { directory: NodePath.resolve(directory), maxRecordBytes }
  })

/** The content of a lock file, `None` if there is none; a file too large to be a lock reads as garbage. */
const readLock = (path: string) =>
  Effect.map(
    readBounded(path, MAX_LOCK_BYTES),
    Option.map(Either.getOrElse(() => "(too large to be a lock)"))
  )

/**
 * Removes `path` if its content satisfies `predicate`. Removals happen only under a guard file (created
 * exclusively, like the lock), so between our read and our removal nobody can replace the file we read: a new
 * lock is only ever created where there is none. Returns `false` when another process holds the guard (it is
 * breaking or releasing the same lock right now). A guard left by a process that died in those few
 * microseconds is removed once it is older than `GUARD_STALE_MILLIS`.
 */
const removeIf = (path: string, predicate: (content: Option.Option<string>) => boolean) =>
  Effect.gen(function* () {
    const guard = `${path}.guard`
    const take = withTemp(guard, "", (temp) => linkNew(temp, guard))
    let taken = yield* take
    if (!taken) {
      const info = yield* Effect.option(call(() => FsPromises.lstat(guard)))
      if (Option.isSome(info) && Date.now() - info.value.mtimeMs > GUARD_STALE_MILLIS) {
        yield* ignore(remove(guard))
        taken = yield* take
      }
    }
    if (!taken) return false
    return yield* Effect.ensuring(
      Effect.gen(function* () {
        if (predicate(yield* readLock(path)))
          yield* remove(path).pipe(Effect.catchIf(isCode("ENOENT"), () => Effect.void))
        return true
      }),
      ignore(remove(guard))
    )
  })

/**
 * Links `temp` (a lock record) as the lock file `path`: `link` creates the file with its whole content, or
 * fails if it exists, an exclusive create no reader can catch half-written. A lock found there that no longer
 * holds is broken, if it is still the one read, and the link tried again, at most `tries` more times.
 */
const takeLock = (
  path: string,
  temp: string,
  ttlMillis: number,
  tries: number
): Effect.Effect<boolean, FsFailure> =>
  Effect.flatMap(linkNew(temp, path), (created) =>
    created
      ? Effect.succeed(true)
      : Effect.gen(function* () {
          const held = yield* readLock(path)
          if (Option.isNone(held))
            return tries > 0 ? yield* takeLock(path, temp, ttlMillis, tries - 1) : false
          // Judged at the time of reading: the holder may have written its lock after the taker read the clock.
          if (isLive(held.value, yield* Clock.currentTimeMillis, ttlMillis)) return false
          // Expired, expiring too late, or not a lock record at all: break it, but only if it is still the one
          // we read.
          const broke = yield* removeIf(path, (seen) => Option.isSome(seen) && seen.value === held.value)
          return broke && tries > 0 ? yield* takeLock(path, temp, ttlMillis, tries - 1) : false
        })
  )

const ownedBy = (owner: string) => (content: Option.Option<string>) =>
  Option.isSome(content) && Option.exists(decodeLock(content.value), (lock) => lock.owner === owner)

/** @internal */
export const make = (options: FileTokenStore.Options): Effect.Effect<TokenStore["Type"], TokenStoreError> =>
  Effect.gen(function* () {
    const { directory, maxRecordBytes } = yield* validate(options)
    yield* checkDirectory(directory)
    const codec = makeCodec(options.encryptionKey)

    const base = (key: string) =>
      NodePath.join(directory, Crypto.createHash("sha256").update(key, "utf8").digest("hex").slice(0, 40))
    const tokenPath = (key: string) => `${base(key)}.token`
    const lockPath = (key: string) => `${base(key)}.lock`

    const tooLarge = (operation: TokenStoreOperation, size: number) =>
      new TokenStoreError({
        operation,
        reason: "TooLarge",
        detail: `the record is ${size} bytes, more than maxRecordBytes (${maxRecordBytes}); nothing more was read`
      })

    const get = (key: string) =>
      readBounded(tokenPath(key), maxRecordBytes).pipe(
        Effect.mapError(storeError("get")),
        Effect.flatMap(
          Option.match({
            onNone: () => Effect.succeedNone,
            onSome: Either.match({
              onLeft: (size) => Effect.fail(tooLarge("get", size)),
              onRight: (text) => Effect.succeed(codec.decode(key, text))
            })
          })
        )
      )

    const put = (key: string, stored: Parameters<TokenStore["Type"]["put"]>[1]) =>
      Effect.suspend(() => {
        const text = codec.encode(key, stored)
        const size = Buffer.byteLength(text, "utf8")
        // Nobody could read a larger record back: refuse it rather than write it.
        if (size > maxRecordBytes) return Effect.fail(tooLarge("put", size))
        return replace(tokenPath(key), text).pipe(Effect.mapError(storeError("put")))
      })

    const tryLock = (key: string, owner: string, ttl: Duration.Duration) =>
      Effect.gen(function* () {
        const path = lockPath(key)
        const ttlMillis = Duration.toMillis(ttl)
        const content = JSON.stringify({
          v: 1,
          owner,
          expiresAt: (yield* Clock.currentTimeMillis) + ttlMillis
        })
        return yield* withTemp(path, content, (temp) => takeLock(path, temp, ttlMillis, 2))
      }).pipe(Effect.mapError(storeError("lock")))

    const unlock = (key: string, owner: string) =>
      Effect.gen(function* () {
        const path = lockPath(key)
        for (let tries = 0; tries < 5 && ownedBy(owner)(yield* readLock(path)); tries++) {
          if (yield* removeIf(path, ownedBy(owner))) return
          yield* Effect.sleep(5)
        }
      }).pipe(Effect.mapError(storeError("unlock")))

    return { get, put, tryLock, unlock } satisfies TokenStore["Type"]
  })

/**
 * Whether the lock file content `text` is a lock that still holds at `now` for a taker whose lock would live
 * `ttlMillis`: a valid record whose expiry has not passed and is not further away than `ttlMillis` (plus a
 * second of slack for the wall clock). A lock that claims to live longer than any lock is made for was not
 * written by a store of this kind, or by a clock far ahead: it is broken like an expired one, so it never
 * blocks renewals for longer than a TTL.
 *
 * @internal
 */
export const isLive = (text: string, now: number, ttlMillis: number): boolean =>
  Option.match(decodeLock(text), {
    onNone: () => false,
    onSome: (lock) => now < lock.expiresAt && lock.expiresAt - now <= ttlMillis + CLOCK_STEP_MILLIS
  })

/** The slack `isLive` allows for a wall clock that steps back a little between two processes' readings. */
const CLOCK_STEP_MILLIS = 1_000

/**
 * The layer's store: the store of `make`, or, when the directory is refused or cannot be opened, a store whose
 * every operation fails with that error, after one warning. The bearer then runs as without a store (it calls
 * its source directly and says why in a warning at each renewal); only invalid options fail the layer.
 *
 * @internal
 */
export const makeOrDisabled = (
  options: FileTokenStore.Options
): Effect.Effect<TokenStore["Type"], TokenStoreError> =>
  make(options).pipe(
    Effect.catchIf(
      (error) => error.reason !== "InvalidOptions",
      (error) =>
        Effect.as(
          Effect.logWarning(
            `FileTokenStore: ${error.message}. Bearers call their sources directly, without sharing tokens`
          ),
          disabled(error)
        )
    )
  )

const disabled = (error: TokenStoreError): TokenStore["Type"] => {
  const fail = (operation: TokenStoreOperation) =>
    Effect.fail(new TokenStoreError({ operation, reason: error.reason, detail: error.detail, cause: error }))
  return {
    get: () => fail("get"),
    put: () => fail("put"),
    tryLock: () => fail("lock"),
    unlock: () => fail("unlock")
  }
}
