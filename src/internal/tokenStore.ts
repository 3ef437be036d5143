import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Equal from "effect/Equal"
import * as Option from "effect/Option"
import type * as Token from "../Token.js"
import type { TokenSource } from "../TokenSource.js"
import type { SharedOptions, StoredToken, TokenStore } from "../TokenStore.js"
import { type TokenSourceError, TokenStoreError } from "./errors.js"
import {
  type Decoded,
  type Decoder,
  duration,
  number,
  positiveDuration,
  type ResolvedOptions,
  string,
  withDefault
} from "./options.js"
import { expiresAtMillis, invalidReason } from "./token.js"

type Store = TokenStore["Type"]

/** Options of `withStore`, decided once: every duration in milliseconds. @internal */
export interface SharedSettings {
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
 * A store option checked with the library's one set of decoders (`internal/options.ts`), its detail as a
 * `TokenStoreError` (operation `open`, reason `InvalidOptions`).
 *
 * @internal
 */
export const storeOption = <A>(option: string, decoded: Decoded<A>): Either.Either<A, TokenStoreError> =>
  Either.mapLeft(decoded, (detail) => invalidOption(option, detail))

/** The options of `withStore` given by hand, checked once; absent ones take their defaults. */
const resolve = (options: SharedOptions): Either.Either<SharedSettings, TokenStoreError> =>
  Either.gen(function* () {
    const option = <K extends keyof SharedOptions, A>(key: K, fallback: A, decode: Decoder<A>) =>
      storeOption(key, withDefault(options[key], fallback, decode))
    const freshFraction = yield* option(
      "freshFraction",
      0.9,
      number((n) => n > 0 && n <= 1, "a number in (0, 1]")
    )
    const key = yield* storeOption("key", string()(options.key))
    return {
      key,
      lockTtl: Duration.millis(yield* option("lockTtl", 5_000, positiveDuration)),
      waitMillis: yield* option("waitTimeout", 3_750, duration()),
      pollMillis: yield* option("pollInterval", 100, positiveDuration),
      operationMillis: yield* option("operationTimeout", 1_000, positiveDuration),
      freshFraction,
      name: yield* option("name", "default", string())
    }
  })

/**
 * The settings the bearer shares its tokens with, derived from its own options (already checked, so nothing
 * is decoded again): the lock lives as long as one source call may take, a waiter gives up after three
 * quarters of it, and each store operation is bounded by a fifth of it (at most 1 second).
 *
 * @internal
 */
export const bearerSettings = (opts: ResolvedOptions): SharedSettings => ({
  key: opts.storeKey,
  lockTtl: Duration.millis(opts.refreshRequestMillis),
  waitMillis: (opts.refreshRequestMillis * 3) / 4,
  pollMillis: 100,
  operationMillis: Math.min(1_000, opts.refreshRequestMillis / 5),
  freshFraction: opts.lifetimeSafeFraction,
  name: opts.name
})

let ownerCounter = 0

/** A lock owner id unique across processes and across the fetches of one process. @internal */
export const newOwner = (): string => `${globalThis.crypto.randomUUID()}-${++ownerCounter}`

/**
 * The bearer's wrapper, its settings derived from the bearer's own options (see `bearerSettings`).
 *
 * @internal
 */
export const withStore = (
  source: TokenSource["Type"],
  store: Store,
  opts: ResolvedOptions
): Effect.Effect<TokenSource["Type"]> => Effect.sync(() => share(source, store, bearerSettings(opts)))

/** `TokenStore.withStore`: fails with a `TokenStoreError` (operation `open`) for an invalid option. @internal */
export const make = (
  source: TokenSource["Type"],
  store: Store,
  options: SharedOptions
): Effect.Effect<TokenSource["Type"], TokenStoreError> =>
  Effect.suspend(() => Either.map(resolve(options), (settings) => share(source, store, settings)))

/** The source that shares its tokens through `store`. */
const share = (source: TokenSource["Type"], store: Store, opts: SharedSettings): TokenSource["Type"] => ({
  fetch: new SharedSource(source, store, opts).fetch
})

/** One step of a fetch that tried the lock: renewed, told to wait, or the store failed. */
type Step =
  | { readonly _tag: "Done"; readonly token: Token.Token }
  | { readonly _tag: "Wait" }
  | { readonly _tag: "Failed"; readonly why: string }

/**
 * A source sharing its tokens through a store: its one field of state is the token it handed out last, its
 * members the steps of a fetch (look in the store, take the lock and renew, wait, or call the source directly).
 */
class SharedSource {
  /**
   * The token this wrapper handed out last. A fetch reads it when it begins (`known`): a stored token equal
   * to that one (or older) is no news to it, while a token that a concurrent fetch wrote meanwhile is.
   */
  private last: Token.Token | undefined

