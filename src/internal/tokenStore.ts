import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Equal from "effect/Equal"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Token from "../Token.js"
import type { TokenSource } from "../TokenSource.js"
import type { SharedOptions, StoredToken, TokenStore } from "../TokenStore.js"
import { type TokenSourceError, TokenStoreError } from "./errors.js"
import { decodeMillis } from "./options.js"
import { expiresAtMillis, invalidReason } from "./token.js"

type Store = TokenStore["Type"]

/** Options of `withStore`, decoded once. @internal */
interface Resolved {
  readonly key: string
  readonly lockTtl: Duration.Duration
  readonly waitMillis: number
  readonly pollMillis: number
  readonly operationMillis: number
  readonly freshFraction: number
  readonly name: string
}

/** A `TokenStoreError` for an option of `withStore` or of a store's `make` that is not valid. @internal */
export const invalidOption = (option: string, detail: string): TokenStoreError =>
  new TokenStoreError({ operation: "open", reason: "InvalidOptions", detail: `${option}: ${detail}` })

/**
 * Decodes a duration option with the bearer's own decoder (`decodeMillis`): absent gives `fallback`; a value
 * that is not a finite duration, or is zero when `positive`, is an error, never silently the default.
 *
 * @internal
 */
export const durationOption = (
  option: string,
  input: Duration.DurationInput | undefined,
  fallback: number,
  positive: boolean
): Either.Either<number, TokenStoreError> => {
  if (input === undefined) return Either.right(fallback)
  const millis = decodeMillis(input)
  if (typeof millis === "string") return Either.left(invalidOption(option, millis))
  return positive && !(millis > 0)
    ? Either.left(invalidOption(option, `expected a positive duration, got ${millis} ms`))
    : Either.right(millis)
}

