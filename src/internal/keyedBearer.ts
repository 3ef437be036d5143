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
import type { FetchOptions } from "../FetchOptions.js"
import type * as KeyedBearer from "../KeyedBearer.js"
import type * as RenewableBearer from "../RenewableBearer.js"
import type * as Token from "../Token.js"
import { InvalidOptionsError, RenewalError, StoppedError } from "./errors.js"
import { decodeMillis, resolve } from "./options.js"
import * as startup from "./awaitFirstToken.js"
import * as bearerCore from "./renewableBearer.js"
import { TokenStore } from "./tags.js"
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
  bearer: RenewableBearer.Service | undefined
  built: Waiters.Waiters<RenewableBearer.Service, FetchError> | undefined
  /** Callers using the bearer now (a fetch, a request, a scope from `get`). */
  users: number
  /** When an idle entry expires (epoch millis). */
  expiresAt: number
}

const stoppedError = new StoppedError()

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
    const label = options.label ?? (() => "keyed")
    const storeKey = options.storeKey
    const context = yield* Effect.context<R>()
    const serviceScope = yield* Effect.scope
    // One runtime, clock and set of alarms for every key's bearer: an idle bearer holds an alarm, not a fiber.
    const shared = yield* bearerCore.makeShared

    const entries = MutableHashMap.empty<K, Entry<K>>()
    const idle = new Set<Entry<K>>()
    /** Callers of a new key waiting for a bearer to become idle (so it can be evicted) at capacity. */
    const slotWaiters = new Set<() => void>()
    let closed = false
    let sweeper: Fiber.RuntimeFiber<void> | undefined

    const notifySlot = () => {
      for (const resume of slotWaiters) resume()
      slotWaiters.clear()
    }
    const awaitSlot: Effect.Effect<void> = Effect.async<void>((resume) => {
      const wake = () => resume(Effect.void)
      slotWaiters.add(wake)
      return Effect.sync(() => {
        slotWaiters.delete(wake)
      })
    })

    /** Removes an entry from the map (synchronously) and returns the effect that stops its bearer. */
    const remove = (entry: Entry<K>): Effect.Effect<void> => {
      const current = MutableHashMap.get(entries, entry.key)
      if (Option.isSome(current) && current.value === entry) MutableHashMap.remove(entries, entry.key)
      idle.delete(entry)
      entry.built?.done(Exit.fail(stoppedError))
      notifySlot()
      return Scope.close(entry.scope, Exit.void)
    }

    const build = (key: K, entry: Entry<K>): Effect.Effect<void> => {
      const name = label(key)
      const bearerOptions: RenewableBearer.Options = {
        ...options.bearer,
        name,
        storeKey: storeKey === undefined ? undefined : storeKey(key)
      }
      // Without `storeKey`, keyed bearers leave a shared TokenStore alone: one store key for every key would
      // hand one audience's token to another.
      const withoutStore = (ctx: Context.Context<never>) =>
        storeKey === undefined ? Context.omit(TokenStore)(ctx) : ctx
      return options.source(key).pipe(
        Effect.mapError(
          (cause) =>
            new RenewalError({ reason: "SourceError", detail: `the source of key "${name}" failed`, cause })
        ),
        Effect.flatMap((source) =>
          Effect.flatMap(
            Effect.zip(resolve(bearerOptions), startup.resolveAwaitFirstToken(bearerOptions)),
            ([opts, awaitMillis]) => {
              const made = bearerCore.makeFrom(opts, source, shared)
              return awaitMillis === undefined
                ? made
                : Effect.tap(made, (bearer) => startup.awaitFirstToken(bearer, awaitMillis))
            }
          )
        ),
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
            const failure = Exit.failCause(cause)
            entry.built?.done(failure as Exit.Exit<never, FetchError>)
            return remove(entry)
          }
        })
      ) as Effect.Effect<void>
    }

    /**
     * Takes a user of the key's bearer, creating the entry (and starting its build) on first use. Runs
     * uninterruptibly; only the wait for a free slot is interruptible (through `restore`).
     */
    const reserve = (
      key: K,
      restore: <A, E2, R2>(effect: Effect.Effect<A, E2, R2>) => Effect.Effect<A, E2, R2>,
      timeout: Duration.DurationInput | undefined
    ): Effect.Effect<Entry<K>, FetchError> =>
      Effect.suspend(() => {
        if (closed) return Effect.fail(stoppedError)
        const existing = MutableHashMap.get(entries, key)
        if (Option.isSome(existing)) {
          const entry = existing.value
          entry.users += 1
          idle.delete(entry)
          return Effect.succeed(entry)
        }
        let evict: Effect.Effect<void> = Effect.void
        if (MutableHashMap.size(entries) >= capacity) {
          const oldest = idle.values().next()
          // Every bearer is in use: wait until one becomes idle (or is removed), then look again.
          if (oldest.done === true)
            return Effect.zipRight(restore(slotWait(timeout)), reserve(key, restore, timeout))
          evict = remove(oldest.value)
        }
        const entry: Entry<K> = {
          key,
          scope: Effect.runSync(Scope.make()),
          bearer: undefined,
          built: Waiters.make(),
          users: 1,
          expiresAt: Infinity
        }
        MutableHashMap.set(entries, key, entry)
        return evict.pipe(
          Effect.zipRight(Effect.forkIn(Effect.interruptible(build(key, entry)), serviceScope)),
          Effect.as(entry)
        )
      })

    const sweep: Effect.Effect<void> = Effect.suspend(() => {
      const oldest = idle.values().next()
      if (oldest.done === true) {
        sweeper = undefined
        return Effect.void
      }
      return Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const remaining = oldest.value.expiresAt - now
        if (remaining <= 0) return Effect.zipRight(remove(oldest.value), sweep)
        return Effect.zipRight(Effect.sleep(remaining), sweep)
      })
    })

    const release = (entry: Entry<K>): Effect.Effect<void> =>
      Effect.clockWith((clock) => {
        const now = clock.unsafeCurrentTimeMillis()
        entry.users -= 1
        if (entry.users > 0 || closed) return Effect.void
        const current = MutableHashMap.get(entries, entry.key)
        if (Option.isNone(current) || current.value !== entry) return Effect.void
        entry.expiresAt = now + idleMillis
        idle.add(entry)
        notifySlot()
        if (sweeper !== undefined || idleMillis === Infinity) return Effect.void
        return Effect.flatMap(Effect.forkIn(Effect.interruptible(sweep), serviceScope), (fiber) =>
          Effect.sync(() => {
            // The sweeper may already have run to its end (nothing idle left) before this runs.
            if (idle.size > 0 && fiber.unsafePoll() === null) sweeper = fiber
          })
        )
      })

    const ready = (entry: Entry<K>): Effect.Effect<RenewableBearer.Service, FetchError> =>
      entry.bearer !== undefined ? Effect.succeed(entry.bearer) : entry.built!.await

    /** The wait for a free slot, bounded by the caller's `timeout` if there is one. */
    const slotWait = (timeout: Duration.DurationInput | undefined): Effect.Effect<void, FetchError> => {
      if (timeout === undefined) return awaitSlot
      const millis = decodeMillis(timeout)
      if (Either.isLeft(millis)) {
        return Effect.fail(new RenewalError({ reason: "InvalidOptions", detail: `timeout: ${millis.left}` }))
      }
      return Effect.timeoutFail(awaitSlot, {
        duration: millis.right,
        onTimeout: () =>
          new RenewalError({
            reason: "Timeout",
            detail: `every one of the ${capacity} keyed bearers is in use, none could be evicted`
          })
      })
    }

    const use = <A, E2, R2>(
      key: K,
      f: (bearer: RenewableBearer.Service) => Effect.Effect<A, E2, R2>,
      useOptions?: { readonly timeout?: Duration.DurationInput | undefined }
    ): Effect.Effect<A, E2 | FetchError, R2> =>
      Effect.uninterruptibleMask((restore) =>
        Effect.flatMap(reserve(key, restore, useOptions?.timeout), (entry) =>
          Effect.ensuring(restore(Effect.flatMap(ready(entry), f)), release(entry))
        )
      )

    const get = (key: K): Effect.Effect<RenewableBearer.Service, FetchError, Scope.Scope> =>
      Effect.uninterruptibleMask((restore) =>
        Effect.flatMap(reserve(key, restore, undefined), (entry) =>
          Effect.zipRight(
            Effect.addFinalizer(() => release(entry)),
            restore(ready(entry))
          )
        )
      )

    const fetch = (key: K, fetchOptions?: FetchOptions): Effect.Effect<Token.Token, FetchError> =>
      use(key, (bearer) => bearer.fetch(fetchOptions), fetchOptions)

    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        closed = true
        const all = MutableHashMap.values(entries)
        MutableHashMap.clear(entries)
        idle.clear()
        notifySlot()
        for (const entry of all) entry.built?.done(Exit.fail(stoppedError))
        return Effect.forEach(all, (entry) => Scope.close(entry.scope, Exit.void), { discard: true })
      })
    )

    const service: KeyedBearer.KeyedBearer<K> = {
      fetch,
      use,
      get,
      size: Effect.sync(() => MutableHashMap.size(entries)),
      idleSize: Effect.sync(() => idle.size)
    }
    return service
  })

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