  constructor(
    private readonly source: TokenSource["Type"],
    private readonly store: Store,
    private readonly opts: SharedSettings
  ) {}

  /**
   * A fetch: the stored token if another process renewed it, else the lock and a renewal, else (while another
   * process holds the lock) a poll of the store until the wait is over, then the source directly.
   */
  readonly fetch: Effect.Effect<Token.Token, TokenSourceError> = Effect.suspend(() => this.fetchOnce())

  /** One fetch, from its first look in the store to the token it hands out. */
  private fetchOnce(): Effect.Effect<Token.Token, TokenSourceError> {
    return Effect.gen(this, function* () {
      // One lock owner per fetch: two concurrent fetches of this wrapper are two contenders for the lock.
      const owner = newOwner()
      const known = this.last
      const deadline = (yield* Clock.currentTimeMillis) + this.opts.waitMillis
      const first = yield* this.look(known)
      if (Option.isSome(first)) return first.value
      while (true) {
        const step = yield* this.lockAndRenew(owner, known)
        if (step._tag === "Done") return step.token
        if (step._tag === "Failed") return yield* this.direct(step.why, false)
        const now = yield* Clock.currentTimeMillis
        if (now >= deadline)
          return yield* this.direct(
            `another process has held the refresh lock for more than ${this.opts.waitMillis} ms`,
            true
          )
        yield* Effect.sleep(Math.min(this.opts.pollMillis, deadline - now))
        const seen = yield* this.look(known)
        if (Option.isSome(seen)) return seen.value
      }
    })
  }

  /** Adds the bearer's name and the store key to the logs of `self`. */
  private annotate<A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> {
    return Effect.annotateLogs(self, { "bearer.name": this.opts.name, "store.key": this.opts.key })
  }

  /**
   * Runs one store operation, bounded; a failure or a timeout comes back as `Left`. The operation is made
   * interruptible: `lockAndRenew` runs `tryLock` and `unlock` as the acquire and release of
   * `acquireUseRelease`, which are uninterruptible, and there the timeout could not stop a store that never
   * answers (the fetch, and the closing of the bearer's scope, would wait forever).
   */
  private attempt<A>(
    operation: string,
    self: Effect.Effect<A, TokenStoreError>
  ): Effect.Effect<Either.Either<A, string>> {
    const operationMillis = this.opts.operationMillis
    return self.pipe(
      Effect.interruptible,
      Effect.timeoutFail({
        duration: operationMillis,
        onTimeout: () => `no answer within ${operationMillis} ms` as const
      }),
      Effect.mapError((error) =>
        typeof error === "string" ? `${operation}: ${error}` : `${operation}: ${error.message}`
      ),
      Effect.catchAllDefect((defect) => Effect.fail(`${operation}: defect ${String(defect)}`)),
      Effect.either
    )
  }

  /** Whether a stored token is usable, news to this fetch, and still within its fresh part. */
  private isAdoptable(
    stored: Option.Option<StoredToken>,
    now: number,
    known: Token.Token | undefined
  ): stored is Option.Some<StoredToken> {
    if (Option.isNone(stored)) return false
    const { token, writtenAt } = stored.value
    if (invalidReason(token, now) !== undefined) return false
    const expires = expiresAtMillis(token)
    if (known !== undefined && (Equal.equals(token, known) || expires < expiresAtMillis(known))) return false
    if (expires === Infinity) return true
    const lifetime = expires - Math.min(writtenAt, now)
    return now < expires - (1 - this.opts.freshFraction) * lifetime
  }

