import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Equal from "effect/Equal"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Runtime from "effect/Runtime"
import type { FetchError } from "../Errors.js"
import type * as Token from "../Token.js"
import type { Alarms } from "./alarms.js"
import { attemptOnce, isPermanent, retryAfterMillis, toRenewalError } from "./attempt.js"
import type { BearerReport } from "./bearerReport.js"
import {
  type Attempting,
  idle,
  type Phase,
  type Shared,
  type Sleeping,
  stopped,
  type SyncRequest
} from "./bearerPhase.js"
import * as CacheState from "./cacheState.js"
import { RenewalError, type StoppedError } from "./errors.js"
import type { ResolvedOptions } from "./options.js"
import { Guard, LatencyWindow, refreshDelayMillis, retryDelayMillis, usableUntilMillis } from "./schedule.js"
import type { TokenSource } from "./tags.js"
import { expiresAtMillis } from "./token.js"
import * as Waiters from "./waiters.js"

/** What settling an attempt's outcome knows besides the outcome itself. */
interface Outcome {
  readonly now: number
  readonly latencyMillis: number
  /** The jitter's random unit, or -1 without jitter. */
  readonly unit: number
  /** The synchronous request the attempt carried. */
  readonly sync: SyncRequest | undefined
}

/**
 * The state machine of one bearer, in the style of Effect's `PoolImpl`: its fields are the whole state, its
 * members the transitions. The cached token lives in `cache`, which only the machine writes.
 *
 * @internal
 */
export class BearerMachine {
  readonly cache = new CacheState.Cache()
  phase: Phase = idle
  /** A caller asked for a renewal that only a successful attempt satisfies. */
  asked = false
  /** The synchronous renewal queued or in flight. */
  sync: SyncRequest | undefined
  /** Waiters for the next token, and `reportError` waiters for the next attempt's outcome; made on first use. */
  private tokenWaiters: Waiters.Waiters<Token.Token, StoppedError> | undefined
  private attemptWaiters: Waiters.Waiters<Token.Token, FetchError> | undefined
  /** The last failure since the last success, for a timed-out waiter's error. */
  lastFailure: RenewalError | undefined
  /** The cached state whose stale serve woke the machine (once per token). */
  aheadFor: CacheState.CacheState | undefined
  private failures = 0
  private unchanged = 0
  private attempts = 0
  private readonly latency = new LatencyWindow()
  private timedWaits: Waiters.Deadlines | undefined
  readonly guard: Guard

  constructor(
    readonly opts: ResolvedOptions,
    private readonly source: TokenSource["Type"],
    private readonly shared: Shared,
    readonly report: BearerReport
  ) {
    this.guard = new Guard(opts)
  }

  private get alarms(): Alarms {
    return this.shared.alarms
  }

  now(): number {
    return this.shared.clock.unsafeCurrentTimeMillis()
  }

  get isStopped(): boolean {
    return this.phase._tag === "Stopped"
  }

  /** The deadlines of the timed waits, on this bearer's alarms; made with the first timed wait. */
  deadlines(): Waiters.Deadlines {
    return (this.timedWaits ??= new Waiters.Deadlines(this.alarms, this.shared.clock))
  }

  /** The waiters for the next token. */
  nextToken(): Waiters.Waiters<Token.Token, StoppedError> {
    return (this.tokenWaiters ??= Waiters.make())
  }

  /** The waiters for the next attempt's outcome (`reportError`). */
  nextAttempt(): Waiters.Waiters<Token.Token, FetchError> {
    return (this.attemptWaiters ??= Waiters.make())
  }

  // ---- callers -------------------------------------------------------------------------------------------

  /**
   * A caller asks for a renewal (a fetch that found no usable token, `requestRenewal`, an invalidation, a
   * synchronous fetch). It passes the storm guard unless an attempt or a backoff is under way already.
   */
  ask(): void {
    const phase = this.phase
    if (phase._tag === "Stopped") return
    this.asked = true
    if (phase._tag === "Idle") this.passGuard(Infinity)
    else if (phase._tag === "Sleeping" && phase.kind === "Refresh") {
      this.alarms.cancel(phase.alarm)
      this.passGuard(phase.until)
    } else if (phase._tag === "Attempting" && this.sync !== undefined && !this.sync.inFlight) {
      this.mayAbandon(phase)
    }
  }

  /**
   * A fetch served the cached token past its refresh point: the alarm is late (a busy event loop, a starved
   * scheduler), so the scheduled refresh starts now (refresh-ahead on read), once per token.
   */
  staleServe(state: CacheState.CacheState): void {
    if (state === this.aheadFor) return
    this.aheadFor = state
    this.report.refreshAheadWake()
    const phase = this.phase
    if (phase._tag === "Sleeping" && phase.kind === "Refresh") {
      this.alarms.cancel(phase.alarm)
      this.startAttempt(0)
    }
  }

