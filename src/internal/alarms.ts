import type * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as Runtime from "effect/Runtime"
import * as Heap from "./heap.js"

/** Effect's live clock cannot arm a timer longer than this; a longer wait is taken in parts. */
const MAX_TIMER_MILLIS = 2 ** 31 - 1

let sequence = 0

/** What an alarm wakes: its `ring` runs in the sleeper fiber, synchronously, and must not fail. @internal */
export interface Ringable {
  ring(): void
}

/** One alarm: its target rings at `at` (epoch millis) unless the alarm is cancelled first. @internal */
export class Alarm {
  readonly seq = sequence++
  constructor(
    readonly at: number,
    public target: Ringable | undefined
  ) {}
}

const before = (a: Alarm, b: Alarm) => a.at < b.at || (a.at === b.at && a.seq < b.seq)

/**
 * Alarms on Effect's `Clock` (so `TestClock` drives them) that cost no fiber each: a binary heap by instant
 * and at most one sleeper fiber, asleep until the earliest alarm, forked only while an alarm is set and
 * replaced (never raced) when an earlier one is set. A bearer has one of its own; a `KeyedBearer` shares one
 * among all its keys, so an idle keyed bearer holds an entry here, not a fiber.
 *
 * The targets ring in the sleeper fiber, synchronously, in order of their instants (ties in the order they
 * were set).
 *
 * @internal
 */
export class Alarms {
  private heap: Array<Alarm> = []
  private live = 0
  private sleeper: Fiber.RuntimeFiber<void> | undefined
  /** The instant the sleeper sleeps until (`Infinity`: no sleeper). */
  private armedFor = Infinity
  private ringing = false
  /** The last sleeper interrupted, whose timer `clear` waits to be gone. */
  private retired: Fiber.RuntimeFiber<void> | undefined

  constructor(
    private readonly runtime: Runtime.Runtime<never>,
    private readonly clock: Clock.Clock
  ) {}

  /** Sets an alarm that rings `target` at `at`. */
  set(at: number, target: Ringable): Alarm {
    const alarm = new Alarm(at, target)
    this.live += 1
    Heap.push(this.heap, alarm, before)
    if (!this.ringing && at < this.armedFor) this.arm(at)
    return alarm
  }

  /** Cancels `alarm` if it has not rung; the sleeper stops when no alarm is left. */
  cancel(alarm: Alarm | undefined): void {
    if (alarm === undefined || alarm.target === undefined) return
    alarm.target = undefined
    this.live -= 1
    if (this.live === 0) {
      this.heap = []
      this.disarm()
    } else if (this.heap.length > 1024 && this.heap.length > 4 * this.live) {
      this.heap = Heap.compact(this.heap, (entry) => entry.target !== undefined, before)
    }
  }

  /** Cancels every alarm and stops the sleeper, waiting until its timer is gone. */
  readonly clear: Effect.Effect<void> = Effect.suspend(() => {
    for (const alarm of this.heap) alarm.target = undefined
    this.heap = []
    this.live = 0
    this.disarm()
    const retired = this.retired
    this.retired = undefined
    return retired === undefined ? Effect.void : Fiber.interrupt(retired)
  })

  private arm(at: number): void {
    this.disarm()
    this.armedFor = at
    this.sleeper = Runtime.runFork(this.runtime)(this.sleepUntil(at), { immediate: false })
  }

  private disarm(): void {
    const sleeper = this.sleeper
    if (sleeper === undefined) return
    this.sleeper = undefined
    this.armedFor = Infinity
    sleeper.unsafeInterruptAsFork(FiberId.none)
    this.retired = sleeper
  }

  private sleepUntil(at: number): Effect.Effect<void> {
    return Effect.suspend(() => {
      const millis = at - this.clock.unsafeCurrentTimeMillis()
      if (millis <= 0) return Effect.sync(() => this.ringDue())
      return Effect.zipRight(
        this.clock.sleep(Duration.millis(Math.min(millis, MAX_TIMER_MILLIS))),
        this.sleepUntil(at)
      )
    })
  }

  /** Runs the alarms that are due, in order, then arms the sleeper for the next one. */
  private ringDue(): void {
    this.sleeper = undefined
    this.armedFor = Infinity
    const now = this.clock.unsafeCurrentTimeMillis()
    this.ringing = true
    try {
      while (this.heap.length > 0) {
        const top = this.heap[0]!
        if (top.target !== undefined && top.at > now) break
        this.pop()
        const target = top.target
        if (target === undefined) continue
        top.target = undefined
        this.live -= 1
        target.ring()
      }
    } finally {
      this.ringing = false
    }
    while (this.heap.length > 0 && this.heap[0]!.target === undefined) this.pop()
    if (this.heap.length > 0) this.arm(this.heap[0]!.at)
  }

  private pop(): Alarm {
    return Heap.pop(this.heap, before)
  }
}
