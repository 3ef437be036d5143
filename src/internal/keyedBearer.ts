import type * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as MutableHashMap from "effect/MutableHashMap"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import type { FetchError } from "../Errors.js"
import type * as KeyedBearer from "../KeyedBearer.js"
import type * as RenewableBearer from "../RenewableBearer.js"
import type * as Token from "../Token.js"
import { InvalidOptionsError, RenewalError, StoppedError } from "./errors.js"
import { decodeMillis, resolve } from "./options.js"
import * as startup from "./awaitFirstToken.js"
import type { Shared } from "./bearerPhase.js"
import * as bearerCore from "./renewableBearer.js"
import type { BearerService } from "./renewableBearer.js"
import { TokenStore, type TokenSource } from "./tags.js"
import * as Waiters from "./waiters.js"

/*
 * Why not `RcMap`: Effect's `RcMap` (effect 3.x) has the reference counting, `idleTimeToLive` and `capacity`
 * this needs, but
 *
 * - at capacity, `RcMap.get` of a new key fails with `ExceededCapacityException` even when every entry is
 *   idle: it never evicts, so "evict the least recently used idle bearer" has to be built beside it anyway
 *   (with a reference count and an LRU order of our own, next to its own);
 * - it forks one fiber per idle entry to wait out `idleTimeToLive`, so 10,000 idle keys would cost 10,000
 *   sleeping fibers on top of the 10,000 bearers' own.
 *
 * So the map below is the minimum on top of `MutableHashMap` (keys by `Equal`/`Hash`, as `RcMap`): a count
 * of users per entry, the idle entries in a `Set` in the order they became idle (which, with one
 * `idleTimeToLive` for every key, is also the order in which they expire, oldest first), and one sweeper
 * fiber for the whole map that sleeps until the oldest idle entry expires.
 */

interface Entry<K> {
  readonly key: K
  readonly scope: Scope.CloseableScope
  /** Set once the bearer is built; until then callers wait on `built`, which is dropped then. */
  bearer: BearerService | undefined
  built: Waiters.Waiters<BearerService, FetchError> | undefined
  /** Callers using the bearer now (a fetch, a request, a scope from `get`). */
  users: number
  /** When an idle entry expires (epoch millis). */
  expiresAt: number
  /** Set when the entry leaves the map (evicted, closed for idleness, its build failed, the service closed). */
  removed: boolean
  /** A fetch of the built bearer that holds the entry in use while it waits; made on the first such fetch. */
  heldFetch: Effect.Effect<Token.Token, FetchError> | undefined
}

/** The two ends of a use, for `Effect.matchCauseEffect`: release the entry, then end as the use did. */
interface Releasing {
  readonly onFailure: (cause: Cause.Cause<unknown>) => Effect.Effect<never, unknown>
  readonly onSuccess: (value: unknown) => Effect.Effect<unknown>
}

const stoppedError = new StoppedError()

/** What a keyed service is built with, decided once. */
interface Settings<K, E, R> {
  readonly options: KeyedBearer.Options<K, E, R>
  readonly idleMillis: number
  readonly capacity: number
  readonly context: Context.Context<R>
  readonly serviceScope: Scope.Scope
  /** One runtime, clock and set of alarms for every key's bearer: an idle bearer holds an alarm, not a fiber. */
  readonly shared: Shared
}

/** @internal */
export const make = <K, E = never, R = never>(
  options: KeyedBearer.Options<K, E, R>
): Effect.Effect<KeyedBearer.KeyedBearer<K>, InvalidOptionsError, R | Scope.Scope> =>
  Effect.gen(function* () {
    const idleMillis = yield* decodeIdleTimeToLive(options.idleTimeToLive)
    const capacity = options.capacity ?? Infinity
    if (!(capacity === Infinity || (Number.isSafeInteger(capacity) && capacity >= 1))) {
      return yield* new InvalidOptionsError({
        option: "capacity",
        detail: `expected a positive integer or Infinity, got ${capacity}`
      })
    }
    // The bearers' options are the same for every key but the name and store key: check them once, now.
    yield* resolve(options.bearer)
    const keyed = new KeyedBearerImpl<K, E, R>({
      options,
      idleMillis,
      capacity,
      context: yield* Effect.context<R>(),
      serviceScope: yield* Effect.scope,
      shared: yield* bearerCore.makeShared
    })
    yield* Effect.addFinalizer(() => keyed.shutdown())
    return keyed.service()
  })

/**
 * The map of keyed bearers: the entries by key, the idle ones in the order they became idle, the callers
 * waiting for a free slot at capacity, and the one sweeper fiber that closes idle bearers.
 */
