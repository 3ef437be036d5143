import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Equal from "effect/Equal"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as MetricLabel from "effect/MetricLabel"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import * as Tracer from "effect/Tracer"
import type { FetchError } from "../Errors.js"
import type { FetchOptions } from "../FetchOptions.js"
import type { Options } from "../RenewableBearer.js"
import type * as Token from "../Token.js"
import { InvalidOptionsError, isTokenSourceError, RenewalError, StoppedError } from "./errors.js"
import * as Metrics from "./metrics.js"
import { backoffMillis, decodeMillis, resolve } from "./options.js"
import * as receiver from "./receiver.js"
import { RenewableBearer, TokenSource, TokenStore } from "./tags.js"
import { makeGuard, makeLatencyWindow, refreshDelayMillis } from "./schedule.js"
import * as tokenStore from "./tokenStore.js"
import { expiresAtMillis, invalidReason } from "./token.js"
import * as Waiters from "./waiters.js"

/**
 * What the cache holds. The hot path reads it with one `Ref` read and compares `usableUntil` with the clock:
 * `-Infinity` means there is nothing to hand out (empty, invalidated, or stopped).
 */
interface CacheState {
  readonly token: Token.Token | undefined
  /** Epoch millis until which `token` is handed out: its expiration less the early-expiry margin. */
  readonly usableUntil: number
  /** Epoch millis of the scheduled refresh; a token served after it is a stale serve and wakes the fiber. */
  readonly refreshAt: number
  /** Epoch millis at which the source handed `token` over. */
  readonly receivedAt: number
  /** `Effect.succeed(token)`, built once per token so the hot path allocates nothing. */
  readonly hit: Effect.Effect<Token.Token, FetchError>
  readonly invalidated: boolean
  readonly stopped: boolean
}

const stoppedError = new StoppedError()
const failStopped = Effect.fail(stoppedError)
const emptyState: CacheState = {
  token: undefined,
  usableUntil: -Infinity,
  refreshAt: -Infinity,
  receivedAt: -Infinity,
  hit: failStopped,
  invalidated: false,
  stopped: false
}
const stoppedState: CacheState = { ...emptyState, stopped: true }

/** What the background fiber waits for before its next attempt. */
type Wait =
  | { readonly _tag: "Now" }
  | { readonly _tag: "Refresh"; readonly millis: number }
  | { readonly _tag: "Backoff"; readonly millis: number }

interface SyncRequest {
  readonly timeoutMillis: number
  readonly waiters: Waiters.Waiters<Token.Token, FetchError>
}

/** Effect's live clock cannot arm a timer longer than this; longer sleeps are taken in parts. */
const MAX_TIMER_MILLIS = 2 ** 31 - 1

const sleepMillis = (millis: number): Effect.Effect<void> =>
  millis <= MAX_TIMER_MILLIS
    ? Effect.sleep(millis)
    : Effect.zipRight(
        Effect.sleep(MAX_TIMER_MILLIS),
        Effect.suspend(() => sleepMillis(millis - MAX_TIMER_MILLIS))
      )

/** The `retryAfter` of a source error in millis, 0 when there is none or it is malformed. */
const retryAfterMillis = (error: { readonly retryAfter?: Duration.DurationInput | undefined }): number => {
  if (error.retryAfter === undefined) return 0
  const millis = decodeMillis(error.retryAfter)
  return Either.isRight(millis) ? millis.right : 0
}

const toRenewalError = (cause: Cause.Cause<unknown>): RenewalError => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) {
    const error = failure.value
    if (error instanceof RenewalError) return error
    return new RenewalError({
      reason: "SourceError",
      detail: isTokenSourceError(error) ? error.message : undefined,
      cause: error
    })
  }
  return new RenewalError({ reason: "SourceDefect", cause: Cause.squash(cause) })
}