  /** Remembers the token handed out (see `last`) and returns it. */
  private handOut(token: Token.Token): Token.Token {
    this.last = token
    return token
  }

  /** Hands out a token another process renewed, with a debug log. */
  private adopt(stored: StoredToken): Effect.Effect<Token.Token> {
    return Effect.as(
      this.annotate(Effect.logDebug("TokenStore: adopted a token renewed by another process")),
      this.handOut(stored.token)
    )
  }

  /** Writes a token the source gave, unless it is unusable; a failure is logged, never raised. */
  private put(token: Token.Token): Effect.Effect<void> {
    return Effect.flatMap(Clock.currentTimeMillis, (now) =>
      invalidReason(token, now) !== undefined
        ? Effect.void
        : Effect.flatMap(
            this.attempt("put", this.store.put(this.opts.key, { token, writtenAt: now })),
            (result) =>
              Either.isRight(result)
                ? Effect.void
                : this.annotate(Effect.logWarning(`TokenStore: could not share the token (${result.left})`))
          )
    )
  }

  /**
   * Calls the source without the lock: the store failed (then the token is not written: the store is likely
   * down and each write would cost one more timeout), or the lock holder took too long (then it is).
   */
  private direct(why: string, share: boolean): Effect.Effect<Token.Token, TokenSourceError> {
    return Effect.zipRight(
      this.annotate(Effect.logWarning(`TokenStore: ${why}; calling the token source directly`)),
      Effect.tap(this.source.fetch, (token) =>
        Effect.zipRight(
          share ? this.put(token) : Effect.void,
          Effect.sync(() => this.handOut(token))
        )
      )
    )
  }

  /** Holding the lock: look again (the previous holder may have just written), then renew and share. */
  private renewLocked(known: Token.Token | undefined): Effect.Effect<Token.Token, TokenSourceError> {
    return Effect.gen(this, function* () {
      const again = yield* this.attempt("get", this.store.get(this.opts.key))
      if (Either.isRight(again) && this.isAdoptable(again.right, yield* Clock.currentTimeMillis, known))
        return yield* this.adopt(again.right.value)
      const token = yield* this.source.fetch
      yield* this.put(token)
      return this.handOut(token)
    })
  }

  /** Releases the lock of `owner`; a failure is logged, never raised (the lock expires anyway). */
  private unlock(owner: string): Effect.Effect<void> {
    return Effect.flatMap(this.attempt("unlock", this.store.unlock(this.opts.key, owner)), (result) =>
      Either.isRight(result)
        ? Effect.void
        : this.annotate(Effect.logDebug(`TokenStore: could not release the lock (${result.left})`))
    )
  }

  /**
   * Looks in the store: the token another process renewed, adopted, or `None`. A store that fails ends the
   * fetch with a direct call of the source.
   */
  private look(known: Token.Token | undefined): Effect.Effect<Option.Option<Token.Token>, TokenSourceError> {
    return Effect.flatMap(this.attempt("get", this.store.get(this.opts.key)), (found) =>
      Either.isLeft(found)
        ? Effect.asSome(this.direct(`the store failed (${found.left})`, false))
        : Effect.flatMap(Clock.currentTimeMillis, (now) =>
            this.isAdoptable(found.right, now, known)
              ? Effect.asSome(this.adopt(found.right.value))
              : Effect.succeedNone
          )
    )
  }

  /** Tries the lock once for `owner`: renews if it got it, otherwise says to wait. */
  private lockAndRenew(owner: string, known: Token.Token | undefined): Effect.Effect<Step, TokenSourceError> {
    return Effect.acquireUseRelease(
      this.attempt("lock", this.store.tryLock(this.opts.key, owner, this.opts.lockTtl)),
      (locked): Effect.Effect<Step, TokenSourceError> =>
        Either.isLeft(locked)
          ? Effect.succeed({ _tag: "Failed", why: `the store failed (${locked.left})` })
          : locked.right
            ? Effect.map(this.renewLocked(known), (token) => ({ _tag: "Done", token }) as const)
            : Effect.succeed({ _tag: "Wait" }),
      (locked) => (Either.isRight(locked) && locked.right ? this.unlock(owner) : Effect.void)
    )
  }
}

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
