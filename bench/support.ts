/** What the cases share: their interface, statistics, heap and timer probes, quiet logging. */
import { Clock, Effect, Logger, LogLevel } from "effect"
import type { Row } from "./report.js"

export interface CaseOptions {
  /** Tiny sizes and short durations: checks that every case runs and its correctness goals hold. */
  readonly smoke: boolean
  /** Progress lines, to stderr. */
  readonly log: (line: string) => void
}

export interface CaseResult {
  readonly rows: ReadonlyArray<Row>
  readonly notes: ReadonlyArray<string>
}

export interface BenchCase {
  readonly id: string
  readonly title: string
  readonly run: (options: CaseOptions) => Promise<CaseResult>
}

/** The `q` quantile (0..1) of `values`, by nearest rank. */
export const quantile = (values: ArrayLike<number>, q: number): number => {
  const sorted = Float64Array.from(values).sort()
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!
}

export const median = (values: ArrayLike<number>): number => quantile(values, 0.5)

/** Runs an effect with the library's log lines silenced (failures are expected in several cases). */
export const runQuiet = <A, E>(effect: Effect.Effect<A, E>): Promise<A> =>
  Effect.runPromise(Effect.provide(effect, Logger.minimumLogLevel(LogLevel.None)))

const gcFunction = (): (() => void) | undefined => (globalThis as { gc?: () => void }).gc

export const hasGc = (): boolean => gcFunction() !== undefined

/**
 * `heapUsed` after forced full collections (needs `--expose-gc`; without it, no collection is forced): repeated,
 * with a turn of the event loop between them for finalizers and weak callbacks, until a collection frees less
 * than 64 KB (at most 20), since one collection can leave garbage that only the next one sees (weak tables
 * cleared by the first, objects they held freed by the second).
 */
export const heapAfterGc = async (): Promise<number> => {
  const gc = gcFunction()
  let previous = Infinity
  for (let i = 0; i < 20; i++) {
    gc?.()
    await new Promise((resolve) => setImmediate(resolve))
    const used = process.memoryUsage().heapUsed
    if (gc === undefined || (i >= 3 && previous - used < 64 * 1024)) return used
    previous = used
  }
  return previous
}

export const activeTimers = (): number =>
  process.getActiveResourcesInfo().filter((resource) => resource === "Timeout").length

/** A clock that counts the sleeps (so the timers) armed through it, and otherwise is `base`. */
export const countingClock = (
  base: Clock.Clock
): { readonly clock: Clock.Clock; readonly sleeps: () => number } => {
  let sleeps = 0
  const clock: Clock.Clock = {
    [Clock.ClockTypeId]: Clock.ClockTypeId,
    unsafeCurrentTimeMillis: () => base.unsafeCurrentTimeMillis(),
    unsafeCurrentTimeNanos: () => base.unsafeCurrentTimeNanos(),
    currentTimeMillis: base.currentTimeMillis,
    currentTimeNanos: base.currentTimeNanos,
    sleep: (duration) => {
      sleeps += 1
      return base.sleep(duration)
    }
  }
  return { clock, sleeps: () => sleeps }
}

export const MB = 1024 * 1024
export const HOUR = 3_600_000