const shown = (value: unknown): string =>
  typeof value === "string"
    ? JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}…` : value)
    : Redacted.isRedacted(value)
      ? "a Redacted"
      : typeof value === "object" && value !== null
        ? "an object"
        : String(value)

/** A string option: absent gives `undefined`; anything but a string (non-empty unless `allowEmpty`) is an error. @internal */
export const stringOption = (
  option: string,
  value: unknown,
  allowEmpty = false
): Either.Either<string | undefined, TokenStoreError> =>
  value === undefined || (typeof value === "string" && (allowEmpty || value.length > 0))
    ? Either.right(value)
    : Either.left(
        invalidOption(option, `expected a ${allowEmpty ? "" : "non-empty "}string, got ${shown(value)}`)
      )

/** A boolean option: absent gives `undefined`; anything but `true` or `false` is an error. @internal */
export const booleanOption = (
  option: string,
  value: unknown
): Either.Either<boolean | undefined, TokenStoreError> =>
  value === undefined || typeof value === "boolean"
    ? Either.right(value)
    : Either.left(invalidOption(option, `expected a boolean, got ${shown(value)}`))

/** An integer option in `[min, max]`: absent gives `undefined`. @internal */
export const integerOption = (
  option: string,
  value: unknown,
  min: number,
  max: number
): Either.Either<number | undefined, TokenStoreError> =>
  value === undefined || (Number.isSafeInteger(value) && (value as number) >= min && (value as number) <= max)
    ? Either.right(value as number | undefined)
    : Either.left(invalidOption(option, `expected an integer in [${min}, ${max}], got ${shown(value)}`))

/** A secret option: absent gives `undefined`; anything but a `Redacted` string is an error. @internal */
export const redactedOption = (
  option: string,
  value: unknown
): Either.Either<Redacted.Redacted<string> | undefined, TokenStoreError> =>
  value === undefined || (Redacted.isRedacted(value) && typeof Redacted.value(value) === "string")
    ? Either.right(value as Redacted.Redacted<string> | undefined)
    : Either.left(invalidOption(option, `expected a Redacted string, got ${shown(value)}`))

const resolve = (options: SharedOptions): Either.Either<Resolved, TokenStoreError> =>
  Either.gen(function* () {
    const fraction = options.freshFraction
    if (fraction !== undefined && !(typeof fraction === "number" && fraction > 0 && fraction <= 1))
      return yield* Either.left(
        invalidOption("freshFraction", `expected a number in (0, 1], got ${shown(fraction)}`)
      )
    const key = yield* stringOption("key", options.key)
    if (key === undefined)
      return yield* Either.left(invalidOption("key", "expected a non-empty string, got undefined"))
    return {
      key,
      lockTtl: Duration.millis(yield* durationOption("lockTtl", options.lockTtl, 5_000, true)),
      waitMillis: yield* durationOption("waitTimeout", options.waitTimeout, 3_750, false),
      pollMillis: yield* durationOption("pollInterval", options.pollInterval, 100, true),
      operationMillis: yield* durationOption("operationTimeout", options.operationTimeout, 1_000, true),
      freshFraction: fraction ?? 0.9,
      name: (yield* stringOption("name", options.name)) ?? "default"
    }
  })

let ownerCounter = 0

/** A lock owner id unique across processes and across the fetches of one process. @internal */
export const newOwner = (): string => `${globalThis.crypto.randomUUID()}-${++ownerCounter}`

/**
 * The bearer's wrapper. Its options derive from the bearer's own, already checked: invalid ones would be a
 * bug, hence a defect.
 *
 * @internal
 */
export const withStore = (
  source: TokenSource["Type"],
  store: Store,
  options: SharedOptions
): Effect.Effect<TokenSource["Type"]> => Effect.orDie(make(source, store, options))

/** `TokenStore.withStore`: fails with a `TokenStoreError` (operation `open`) for an invalid option. @internal */
export const make = (
  source: TokenSource["Type"],
  store: Store,
  options: SharedOptions
): Effect.Effect<TokenSource["Type"], TokenStoreError> =>
  Effect.suspend(() => {
    const resolved = resolve(options)
    if (Either.isLeft(resolved)) return Effect.fail(resolved.left)
    const opts = resolved.right
    /**
     * The token this wrapper handed out last. A fetch reads it when it begins (`known`): a stored token equal
     * to that one (or older) is no news to it, while a token that a concurrent fetch wrote meanwhile is.
     */
    let last: Token.Token | undefined

    const annotate = <A, E, R>(self: Effect.Effect<A, E, R>) =>
      Effect.annotateLogs(self, { "bearer.name": opts.name, "store.key": opts.key })

    /**
     * Runs one store operation, bounded; a failure or a timeout comes back as `Left`. The operation is made
     * interruptible: `lockAndRenew` runs `tryLock` and `unlock` as the acquire and release of
     * `acquireUseRelease`, which are uninterruptible, and there the timeout could not stop a store that never
     * answers (the fetch, and the closing of the bearer's scope, would wait forever).
     */
    const attempt = <A>(
      operation: string,
      self: Effect.Effect<A, TokenStoreError>
    ): Effect.Effect<Either.Either<A, string>> =>
      self.pipe(
        Effect.interruptible,
        Effect.timeoutFail({
          duration: opts.operationMillis,
          onTimeout: () => `no answer within ${opts.operationMillis} ms` as const
        }),
        Effect.mapError((error) =>
          typeof error === "string" ? `${operation}: ${error}` : `${operation}: ${error.message}`
        ),
        Effect.catchAllDefect((defect) => Effect.fail(`${operation}: defect ${String(defect)}`)),
        Effect.either
      )

    const isAdoptable = (
      stored: Option.Option<StoredToken>,
      now: number,
      known: Token.Token | undefined
    ): stored is Option.Some<StoredToken> => {
      if (Option.isNone(stored)) return false
      const { token, writtenAt } = stored.value
      if (invalidReason(token, now) !== undefined) return false
      const expires = expiresAtMillis(token)
      if (known !== undefined && (Equal.equals(token, known) || expires < expiresAtMillis(known)))
        return false
      if (expires === Infinity) return true
      const lifetime = expires - Math.min(writtenAt, now)
      return now < expires - (1 - opts.freshFraction) * lifetime
    }

    const handOut = (token: Token.Token): Token.Token => {
      last = token
      return token
    }

    const adopt = (stored: StoredToken) =>
      Effect.as(
        annotate(Effect.logDebug("TokenStore: adopted a token renewed by another process")),
        handOut(stored.token)
      )

    /** Writes a token the source gave, unless it is unusable; a failure is logged, never raised. */
    const put = (token: Token.Token) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        invalidReason(token, now) !== undefined
          ? Effect.void
          : Effect.flatMap(attempt("put", store.put(opts.key, { token, writtenAt: now })), (result) =>
              Either.isRight(result)
                ? Effect.void
                : annotate(Effect.logWarning(`TokenStore: could not share the token (${result.left})`))
            )
      )

    /**
     * Calls the source without the lock: the store failed (then the token is not written: the store is likely
     * down and each write would cost one more timeout), or the lock holder took too long (then it is).
     */
    const direct = (why: string, share: boolean) =>
      Effect.zipRight(
        annotate(Effect.logWarning(`TokenStore: ${why}; calling the token source directly`)),
        Effect.tap(source.fetch, (token) =>
          Effect.zipRight(
            share ? put(token) : Effect.void,
            Effect.sync(() => handOut(token))
          )
        )
      )

    /** Holding the lock: look again (the previous holder may have just written), then renew and share. */
    const renewLocked = (known: Token.Token | undefined) =>
      Effect.gen(function* () {
        const again = yield* attempt("get", store.get(opts.key))
        if (Either.isRight(again) && isAdoptable(again.right, yield* Clock.currentTimeMillis, known))
          return yield* adopt(again.right.value)
        const token = yield* source.fetch
        yield* put(token)
        return handOut(token)
      })

    const unlock = (owner: string) =>
      Effect.flatMap(attempt("unlock", store.unlock(opts.key, owner)), (result) =>
        Either.isRight(result)
          ? Effect.void
          : annotate(Effect.logDebug(`TokenStore: could not release the lock (${result.left})`))
      )

    /**
     * Looks in the store: the token another process renewed, adopted, or `None`. A store that fails ends the
     * fetch with a direct call of the source.
     */
    const look = (known: Token.Token | undefined) =>
      Effect.flatMap(attempt("get", store.get(opts.key)), (found) =>
        Either.isLeft(found)
          ? Effect.asSome(direct(`the store failed (${found.left})`, false))
          : Effect.flatMap(Clock.currentTimeMillis, (now) =>
              isAdoptable(found.right, now, known)
                ? Effect.asSome(adopt(found.right.value))
                : Effect.succeedNone
            )
      )

    type Step = { readonly _tag: "Done"; readonly token: Token.Token } | { readonly _tag: "Wait" }

    /** Tries the lock once for `owner`: renews if it got it, otherwise says to wait. */
    const lockAndRenew = (owner: string, known: Token.Token | undefined) =>
      Effect.acquireUseRelease(
        attempt("lock", store.tryLock(opts.key, owner, opts.lockTtl)),
        (
          locked
        ): Effect.Effect<Step | { readonly _tag: "Failed"; readonly why: string }, TokenSourceError> =>
          Either.isLeft(locked)
            ? Effect.succeed({ _tag: "Failed", why: `the store failed (${locked.left})` })
            : locked.right
              ? Effect.map(renewLocked(known), (token) => ({ _tag: "Done", token }) as const)
              : Effect.succeed({ _tag: "Wait" }),
        (locked) => (Either.isRight(locked) && locked.right ? unlock(owner) : Effect.void)
      )

    const fetch = Effect.gen(function* () {
      // One lock owner per fetch: two concurrent fetches of this wrapper are two contenders for the lock.
      const owner = newOwner()
      const known = last
      const deadline = (yield* Clock.currentTimeMillis) + opts.waitMillis
      const first = yield* look(known)
      if (Option.isSome(first)) return first.value
      while (true) {
        const step = yield* lockAndRenew(owner, known)
        if (step._tag === "Done") return step.token
        if (step._tag === "Failed") return yield* direct(step.why, false)
        const now = yield* Clock.currentTimeMillis
        if (now >= deadline)
          return yield* direct(
            `another process has held the refresh lock for more than ${opts.waitMillis} ms`,
            true
          )
        yield* Effect.sleep(Math.min(opts.pollMillis, deadline - now))
        const seen = yield* look(known)
        if (Option.isSome(seen)) return seen.value
      }
    })

    return Effect.succeed({ fetch } satisfies TokenSource["Type"])
  })

interface MemoryLock {
  readonly owner: string
  readonly expiresAt: number
}

/** @internal */
export const makeMemory: Effect.Effect<Store> = Effect.sync(() => {
  const tokens = new Map<string, StoredToken>()
  const locks = new Map<string, MemoryLock>()
  return {
    get: (key) => Effect.sync(() => Option.fromNullable(tokens.get(key))),
    put: (key, stored) =>
      Effect.sync(() => {
        tokens.set(key, stored)
      }),
    tryLock: (key, owner, ttl) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const held = locks.get(key)
        const ttlMillis = Duration.toMillis(ttl)
        // A lock that claims to live longer than a TTL from now is stale, as in the file and Redis stores.
        if (held !== undefined && now < held.expiresAt && held.expiresAt - now <= ttlMillis) return false
        locks.set(key, { owner, expiresAt: now + ttlMillis })
        return true
      }),
    unlock: (key, owner) =>
      Effect.sync(() => {
        if (locks.get(key)?.owner === owner) locks.delete(key)
      })
  } satisfies Store
})
