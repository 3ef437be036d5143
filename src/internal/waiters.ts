import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import { type Alarm, type Alarms, type Ringable } from "./alarms.js"
import * as Heap from "./heap.js"

type Resume = (result: Effect.Effect<any, any>) => void

/**
 * A one-shot result that many fibers wait for: `Deferred`, except that a waiter who gives up (a timeout, an
 * interruption) is removed in constant time, and that a waiter with a timeout needs no fiber nor timer of
 * its own (see `Deadlines`). `Deferred` removes a leaving waiter with `indexOf` and `splice`, so 100,000
 * callers with a short timeout against a hung token endpoint cost O(waiters²) there.
 *
 * @internal
 */
export interface Waiters<A, E> {
  /** Waits for the result; never arms a timer. */
  readonly await: Effect.Effect<A, E>
  /**
   * Waits for the result for at most `millis` from the moment it starts waiting (on the waiting fiber's
   * `Clock`), then fails with `onTimeout()`: the waiter joins `deadlines`, whose one alarm ends the expired
   * waits in deadline order. The effect is built once for the same three arguments, so a timed waiter costs
   * what an untimed one does plus its queue entry.
   */
  readonly awaitFor: <E2>(
    deadlines: Deadlines,
    millis: number,
    onTimeout: () => E2
  ) => Effect.Effect<A, E | E2>
  /** Completes every waiter, present and future, with `exit`; later calls do nothing. */
  readonly done: (exit: Exit.Exit<A, E>) => void
}

/** The current instant on the clock of the fiber that runs this (a register function runs in its fiber). */
const fiberNow = (): number => {
  const fiber = Fiber.getCurrentFiber()
  const clock =
    fiber._tag === "Some" ? Context.get(fiber.value.currentDefaultServices, Clock.Clock) : fallbackClock
  return clock.unsafeCurrentTimeMillis()
}
const fallbackClock = Clock.make()

/** @internal */
export const make = <A, E>(): Waiters<A, E> => {
  // Untimed waiters are their fibers' resume callbacks, timed ones their queue entries.
  const waiting = new Set<Resume | Timed>()
  let result: Exit.Exit<A, E> | undefined
  // The timed wait built last, and what it was built for.
  let timedFor: Deadlines | undefined
  let timedMillis = NaN
  let timedError: (() => unknown) | undefined
  let timed: Effect.Effect<A, any> = Effect.never
  return {
    // The register functions take one parameter on purpose: with two, Effect makes an AbortController per call.
    await: Effect.async<A, E>((resume) => {
      if (result !== undefined) return resume(result)
      waiting.add(resume)
      return Effect.sync(() => {
        waiting.delete(resume)
      })
    }),
    awaitFor: <E2>(deadlines: Deadlines, millis: number, onTimeout: () => E2) => {
      if (deadlines !== timedFor || millis !== timedMillis || onTimeout !== timedError) {
        timedFor = deadlines
        timedMillis = millis
        timedError = onTimeout
        timed = Effect.async<A, E | E2>((resume) => {
          if (result !== undefined) return resume(result)
          const entry = new Timed(fiberNow() + millis, resume, waiting, deadlines, onTimeout)
          waiting.add(entry)
          deadlines.add(entry)
          return Effect.sync(() => entry.leave())
        })
      }
      return timed as Effect.Effect<A, E | E2>
    },
    done: (exit) => {
      if (result !== undefined) return
      result = exit
      for (const waiter of waiting) {
        if (typeof waiter === "function") waiter(exit)
        else waiter.settle(exit)
      }
      waiting.clear()
    }
  }
}

let sequence = 0