  /** The synchronous renewal to join, registering one (and asking) if none is queued or in flight. */
  synchronous(timeoutMillis: number): Waiters.Waiters<Token.Token, FetchError> {
    if (this.sync !== undefined) return this.sync.waiters
    const request: SyncRequest = { timeoutMillis, waiters: Waiters.make(), inFlight: false }
    this.sync = request
    this.ask()
    return request.waiters
  }

  /** Invalidates the cached token if it is `token` (and still handed out); returns whether it acted. */
  invalidate(token: Token.Token): Effect.Effect<boolean> {
    return Effect.suspend(() => {
      const state = this.cache.value
      if (this.isStopped || state._tag !== "Fresh" || !Equal.equals(state.token, token)) {
        this.report.invalidation(false)
        return Effect.succeed(false)
      }
      this.report.invalidation(true)
      this.guard.rejected(state.receivedAt, this.now())
      const write = this.cache.set(CacheState.invalidated(state.token))
      this.ask()
      return Effect.as(write, true)
    })
  }

  /** `requestRenewal`: asks, and with `invalidate` stops handing out the cached token. */
  requestRenewal(invalidate: boolean): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (this.isStopped) return Effect.void
      const state = this.cache.value
      this.ask()
      if (!invalidate || state._tag !== "Fresh") return Effect.void
      return this.cache.set(CacheState.invalidated(state.token))
    })
  }

  /** Starts the machine if it is idle (`eager`, or the first fetch). */
  start(): void {
    if (this.phase._tag === "Idle") this.ask()
  }

  /** The error of a timed wait that ran out. */
  timeoutError(): RenewalError {
    const last = this.lastFailure
    return new RenewalError({
      reason: "Timeout",
      detail: last === undefined ? "no attempt has failed yet" : `the last attempt failed: ${last.message}`,
      cause: last?.cause
    })
  }

  // ---- transitions ---------------------------------------------------------------------------------------

  /**
   * The storm guard for an attempt a caller asked for: it starts now if there is a credit (and spends it);
   * otherwise it waits for the next credit, unless the scheduled refresh (`refreshAt`) comes first, which then
   * runs as scheduled without one: the guard never delays it.
   */
  private passGuard(refreshAt: number): void {
    const now = this.now()
    const wait = this.guard.waitMillis(now)
    if (wait === 0) {
      this.guard.spend(now)
      return this.startAttempt(0)
    }
    if (refreshAt - now <= wait) this.sleep("Held", Math.max(now, refreshAt), Math.max(0, refreshAt - now))
    else this.sleep("Guard", now + wait, wait)
  }

  private sleep(kind: Sleeping["kind"], until: number, pacedMillis = 0): void {
    const alarm = this.alarms.set(until, this)
    this.phase = { _tag: "Sleeping", kind, until, alarm, pacedMillis }
  }

  /** The alarm of a `Sleeping` phase rang. */
  ring(): void {
    const phase = this.phase
    if (phase._tag !== "Sleeping") return
    if (phase.kind === "Guard") this.guard.spend(this.now())
    this.startAttempt(phase.pacedMillis)
  }

  private startAttempt(pacedMillis: number): void {
    this.attempts += 1
    this.launch(this.attempts, pacedMillis, undefined)
  }

  /**
   * A synchronous fetch arrived while a background attempt is in flight: with a guard credit it abandons that
   * attempt for one of its own (a new source call, with its own timeout); without one it waits for the attempt
   * in flight and runs after it.
   */
  private mayAbandon(phase: Attempting): void {
    const now = this.now()
    // An attempt that has not called the source yet carries the request when it does.
    if (!phase.started || this.guard.waitMillis(now) > 0) return
    this.guard.spend(now)
    this.launch(phase.attempt, 0, phase.fiber)
  }

  /**
   * Forks the fiber of one attempt (after interrupting the one it abandons). The attempt carries the
   * synchronous request queued when it starts, with that request's timeout.
   */
  private launch(
    attempt: number,
    pacedMillis: number,
    abandoned: Fiber.RuntimeFiber<void> | undefined
  ): void {
    const phase: Attempting = { _tag: "Attempting", attempt, fiber: undefined, started: false }
    this.phase = phase
    const run = Effect.suspend(() => {
      if (this.phase !== phase) return Effect.void
      phase.started = true
      const sync = this.sync
      if (sync !== undefined) sync.inFlight = true
      const started = this.now()
      return Effect.flatMap(
        attemptOnce(this.source, {
          timeoutMillis: sync?.timeoutMillis ?? this.opts.refreshRequestMillis,
          attempt,
          name: this.opts.name
        }),
        (exit) => this.settle(phase, exit, started)
      )
    })
    const before = pacedMillis > 0 ? this.report.paced(pacedMillis) : Effect.void
    phase.fiber = this.fork(
      Effect.zipRight(
        abandoned === undefined ? before : Effect.zipRight(Fiber.interrupt(abandoned), before),
        run
      )
    )
  }

  fork<A>(effect: Effect.Effect<A>): Fiber.RuntimeFiber<A> {
    return Runtime.runFork(this.shared.runtime)(effect, { immediate: false })
  }

  /** An attempt ended: unless it was abandoned or the bearer stopped meanwhile, its outcome decides what's next. */
  private settle(
    phase: Attempting,
    exit: Exit.Exit<Token.Token, RenewalError>,
    started: number
  ): Effect.Effect<void> {
    return Effect.flatMap(this.opts.jitter > 0 ? Random.next : Effect.succeed(-1), (unit) =>
      Effect.suspend(() => {
        if (this.phase !== phase) return Effect.void
        const now = this.now()
        const latencyMillis = now - started
        const sync = this.sync?.inFlight === true ? this.sync : undefined
        if (sync !== undefined) this.sync = undefined
        if (Exit.isSuccess(exit)) return this.succeeded(exit.value, { now, latencyMillis, unit, sync })
        const error = Option.getOrElse(Cause.failureOption(exit.cause), () => toRenewalError(exit.cause))
        return this.failed(error, { now, latencyMillis, unit, sync })
      })
    )
  }

  private succeeded(token: Token.Token, input: Outcome): Effect.Effect<void> {
    const { now, latencyMillis } = input
    const previous = this.cache.value.token
    this.unchanged = previous !== undefined && Equal.equals(previous, token) ? this.unchanged + 1 : 0
    const expiresAt = expiresAtMillis(token)
    const usableUntil = usableUntilMillis(this.opts, expiresAt, now)
    this.latency.record(latencyMillis)
    const delayMillis = refreshDelayMillis(this.opts, {
      now,
      expiresAt,
      usableUntil,
      latencyMillis: this.latency.estimate(),
      unchanged: this.unchanged,
      unit: Math.max(0, input.unit)
    })
    this.failures = 0
    this.lastFailure = undefined
    this.asked = false
    const write = this.cache.set(CacheState.fresh(token, usableUntil, now + delayMillis, now))
    const nextToken = this.tokenWaiters
    const nextAttempt = this.attemptWaiters
    this.tokenWaiters = this.attemptWaiters = undefined
    this.sleep("Refresh", now + delayMillis)
    // A synchronous fetch that arrived during the attempt (and could not abandon it) runs its own now.
    if (this.sync !== undefined) this.ask()
    const done = Exit.succeed(token)
    return Effect.zipRight(
      write,
      Effect.suspend(() => {
        nextToken?.done(done)
        nextAttempt?.done(done)
        input.sync?.waiters.done(done)
        return this.report.renewed(token, { now, latencyMillis, delayMillis, unchanged: this.unchanged })
      })
    )
  }

  private failed(error: RenewalError, input: Outcome): Effect.Effect<void> {
    const { now, latencyMillis } = input
    this.failures += 1
    this.lastFailure = error
    const permanent = isPermanent(error)
    const delayMillis = retryDelayMillis(this.opts, {
      failures: this.failures,
      permanent,
      retryAfterMillis: retryAfterMillis(error),
      unit: input.unit < 0 ? 0.5 : input.unit
    })
    const nextAttempt = this.attemptWaiters
    this.attemptWaiters = undefined
    this.sleep("Backoff", now + delayMillis)
    const done = Exit.fail(error)
    nextAttempt?.done(done)
    input.sync?.waiters.done(done)
    return this.report.failed(error, {
      now,
      latencyMillis,
      delayMillis,
      failures: this.failures,
      permanent,
      token: this.cache.value.token
    })
  }

  /**
   * Shutdown (the bearer's scope closes): refuses new waits at once, stops the attempt in flight (so it can
   * write nothing more), empties the cache and fails every waiter with `StoppedError`.
   */
  readonly shutdown: Effect.Effect<void> = Effect.suspend(() => {
    const phase = this.phase
    if (phase._tag === "Stopped") return Effect.void
    this.phase = stopped
    if (phase._tag === "Sleeping") this.alarms.cancel(phase.alarm)
    const fiber = phase._tag === "Attempting" ? phase.fiber : undefined
    return Effect.gen(this, function* () {
      if (fiber !== undefined) yield* Fiber.interrupt(fiber)
      yield* this.cache.set(CacheState.stopped)
      const done = Exit.fail(CacheState.stoppedError)
      this.tokenWaiters?.done(done)
      this.attemptWaiters?.done(done)
      this.sync?.waiters.done(done)
      this.sync = undefined
      yield* this.report.stopped()
    })
  })
}