class KeyedBearerImpl<K, E, R> {
  private readonly entries = MutableHashMap.empty<K, Entry<K>>()
  private readonly idle = new Set<Entry<K>>()
  /** Callers of a new key waiting for a bearer to become idle (so it can be evicted) at capacity. */
  private readonly slotWaiters = new Set<() => void>()
  private closed = false
  private sweeper: Fiber.RuntimeFiber<void> | undefined

  constructor(private readonly settings: Settings<K, E, R>) {}

  service(): KeyedBearer.KeyedBearer<K> {
    return {
      fetch: (key, fetchOptions) =>
        fetchOptions === undefined
          ? Effect.withFiberRuntime((fiber) => this.fetchBuilt(fiber, key) ?? this.use(key, fetchToken))
          : this.use(key, (bearer) => bearer.fetch(fetchOptions), fetchOptions),
      use: (key, f, useOptions) => this.use(key, f, useOptions),
      get: (key) => this.get(key),
      size: Effect.sync(() => MutableHashMap.size(this.entries)),
      idleSize: Effect.sync(() => this.idle.size)
    }
  }

  /**
   * A fetch without options of a key whose bearer is built. If the bearer hands out its token without waiting:
   * that token, with the entry's idle time restarted, and no reference held (nothing can close the bearer
   * between this and the answer). Otherwise the entry's held fetch, which keeps it in use while it waits.
   * `undefined` when there is no built bearer, for the general path.
   */
  private fetchBuilt(
    fiber: Fiber.RuntimeFiber<unknown, unknown>,
    key: K
  ): Effect.Effect<Token.Token, FetchError> | undefined {
    if (this.closed) return undefined
    const found = MutableHashMap.get(this.entries, key)
    if (Option.isNone(found) || found.value.bearer === undefined) return undefined
    const entry = found.value
    const now = Context.get(fiber.currentDefaultServices, Clock.Clock).unsafeCurrentTimeMillis()
    const served = entry.bearer!.served(now)
    if (served === undefined) return (entry.heldFetch ??= this.holdingFetch(entry, entry.bearer!))
    if (entry.users === 0) {
      // An idle entry was used: it moves to the end of the idle order, with its time to live restarted.
      this.idle.delete(entry)
      this.idle.add(entry)
      entry.expiresAt = now + this.settings.idleMillis
    }
    return served
  }

  /**
   * `bearer.fetch()` holding the entry in use until it ends, as `use` does, but built once per entry: a herd of
   * callers waiting for a key's token costs a few objects each, not a dozen closures.
   */
  private holdingFetch(entry: Entry<K>, bearer: BearerService): Effect.Effect<Token.Token, FetchError> {
    const fetch = bearer.fetch()
    const ends = releasing(this.release(entry))
    return Effect.uninterruptibleMask((restore) => {
      // Gone from the map since the fetch looked (between two steps): the general path takes a new entry.
      if (this.closed || entry.removed) return restore(this.use(entry.key, fetchToken))
      entry.users += 1
      this.idle.delete(entry)
      return releasingAfter(restore(fetch), ends)
    })
  }

  /** Closing the service stops every bearer. */
  shutdown(): Effect.Effect<void> {
    return Effect.suspend(() => {
      this.closed = true
      const all = MutableHashMap.values(this.entries)
      MutableHashMap.clear(this.entries)
      for (const entry of all) entry.removed = true
      this.idle.clear()
      this.notifySlot()
      for (const entry of all) entry.built?.done(Exit.fail(stoppedError))
      return Effect.forEach(all, (entry) => Scope.close(entry.scope, Exit.void), { discard: true })
    })
  }