/** One waiter with a deadline. `resume` is cleared once it is settled, so the queue keeps no fiber alive. */
class Timed {
  readonly seq = sequence++
  constructor(
    readonly deadline: number,
    public resume: Resume | undefined,
    readonly owner: Set<Resume | Timed>,
    readonly deadlines: Deadlines,
    readonly onTimeout: () => unknown
  ) {}
  /** Its `Waiters` completed (the owner clears itself). */
  settle(result: Effect.Effect<any, any>): void {
    const resume = this.resume
    if (resume === undefined) return
    this.resume = undefined
    this.deadlines.settled()
    resume(result)
  }
  /** It left (interrupted): constant time. */
  leave(): void {
    if (this.resume === undefined) return
    this.resume = undefined
    this.owner.delete(this)
    this.deadlines.settled()
  }
  /** Its deadline passed: it fails with `failure` (one effect for every waiter that expires in one sweep). */
  expire(failure: Effect.Effect<never, unknown>): void {
    const resume = this.resume
    if (resume === undefined) return
    this.resume = undefined
    this.owner.delete(this)
    this.deadlines.settled()
    resume(failure)
  }
}

const before = (a: Timed, b: Timed) => a.deadline < b.deadline || (a.deadline === b.deadline && a.seq < b.seq)

/**
 * The deadlines of one bearer's timed waiters: a binary heap by deadline (ties in arrival order), and one
 * alarm among the bearer's alarms (on Effect's `Clock`, so `TestClock` drives it), set for the earliest
 * deadline, that fails the waiters whose deadline has passed, in order. No fiber and at most one timer for all
 * of them: the alarms' own sleeper. A settled waiter stays in the heap until it reaches the top or the heap is
 * compacted (when settled entries outnumber live ones), and holds nothing but its deadline by then.
 *
 * @internal
 */
export class Deadlines implements Ringable {
  private heap: Array<Timed> = []
  private live = 0
  /** The alarm set for the earliest deadline (`undefined`: nobody waits). */
  private alarm: Alarm | undefined

  constructor(
    private readonly alarms: Alarms,
    private readonly clock: Clock.Clock
  ) {}

  /** How many waiters are in the queue and not yet settled. @internal */
  get size(): number {
    return this.live
  }

  /** @internal */
  add(entry: Timed): void {
    this.live += 1
    Heap.push(this.heap, entry, before)
    if (this.alarm === undefined || entry.deadline < this.alarm.at) this.setAlarm(entry.deadline)
  }

  /** @internal */
  settled(): void {
    this.live -= 1
    if (this.live === 0) {
      this.heap = []
      // Nobody waits for the alarm any more.
      this.setAlarm(Infinity)
    } else if (this.heap.length > 1024 && this.heap.length > 4 * this.live) {
      this.heap = Heap.compact(this.heap, (entry) => entry.resume !== undefined, before)
    }
  }

  /** The alarm rang: fails the waiters whose deadline has passed and sets the alarm for the next one. */
  ring(): void {
    this.alarm = undefined
    this.setAlarm(this.expireUntil(this.clock.unsafeCurrentTimeMillis()))
  }

  private setAlarm(at: number): void {
    this.alarms.cancel(this.alarm)
    this.alarm = at === Infinity ? undefined : this.alarms.set(at, this)
  }

  /**
   * Fails every waiter whose deadline is at or before `now`; returns the next live deadline. The waiters that
   * expire together share one error per `onTimeout` (they timed out at the same instant for the same reason),
   * so 100,000 of them cost one error, not 100,000 stack traces.
   */
  private expireUntil(now: number): number {
    let onTimeout: (() => unknown) | undefined
    let failure: Effect.Effect<never, unknown> = Effect.never
    while (this.heap.length > 0) {
      const top = this.heap[0]!
      if (top.resume === undefined) {
        Heap.pop(this.heap, before)
        continue
      }
      if (top.deadline > now) return top.deadline
      Heap.pop(this.heap, before)
      if (top.onTimeout !== onTimeout) {
        onTimeout = top.onTimeout
        failure = Effect.fail(onTimeout())
      }
      top.expire(failure)
    }
    return Infinity
  }
}