/** @internal */
export const make = (
  options?: Options
): Effect.Effect<RenewableBearer["Type"], InvalidOptionsError, TokenSource | Scope.Scope> =>
  Effect.gen(function* () {
    const opts = yield* resolve(options)
    // With a shared `TokenStore` in the context, the source adopts tokens other processes renewed and takes
    // the store's refresh lock before it calls the real source (see `TokenStore.withStore`).
    const store = yield* Effect.serviceOption(TokenStore)
    const source = Option.isNone(store)
      ? yield* TokenSource
      : yield* tokenStore.withStore(yield* TokenSource, store.value, opts)
    const cache = yield* SubscriptionRef.make<CacheState>(emptyState)
    const getState = cache.get

    // Coordination state. It is only touched inside `Effect.sync`/`suspend` blocks, which JavaScript runs
    // to completion, so no update is ever seen half-done.
    let stopped = false
    let renewalPending = false
    let syncRequest: SyncRequest | undefined
    let syncInFlight: SyncRequest | undefined
    let nextToken = Waiters.make<Token.Token, StoppedError>()
    let nextAttempt = Waiters.make<Token.Token, FetchError>()
    let failures = 0
    let unchanged = 0
    let attempts = 0
    let lastFailure: RenewalError | undefined
    let lastLatencyMillis = 0
    // A stale serve asked for the scheduled refresh the timer has not started yet (refresh-ahead on read).
    let aheadPending = false
    let aheadFor: CacheState | undefined
    const latency = makeLatencyWindow()
    const guard = makeGuard(opts)
    const clock = yield* Effect.clock

    // Metric labels, built once: Effect caches a metric's hook per label array.
    const labels = [MetricLabel.make("bearer", opts.name)]
    const labelCache = new Map<string, ReadonlyArray<MetricLabel.MetricLabel>>()
    const labelsWith = (key: string, value: string, key2?: string, value2?: string) => {
      const id = `${key}=${value},${key2}=${value2}`
      let cached = labelCache.get(id)
      if (cached === undefined) {
        cached = [...labels, MetricLabel.make(key, value)]
        if (key2 !== undefined && value2 !== undefined) cached = [...cached, MetricLabel.make(key2, value2)]
        labelCache.set(id, cached)
      }
      return cached
    }
    const recordExpiry = (token: Token.Token | undefined, now: number) => {
      const expires = token === undefined ? 0 : expiresAtMillis(token)
      Metrics.tokenExpiryTimestamp.unsafeUpdate(expires === Infinity ? -1 : expires / 1000, labels)
      Metrics.tokenExpiresIn.unsafeUpdate(
        expires === Infinity ? -1 : token === undefined ? 0 : Math.max(0, (expires - now) / 1000),
        labels
      )
    }

    // Wakes the background fiber from a refresh sleep; a synchronous request also abandons an attempt in flight.
    const wake = Waiters.makeSignal()
    const syncArrived = Waiters.makeSignal()
    const signal = wake.fire
    const signalSync = syncArrived.fire
    // The background fiber is forked with the layer and waits here until the first fetch (or `eager`).
    const startLatch = Waiters.make<void, never>()
    const start = () => startLatch.done(Exit.void)

    // ---- the background fiber ------------------------------------------------------------------------

    const attemptOnce = (
      timeoutMillis: number,
      attempt: number
    ): Effect.Effect<Exit.Exit<Token.Token, RenewalError>> =>
      source.fetch.pipe(
        Effect.timeoutFail({
          duration: timeoutMillis,
          onTimeout: () =>
            new RenewalError({ reason: "SourceTimeout", detail: `no answer within ${timeoutMillis} ms` })
        }),
        Effect.flatMap((token) =>
          Effect.clockWith((clock) => {
            const reason = invalidReason(token, clock.unsafeCurrentTimeMillis())
            return reason === undefined
              ? Effect.succeed(token)
              : Effect.fail(new RenewalError({ reason: "InvalidToken", detail: reason }))
          })
        ),
        Effect.catchAllCause((cause) =>
          Cause.isInterruptedOnly(cause)
            ? Effect.failCause(cause as Cause.Cause<never>)
            : Effect.fail(toRenewalError(cause))
        ),
        Effect.tapBoth({
          onFailure: (error) =>
            Effect.annotateCurrentSpan({ "bearer.outcome": "failure", "bearer.reason": error.reason }),
          onSuccess: () => Effect.annotateCurrentSpan("bearer.outcome", "success")
        }),
        Effect.withSpan("RenewableBearer.refresh", {
          attributes: { "bearer.name": opts.name, "bearer.attempt": attempt },
          root: true
        }),
        Effect.exit
      ) as Effect.Effect<Exit.Exit<Token.Token, RenewalError>>

    /**
     * Whether a synchronous request may abandon the attempt in flight for one of its own: a new source call, so
     * it passes the storm guard; without a credit the request waits for the attempt and runs after it.
     */
    const mayAbandon = (): boolean => {
      const now = clock.unsafeCurrentTimeMillis()
      if (syncRequest === undefined || guard.waitMillis(now) > 0) return false
      guard.spend(now)
      return true
    }

    /** Waits until the in-flight attempt ends, or a synchronous request abandons it. */
    const awaitAttempt = (
      fiber: Fiber.RuntimeFiber<Exit.Exit<Token.Token, RenewalError>>
    ): Effect.Effect<Option.Option<Exit.Exit<Token.Token, RenewalError>>> =>
      Effect.suspend(() => {
        const join = Effect.map(Fiber.join(fiber), Option.some)
        if (mayAbandon()) return Effect.succeedNone
        if (syncRequest !== undefined) return join
        return Effect.raceFirst(
          join,
          Effect.flatMap(syncArrived.next(), () => (mayAbandon() ? Effect.succeedNone : Effect.never))
        )
      })

    const takeSyncRequest = (): SyncRequest | undefined => {
      const request = syncRequest
      syncRequest = undefined
      if (request !== undefined) syncInFlight = request
      return request
    }

    const randomUnit = Random.next

    const refreshDelay = (token: Token.Token, usableUntil: number, now: number): Effect.Effect<number> =>
      Effect.map(opts.jitter > 0 ? randomUnit : Effect.succeed(0), (unit) =>
        refreshDelayMillis(opts, {
          now,
          expiresAt: expiresAtMillis(token),
          usableUntil,
          latencyMillis: latency.estimate(),
          unchanged,
          unit
        })
      )

    /** The backoff after a failure, or the source's own `retryAfter` if longer; never over `maxRetryTimeout`. */
    const retryDelay = (error: RenewalError): Effect.Effect<number> => {
      const permanent = isTokenSourceError(error.cause) && !error.cause.isRetryable
      const base = backoffMillis(opts, failures, permanent)
      const asked = isTokenSourceError(error.cause) ? retryAfterMillis(error.cause) : 0
      return Effect.map(opts.jitter > 0 ? randomUnit : Effect.succeed(0.5), (u) =>
        Math.min(
          Math.max(base * (1 + opts.jitter * (2 * u - 1)), opts.initialRetryMillis, asked),
          opts.maxRetryMillis
        )
      )
    }

    const usableUntilOf = (token: Token.Token, now: number): number => {
      const expires = expiresAtMillis(token)
      if (expires === Infinity) return Infinity
      // The margin never takes more than half of the lifetime's unsafe part, so a fresh token is never
      // counted as expired and a refresh at `lifetimeSafeFraction` still leaves a window to serve it.
      return (
        expires - Math.min(opts.expiryMarginMillis, ((expires - now) * (1 - opts.lifetimeSafeFraction)) / 2)
      )
    }

    const settle = (
      exit: Exit.Exit<Token.Token, RenewalError>,
      now: number,
      sync: SyncRequest | undefined
    ): Effect.Effect<Wait> =>
      Effect.gen(function* () {
        syncInFlight = undefined
        if (Exit.isSuccess(exit)) {
          const token = exit.value
          const previous = (yield* getState).token
          unchanged = previous !== undefined && Equal.equals(previous, token) ? unchanged + 1 : 0
          const usableUntil = usableUntilOf(token, now)
          latency.record(lastLatencyMillis)
          const delay = yield* refreshDelay(token, usableUntil, now)
          aheadPending = false
          yield* SubscriptionRef.set(cache, {
            token,
            usableUntil,
            refreshAt: now + delay,
            receivedAt: now,
            hit: Effect.succeed(token),
            invalidated: false,
            stopped: false
          })
          failures = 0
          lastFailure = undefined
          renewalPending = false
          const done = Exit.succeed(token)
          nextToken.done(done)
          nextAttempt.done(done)
          sync?.waiters.done(done)
          nextToken = Waiters.make()
          nextAttempt = Waiters.make()
          Metrics.refreshAttempts.unsafeUpdate(
            1,
            labelsWith("result", "success", "reason", unchanged > 0 ? "unchanged" : "renewed")
          )
          Metrics.refreshDuration.unsafeUpdate(lastLatencyMillis / 1000, labelsWith("result", "success"))
          Metrics.consecutiveFailures.unsafeUpdate(0, labels)
          recordExpiry(token, now)
          yield* Effect.logDebug("RenewableBearer: token renewed").pipe(
            Effect.annotateLogs({
              "bearer.expiresInMillis":
                expiresAtMillis(token) === Infinity ? "never" : Math.round(expiresAtMillis(token) - now),
              "bearer.nextRefreshInMillis": Math.round(delay),
              "bearer.name": opts.name,
              "bearer.unchanged": unchanged
            })
          )
          return { _tag: "Refresh", millis: delay } as const
        }
        const error = Option.getOrElse(Cause.failureOption(exit.cause), () => toRenewalError(exit.cause))
        failures += 1
        lastFailure = error
        aheadPending = false
        const done = Exit.fail(error)
        nextAttempt.done(done)
        sync?.waiters.done(done)
        nextAttempt = Waiters.make()
        const delay = yield* retryDelay(error)
        Metrics.refreshAttempts.unsafeUpdate(1, labelsWith("result", "failure", "reason", error.reason))
        Metrics.refreshDuration.unsafeUpdate(lastLatencyMillis / 1000, labelsWith("result", "failure"))
        Metrics.consecutiveFailures.unsafeUpdate(failures, labels)
        recordExpiry((yield* getState).token, now)
        const permanent = isTokenSourceError(error.cause) && !error.cause.isRetryable
        const annotations = {
          "bearer.reason": error.reason,
          "bearer.name": opts.name,
          "bearer.consecutiveFailures": failures,
          "bearer.retryInMillis": Math.round(delay)
        }
        // A permanent failure will not go away by itself: an Error, saying what to look at.
        yield* (
          permanent
            ? Effect.logError(
                `RenewableBearer: ${error.message} (permanent: check the source's credentials, client ` +
                  "registration and scopes; retrying at the longest backoff)"
              )
            : Effect.logWarning(`RenewableBearer: ${error.message}`)
        ).pipe(Effect.annotateLogs(annotations))
        return { _tag: "Backoff", millis: delay } as const
      })

    const attemptCycle: Effect.Effect<Wait> = Effect.gen(function* () {
      let sync = takeSyncRequest()
      attempts += 1
      const attempt = attempts
      let started = 0
      let exit: Exit.Exit<Token.Token, RenewalError>
      while (true) {
        started = yield* Clock.currentTimeMillis
        const fiber = yield* Effect.fork(
          attemptOnce(sync?.timeoutMillis ?? opts.refreshRequestMillis, attempt)
        )
        if (sync !== undefined) {
          exit = yield* Fiber.join(fiber)
          break
        }
        const outcome = yield* awaitAttempt(fiber)
        if (Option.isSome(outcome)) {
          exit = outcome.value
          break
        }
        // A synchronous request abandons the background attempt and runs its own.
        yield* Fiber.interrupt(fiber)
        sync = takeSyncRequest()
      }
      const now = yield* Clock.currentTimeMillis
      lastLatencyMillis = now - started
      return yield* settle(exit, now, sync)
    })

    /** Whether a caller asked for an attempt (as opposed to the schedule, or a stale serve standing in for it). */
    const triggered = () => renewalPending || syncRequest !== undefined

    /** Sleeps until the refresh point, a caller's request or a stale serve; returns whether a caller asked. */
    const sleepUnlessWoken = (millis: number): Effect.Effect<boolean> =>
      Effect.suspend(() => {
        if (triggered() || aheadPending) return Effect.succeed(triggered())
        return Effect.map(Effect.raceFirst(sleepMillis(millis), wake.next()), triggered)
      })

    /**
     * The storm guard for an attempt a caller asked for: waits for a credit and spends it, unless the scheduled
     * refresh (at `refreshAt`) comes first, which then runs as scheduled: the guard never delays it.
     */
    const passGuard = (refreshAt: number): Effect.Effect<void> =>
      Effect.suspend(() => {
        const now = clock.unsafeCurrentTimeMillis()
        const wait = guard.waitMillis(now)
        if (wait === 0) return Effect.sync(() => guard.spend(now))
        const scheduled = refreshAt - now <= wait
        return Effect.zipRight(
          Effect.logDebug("RenewableBearer: renewal requests paced by the storm guard").pipe(
            Effect.annotateLogs({
              "bearer.name": opts.name,
              "bearer.retryInMillis": Math.round(Math.max(0, Math.min(wait, refreshAt - now)))
            })
          ),
          scheduled
            ? sleepMillis(Math.max(0, refreshAt - now))
            : Effect.zipRight(
                sleepMillis(wait),
                Effect.sync(() => guard.spend(clock.unsafeCurrentTimeMillis()))
              )
        )
      })

    const loop: Effect.Effect<never> = Effect.gen(function* () {
      yield* startLatch.await
      let wait: Wait = { _tag: "Now" }
      while (true) {
        let asked = true
        let refreshAt = Infinity
        if (wait._tag === "Refresh") {
          refreshAt = clock.unsafeCurrentTimeMillis() + wait.millis
          asked = yield* sleepUnlessWoken(wait.millis)
        } else if (wait._tag === "Backoff") {
          yield* sleepMillis(wait.millis)
          asked = false
        }
        if (asked) yield* passGuard(refreshAt)
        wait = yield* attemptCycle
      }
    })

    const loopFiber = yield* Effect.forkScoped(Effect.interruptible(loop))

    yield* Effect.addFinalizer(() =>
      Effect.gen(function* () {
        // Refuse new waits first, stop the fiber (so it can write nothing more), then clear the cache.
        stopped = true
        yield* Fiber.interrupt(loopFiber)
        yield* SubscriptionRef.set(cache, stoppedState)
        const done = Exit.fail(stoppedError)
        nextToken.done(done)
        nextAttempt.done(done)
        syncRequest?.waiters.done(done)
        syncInFlight?.waiters.done(done)
        syncRequest = syncInFlight = undefined
        yield* Effect.logDebug("RenewableBearer: stopped")
      })
    )

    if (opts.eager) start()

    // ---- the callers' side ---------------------------------------------------------------------------

    const timeoutError = () =>
      new RenewalError({
        reason: "Timeout",
        detail:
          lastFailure === undefined
            ? "no attempt has failed yet"
            : `the last attempt failed: ${lastFailure.message}`,
        cause: lastFailure?.cause
      })

    const invalidFetchOptions = (detail: string) =>
      Effect.fail(new RenewalError({ reason: "InvalidOptions", detail }))

    // The deadlines of every timed wait of this bearer, ended by one sleeper: a waiter with a `timeout` costs
    // no fiber and no timer of its own.
    const deadlines = new Waiters.Deadlines()
    yield* Effect.forkScoped(deadlines.run)

    const requestRenewalNow = (invalidate: boolean): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (stopped) return Effect.void
        start()
        renewalPending = true
        signal()
        return invalidate
          ? SubscriptionRef.update(cache, (s) =>
              s.token === undefined || s.stopped ? s : { ...s, usableUntil: -Infinity, invalidated: true }
            )
          : Effect.void
      })

    /** The waiters of a synchronous renewal, registering one if none is pending; or a malformed option's error. */
    const synchronousFetch = (
      options: FetchOptions
    ): Waiters.Waiters<Token.Token, FetchError> | Effect.Effect<never, FetchError> => {
      const pending = syncInFlight ?? syncRequest
      if (pending !== undefined) return pending.waiters
      let timeoutMillis = opts.refreshRequestMillis
      if (options.renewRequestTimeout !== undefined) {
        const decoded = decodeMillis(options.renewRequestTimeout)
        if (Either.isLeft(decoded)) return invalidFetchOptions(`renewRequestTimeout: ${decoded.left}`)
        if (decoded.right === 0)
          return invalidFetchOptions("renewRequestTimeout: expected a positive duration, got 0")
        timeoutMillis = decoded.right
      }
      const request: SyncRequest = { timeoutMillis, waiters: Waiters.make() }
      syncRequest = request
      renewalPending = true
      start()
      signal()
      signalSync()
      return request.waiters
    }

    /** Hands out a usable cached token, counting a hit or, past the refresh point, a stale serve. */
    const serve = (state: CacheState, now: number): Effect.Effect<Token.Token, FetchError> => {
      if (now < state.refreshAt) Metrics.cacheHits.unsafeUpdate(1, labels)
      else {
        Metrics.cacheStaleServes.unsafeUpdate(1, labels)
        // Past the refresh point the timer is late (a busy event loop, a starved scheduler): the first such
        // serve of each token starts the scheduled refresh itself.
        if (state !== aheadFor) {
          aheadFor = state
          aheadPending = true
          Metrics.refreshAheadWakes.unsafeUpdate(1, labels)
          signal()
        }
      }
      return state.hit
    }

    /**
     * What a fetch does once it has read the cache, in the caller's fiber: hand out a usable token (a hit, or
     * past the refresh point a stale serve), or register as a waiter. Everything is decided in this one step,
     * so a herd of waiters costs little each and the background fiber's source call starts soon after them.
     *
     * A waiting fetch gets a `RenewableBearer.wait` span as a child of its caller's span; a fetch outside any
     * span records none (a root span per waiter would be noise, and would dominate a cold herd's cost).
     */
    const decide = (
      fiber: Fiber.RuntimeFiber<unknown, unknown>,
      state: CacheState,
      options: FetchOptions | undefined
    ): Effect.Effect<Token.Token, FetchError> => {
      const now = Context.get(fiber.currentDefaultServices, Clock.Clock).unsafeCurrentTimeMillis()
      if (now < state.usableUntil && options?.renewRequired !== true) return serve(state, now)
      if (stopped || state.stopped) return failStopped
      let deadline = Infinity
      if (options?.timeout !== undefined) {
        const millis = decodeMillis(options.timeout)
        if (Either.isLeft(millis)) return invalidFetchOptions(`timeout: ${millis.left}`)
        deadline = now + millis.right
      }
      Metrics.cacheMisses.unsafeUpdate(1, labels)
      let mode: "synchronous" | "reportError" | "asynchronous"
      let waiters: Pick<Waiters.Waiters<Token.Token, FetchError>, "await" | "awaitUntil">
      if (options?.synchronous === true) {
        mode = "synchronous"
        const sync = synchronousFetch(options)
        if (Effect.isEffect(sync)) return sync
        waiters = sync
      } else {
        start()
        renewalPending = true
        signal()
        mode = options?.reportError === true ? "reportError" : "asynchronous"
        waiters = mode === "reportError" ? nextAttempt : nextToken
      }
      const wait =
        deadline === Infinity ? waiters.await : waiters.awaitUntil(deadlines, deadline, timeoutError)
      return Context.getOption(fiber.currentContext, Tracer.ParentSpan)._tag === "None"
        ? wait
        : Effect.withSpan(wait, "RenewableBearer.wait", {
            attributes: { "bearer.name": opts.name, "bearer.mode": mode },
            captureStackTrace: false
          })
    }

    // The hot path: one Ref read, one clock read, one comparison, a counter, and a prebuilt effect. It is a
    // constant chain that allocates nothing: the step after the Ref read is built once per cached state (so
    // once per token) and remembered; it reads the caller's `Clock` from its fiber as `Effect.clockWith` does,
    // after the Ref, so the comparison is always against the current instant. Each fetch effect remembers its
    // own step, so one built for an options object stays right however the options of later calls change.
    const memoizedFetch = (options: FetchOptions | undefined): Effect.Effect<Token.Token, FetchError> => {
      let checkedState: CacheState | undefined
      let check: Effect.Effect<Token.Token, FetchError> = failStopped
      return Effect.flatMap(getState, (state) => {
        if (state !== checkedState) {
          checkedState = state
          check = Effect.withFiberRuntime((fiber) => decide(fiber, state, options))
        }
        return check
      })
    }
    const fetchCached = memoizedFetch(undefined)

    // The last options object a caller used (BearerHttpClient passes one constant per client) keeps its fetch.
    let lastOptions: FetchOptions | undefined
    let lastOptionsFetch: Effect.Effect<Token.Token, FetchError> = fetchCached
    const fetch = (options?: FetchOptions): Effect.Effect<Token.Token, FetchError> => {
      if (options === undefined) return fetchCached
      if (options !== lastOptions) {
        lastOptions = options
        lastOptionsFetch = memoizedFetch(options)
      }
      return lastOptionsFetch
    }

    const invalidate = (token: Token.Token): Effect.Effect<boolean> =>
      Effect.flatMap(getState, (state) => {
        if (stopped || state.invalidated || state.token === undefined || !Equal.equals(state.token, token)) {
          Metrics.invalidations.unsafeUpdate(1, labelsWith("outcome", "ignored"))
          return Effect.succeed(false)
        }
        Metrics.invalidations.unsafeUpdate(1, labelsWith("outcome", "acted"))
        guard.rejected(state.receivedAt, clock.unsafeCurrentTimeMillis())
        return Effect.as(requestRenewalNow(true), true)
      })

    const current = Effect.clockWith((clock) =>
      Effect.map(getState, (state) =>
        clock.unsafeCurrentTimeMillis() < state.usableUntil ? Option.fromNullable(state.token) : Option.none()
      )
    )

    const isRenewalRequired = Effect.clockWith((clock) =>
      Effect.map(
        getState,
        (state) => renewalPending || !(clock.unsafeCurrentTimeMillis() < state.usableUntil)
      )
    )

    const changes: Stream.Stream<Token.Token> = cache.changes.pipe(
      Stream.takeWhile((state) => !state.stopped),
      Stream.filterMap((state) => Option.fromNullable(state.token)),
      Stream.changesWith((a, b) => a === b)
    )

    const bearer: RenewableBearer["Type"] = RenewableBearer.of({
      fetch,
      receiver: Effect.suspend(() => receiver.make({ fetch, invalidate, maxRetries: opts.maxRetries })),
      requestRenewal: (options) => requestRenewalNow(options?.invalidate === true),
      invalidate,
      isRenewalRequired,
      current,
      changes
    })
    return bearer
  })