  use<A, E2, R2>(
    key: K,
    f: (bearer: RenewableBearer.Service) => Effect.Effect<A, E2, R2>,
    useOptions?: { readonly timeout?: Duration.DurationInput | undefined }
  ): Effect.Effect<A, E2 | FetchError, R2> {
    return Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(this.reserve(key, restore, useOptions?.timeout), (entry) =>
        releasingAfter(restore(Effect.flatMap(this.ready(entry), f)), releasing(this.release(entry)))
      )
    )
  }

  get(key: K): Effect.Effect<RenewableBearer.Service, FetchError, Scope.Scope> {
    return Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(this.reserve(key, restore, undefined), (entry) =>
        Effect.zipRight(
          Effect.addFinalizer(() => this.release(entry)),
          restore(this.ready(entry))
        )
      )
    )
  }

  private notifySlot(): void {
    for (const resume of this.slotWaiters) resume()
    this.slotWaiters.clear()
  }

  private readonly awaitSlot: Effect.Effect<void> = Effect.async<void>((resume) => {
    const wake = () => resume(Effect.void)
    this.slotWaiters.add(wake)
    return Effect.sync(() => {
      this.slotWaiters.delete(wake)
    })
  })

  /** Removes an entry from the map (synchronously) and returns the effect that stops its bearer. */
  private remove(entry: Entry<K>): Effect.Effect<void> {
    entry.removed = true
    const current = MutableHashMap.get(this.entries, entry.key)
    if (Option.isSome(current) && current.value === entry) MutableHashMap.remove(this.entries, entry.key)
    this.idle.delete(entry)
    entry.built?.done(Exit.fail(stoppedError))
    this.notifySlot()
    return Scope.close(entry.scope, Exit.void)
  }

  /** Builds the key's bearer in the entry's scope: its source, then the bearer on the shared parts. */
  private build(key: K, entry: Entry<K>): Effect.Effect<void> {
    const { options, context, shared } = this.settings
    const name = (options.label ?? defaultLabel)(key)
    const bearerOptions: RenewableBearer.Options = {
      ...options.bearer,
      name,
      storeKey: options.storeKey === undefined ? undefined : options.storeKey(key)
    }
    // Without `storeKey`, keyed bearers leave a shared TokenStore alone: one store key for every key would
    // hand one audience's token to another.
    const withoutStore = (ctx: Context.Context<never>) =>
      options.storeKey === undefined ? Context.omit(TokenStore)(ctx) : ctx
    return options.source(key).pipe(
      Effect.mapError(
        (cause) =>
          new RenewalError({ reason: "SourceError", detail: `the source of key "${name}" failed`, cause })
      ),
      Effect.flatMap((source) => makeBearer(bearerOptions, source, shared)),
      Effect.catchTag("InvalidOptionsError", (error) =>
        Effect.fail(new RenewalError({ reason: "InvalidOptions", detail: error.message, cause: error }))
      ),
      Scope.extend(entry.scope),
      Effect.mapInputContext(
        (ctx: Context.Context<never>) => withoutStore(Context.merge(ctx, context)) as Context.Context<R>
      ),
      Effect.matchCauseEffect({
        onSuccess: (bearer) =>
          Effect.sync(() => {
            entry.bearer = bearer
            entry.built?.done(Exit.succeed(bearer))
            entry.built = undefined
          }),
        onFailure: (cause) => {
          entry.built?.done(Exit.failCause(cause) as Exit.Exit<never, FetchError>)
          return this.remove(entry)
        }
      })
    ) as Effect.Effect<void>
  }

  /**
   * Takes a user of the key's bearer, creating the entry (and starting its build) on first use. Runs
   * uninterruptibly; only the wait for a free slot is interruptible (through `restore`).
   */
  private reserve(
    key: K,
    restore: <A, E2, R2>(effect: Effect.Effect<A, E2, R2>) => Effect.Effect<A, E2, R2>,
    timeout: Duration.DurationInput | undefined
  ): Effect.Effect<Entry<K>, FetchError> {
    return Effect.suspend(() => {
      if (this.closed) return Effect.fail(stoppedError)
      const existing = MutableHashMap.get(this.entries, key)
      if (Option.isSome(existing)) {
        const entry = existing.value
        entry.users += 1
        this.idle.delete(entry)
        return Effect.succeed(entry)
      }
      let evict: Effect.Effect<void> = Effect.void
      if (MutableHashMap.size(this.entries) >= this.settings.capacity) {
        const oldest = this.idle.values().next()
        // Every bearer is in use: wait until one becomes idle (or is removed), then look again.
        if (oldest.done === true)
          return Effect.zipRight(restore(this.slotWait(timeout)), this.reserve(key, restore, timeout))
        evict = this.remove(oldest.value)
      }
      const entry: Entry<K> = {
        key,
        scope: Effect.runSync(Scope.make()),
        bearer: undefined,
        built: Waiters.make(),
        users: 1,
        expiresAt: Infinity,
        removed: false,
        heldFetch: undefined
      }
      MutableHashMap.set(this.entries, key, entry)
      return evict.pipe(
        Effect.zipRight(
          Effect.forkIn(Effect.interruptible(this.build(key, entry)), this.settings.serviceScope)
        ),
        Effect.as(entry)
      )
    })
  }

  /** Closes the idle bearers whose `idleTimeToLive` has passed, oldest first, sleeping until the next. */
  private readonly sweep: Effect.Effect<void> = Effect.suspend(() => {
    const oldest = this.idle.values().next()
    if (oldest.done === true) {
      this.sweeper = undefined
      return Effect.void
    }
    return Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const remaining = oldest.value.expiresAt - now
      if (remaining <= 0) return Effect.zipRight(this.remove(oldest.value), this.sweep)
      return Effect.zipRight(Effect.sleep(remaining), this.sweep)
    })
  })

  /** A user is done: the last one makes the entry idle (and starts the sweeper if it is not running). */
  private release(entry: Entry<K>): Effect.Effect<void> {
    return Effect.clockWith((clock) => {
      const now = clock.unsafeCurrentTimeMillis()
      entry.users -= 1
      if (entry.users > 0 || this.closed || entry.removed) return Effect.void
      const idleMillis = this.settings.idleMillis
      entry.expiresAt = now + idleMillis
      this.idle.add(entry)
      this.notifySlot()
      if (this.sweeper !== undefined || idleMillis === Infinity) return Effect.void
      return Effect.flatMap(
        Effect.forkIn(Effect.interruptible(this.sweep), this.settings.serviceScope),
        (fiber) =>
          Effect.sync(() => {
            // The sweeper may already have run to its end (nothing idle left) before this runs.
            if (this.idle.size > 0 && fiber.unsafePoll() === null) this.sweeper = fiber
          })
      )
    })
  }

  private ready(entry: Entry<K>): Effect.Effect<RenewableBearer.Service, FetchError> {
    return entry.bearer !== undefined ? Effect.succeed(entry.bearer) : entry.built!.await
  }

  /** The wait for a free slot, bounded by the caller's `timeout` if there is one. */
  private slotWait(timeout: Duration.DurationInput | undefined): Effect.Effect<void, FetchError> {
    if (timeout === undefined) return this.awaitSlot
    const millis = decodeMillis(timeout)
    if (Either.isLeft(millis)) {
      return Effect.fail(new RenewalError({ reason: "InvalidOptions", detail: `timeout: ${millis.left}` }))
    }
    return Effect.timeoutFail(this.awaitSlot, {
      duration: millis.right,
      onTimeout: () =>
        new RenewalError({
          reason: "Timeout",
          detail: `every one of the ${this.settings.capacity} keyed bearers is in use, none could be evicted`
        })
    })
  }
}

