import type { PlatformError } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Crypto from "node:crypto"
import * as NodePath from "node:path"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as FileTokenStore from "../FileTokenStore.js"
import { type TokenStore, TokenStoreError, type TokenStoreOperation } from "../TokenStore.js"
import { makeCodec } from "./storeRecord.js"

/** The content of a lock file, version 1. */
const LockRecord = Schema.parseJson(
  Schema.Struct({ v: Schema.Literal(1), owner: Schema.String, expiresAt: Schema.Finite })
)
const decodeLock = Schema.decodeUnknownOption(LockRecord)

/** A guard file older than this was left by a process that died while it held it. */
const GUARD_STALE_MILLIS = 2_000

const isNotFound = (error: PlatformError) => error._tag === "SystemError" && error.reason === "NotFound"
const isAlreadyExists = (error: PlatformError) =>
  error._tag === "SystemError" && error.reason === "AlreadyExists"

const storeError = (operation: TokenStoreOperation) => (error: PlatformError) =>
  new TokenStoreError({ operation, reason: "Failure", detail: error.message, cause: error })

/** @internal */
export const make = (
  options: FileTokenStore.Options
): Effect.Effect<TokenStore["Type"], TokenStoreError, FileSystem.FileSystem> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const directory = NodePath.resolve(options.directory)
    yield* fs
      .makeDirectory(directory, { recursive: true, mode: 0o700 })
      .pipe(Effect.zipRight(fs.chmod(directory, 0o700)), Effect.mapError(storeError("open")))
    const codec = makeCodec(options.encryptionKey)

    const base = (key: string) =>
      NodePath.join(directory, Crypto.createHash("sha256").update(key, "utf8").digest("hex").slice(0, 40))
    const tokenPath = (key: string) => `${base(key)}.token`
    const lockPath = (key: string) => `${base(key)}.lock`
    const sidePath = (path: string, suffix: string) => `${path}.${Crypto.randomUUID()}.${suffix}`

    const ignore = <A>(self: Effect.Effect<A, PlatformError>) => Effect.ignore(self)

    const readOptional = (path: string): Effect.Effect<Option.Option<string>, PlatformError> =>
      fs.readFileString(path).pipe(
        Effect.map(Option.some),
        Effect.catchIf(isNotFound, () => Effect.succeedNone)
      )

    /** Creates `path` with `content`, readable by the owner only, through a temporary file. */
    const writeTemp = (path: string, content: string) =>
      Effect.as(fs.writeFileString(path, content, { flag: "wx", mode: 0o600 }), path)

    /** Replaces `path` atomically: a reader sees the old file or the new one, never a part. */
    const replace = (path: string, content: string) =>
      Effect.flatMap(writeTemp(sidePath(path, "tmp"), content), (temp) =>
        fs.rename(temp, path).pipe(Effect.tapError(() => ignore(fs.remove(temp))))
      )

    /**
     * Removes `path` if its content satisfies `predicate`. Removals happen only under a guard file (created
     * exclusively, like the lock), so between our read and our removal nobody can replace the file we read:
     * a new lock is only ever created where there is none. Returns `false` when another process holds the
     * guard (it is breaking or releasing the same lock right now). A guard left by a process that died in
     * those few microseconds is removed once it is older than `GUARD_STALE_MILLIS`.
     */
    const removeIf = (path: string, predicate: (content: Option.Option<string>) => boolean) =>
      Effect.gen(function* () {
        const guard = `${path}.guard`
        const temp = yield* writeTemp(sidePath(guard, "tmp"), "")
        const take = fs.link(temp, guard).pipe(
          Effect.as(true),
          Effect.catchIf(isAlreadyExists, () => Effect.succeed(false)),
          Effect.ensuring(ignore(fs.remove(temp)))
        )
        let taken = yield* take
        if (!taken) {
          const info = yield* Effect.option(fs.stat(guard))
          const mtime = Option.flatMap(info, (i) => i.mtime)
          if (Option.isSome(mtime) && Date.now() - mtime.value.getTime() > GUARD_STALE_MILLIS) {
            yield* ignore(fs.remove(guard))
            const again = yield* writeTemp(sidePath(guard, "tmp"), "")
            taken = yield* fs.link(again, guard).pipe(
              Effect.as(true),
              Effect.catchIf(isAlreadyExists, () => Effect.succeed(false)),
              Effect.ensuring(ignore(fs.remove(again)))
            )
          }
        }
        if (!taken) return false
        return yield* Effect.ensuring(
          Effect.gen(function* () {
            if (predicate(yield* readOptional(path)))
              yield* fs.remove(path).pipe(Effect.catchIf(isNotFound, () => Effect.void))
            return true
          }),
          ignore(fs.remove(guard))
        )
      })

    const get = (key: string) =>
      readOptional(tokenPath(key)).pipe(
        Effect.map(Option.flatMap((text) => codec.decode(key, text))),
        Effect.mapError(storeError("get"))
      )

    const put = (key: string, stored: Parameters<TokenStore["Type"]["put"]>[1]) =>
      replace(tokenPath(key), codec.encode(key, stored)).pipe(Effect.mapError(storeError("put")))

    const tryLock = (key: string, owner: string, ttl: Duration.Duration) =>
      Effect.gen(function* () {
        const path = lockPath(key)
        const now = yield* Clock.currentTimeMillis
        const content = JSON.stringify({ v: 1, owner, expiresAt: now + Duration.toMillis(ttl) })
        const temp = yield* writeTemp(sidePath(path, "tmp"), content)
        // `link` creates the lock file with its whole content, or fails if it exists: an exclusive create
        // that no reader can catch half-written.
        const attempt = (tries: number): Effect.Effect<boolean, PlatformError> =>
          fs.link(temp, path).pipe(
            Effect.as(true),
            Effect.catchIf(isAlreadyExists, () =>
              Effect.gen(function* () {
                const held = yield* readOptional(path)
                if (Option.isNone(held)) return tries > 0 ? yield* attempt(tries - 1) : false
                const lock = decodeLock(held.value)
                if (Option.isSome(lock) && now < lock.value.expiresAt) return false
                // Expired, or not a lock record at all: break it, but only if it is still the one we read.
                const broke = yield* removeIf(
                  path,
                  (seen) => Option.isSome(seen) && seen.value === held.value
                )
                return broke && tries > 0 ? yield* attempt(tries - 1) : false
              })
            )
          )
        return yield* Effect.ensuring(attempt(2), ignore(fs.remove(temp)))
      }).pipe(Effect.mapError(storeError("lock")))

    const ownedBy = (owner: string) => (content: Option.Option<string>) =>
      Option.isSome(content) && Option.exists(decodeLock(content.value), (lock) => lock.owner === owner)

    const unlock = (key: string, owner: string) =>
      Effect.gen(function* () {
        const path = lockPath(key)
        for (let tries = 0; tries < 5 && ownedBy(owner)(yield* readOptional(path)); tries++) {
          if (yield* removeIf(path, ownedBy(owner))) return
          yield* Effect.sleep(5)
        }
      }).pipe(Effect.mapError(storeError("unlock")))

    return { get, put, tryLock, unlock } satisfies TokenStore["Type"]
  })