const defaultLabel = () => "keyed"

// The two ends are made by functions that return them, not written as an object literal's arrow functions:
// those get their names set at run time under a `keepNames` transform (tsx), a property array each.
const failingAfter = (release: Effect.Effect<void>) => (cause: Cause.Cause<unknown>) =>
  Effect.zipRight(release, Effect.failCause(cause))
const succeedingAfter = (release: Effect.Effect<void>) => (value: unknown) => Effect.as(release, value)
const releasing = (release: Effect.Effect<void>): Releasing => ({
  onFailure: failingAfter(release),
  onSuccess: succeedingAfter(release)
})

/**
 * `use`, then the release of `ends`, however `use` ended: `Effect.ensuring` without a mask of its own (the
 * callers hold the entry uninterruptibly already).
 */
const releasingAfter = <A, E, R>(use: Effect.Effect<A, E, R>, ends: Releasing): Effect.Effect<A, E, R> =>
  Effect.matchCauseEffect(use, ends) as Effect.Effect<A, E, R>

const fetchToken = (bearer: RenewableBearer.Service) => bearer.fetch()

/** A key's bearer: its options resolved (`awaitFirstToken` honoured) and the core made on the shared parts. */
const makeBearer = (
  bearerOptions: RenewableBearer.Options,
  source: TokenSource["Type"],
  shared: Shared
): Effect.Effect<BearerService, InvalidOptionsError | RenewalError, Scope.Scope> =>
  startup.withFirstToken(
    bearerOptions,
    Effect.flatMap(resolve(bearerOptions), (opts) => bearerCore.makeFrom(opts, source, shared))
  )

const decodeIdleTimeToLive = (
  input: Duration.DurationInput | undefined
): Effect.Effect<number, InvalidOptionsError> => {
  if (input === undefined) return Effect.succeed(10 * 60_000)
  const decoded = Duration.decodeUnknown(input)
  if (Option.isSome(decoded) && !Duration.isFinite(decoded.value)) return Effect.succeed(Infinity)
  return Either.mapLeft(
    decodeMillis(input),
    (detail) => new InvalidOptionsError({ option: "idleTimeToLive", detail })
  )
}
