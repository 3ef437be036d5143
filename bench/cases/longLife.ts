/**
 * Case 5, long life: one simulated week under `TestClock`, 1-minute tokens, a source that fails 10% of the
 * time (a seeded pseudo-random sequence, so every run is the same), jitter 0.
 *
 * The schedule predicts the source calls: after a success the next attempt comes at `0.9 x` the remaining
 * lifetime (54 s), after the n-th consecutive failure after `1 s x 1.5^(n-1)` (1 s for n = 1, at most 60 s).
 */
import { Clock, Effect, Exit, Scope, Supervisor, TestClock, TestContext } from "effect"
import { Errors, RenewableBearer, Token, TokenSource } from "effect-renewable-bearer"
import { atMost, equals, info, within, type Row } from "../report.js"
import { type BenchCase, hasGc, heapAfterGc, HOUR, MB, runQuiet } from "../support.js"

const MINUTE = 60_000
const DAY = 24 * HOUR
const FAILURE_RATE = 0.1
const REFRESH_MILLIS = 0.9 * MINUTE
const SEED = 0x5eed

/** mulberry32: a small, fast, seeded pseudo-random generator. */
const mulberry32 = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

/** The documented backoff before the attempt after the n-th consecutive failure (defaults, jitter 0). */
const backoffMillis = (failures: number) =>
  failures <= 1 ? 1_000 : Math.min(1_000 * Math.pow(1.5, failures - 1), MINUTE)

/** Expected attempts in `[0, horizon]`: attempts per cycle over the expected cycle length (renewal theory). */
const expectedCalls = (horizon: number) => {
  let backoff = 0
  for (let k = 1; k < 200; k++) backoff += Math.pow(FAILURE_RATE, k) * backoffMillis(k)
  const attemptsPerCycle = 1 / (1 - FAILURE_RATE)
  return 1 + (horizon * attemptsPerCycle) / (REFRESH_MILLIS + backoff)
}

/** The schedule replayed with the same pseudo-random outcomes as the source: the exact count to expect. */
const replayedCalls = (horizon: number) => {
  const random = mulberry32(SEED)
  let calls = 0
  let failures = 0
  for (let t = 0; t <= horizon;) {
    calls += 1
    if (random() < FAILURE_RATE) {
      failures += 1
      t += backoffMillis(failures)
    } else {
      failures = 0
      t += REFRESH_MILLIS
    }
  }
  return calls
}

/**
 * TestClock yields to the event loop with `setTimeout(0)` (at least 1 ms in Node) a few times per sleep it
 * fires; over a week of sleeps that is minutes of idle waiting. While `f` runs, zero-delay timeouts use
 * `setImmediate` instead: the same yield, without the 1 ms. Simulated time is unaffected.
 */
const withImmediateZeroTimeouts = async <A>(f: () => Promise<A>): Promise<A> => {
  const originalSetTimeout = globalThis.setTimeout
  const originalClearTimeout = globalThis.clearTimeout
  const immediates = new WeakSet<object>()
  globalThis.setTimeout = ((
    callback: (...args: Array<unknown>) => void,
    delay?: number,
    ...args: Array<unknown>
  ) => {
    if (delay === undefined || delay <= 0) {
      const immediate = setImmediate(callback, ...args)
      immediates.add(immediate)
      return immediate
    }
    return originalSetTimeout(callback, delay, ...args)
  }) as typeof setTimeout
  globalThis.clearTimeout = ((handle: Parameters<typeof clearTimeout>[0]) => {
    if (typeof handle === "object" && handle !== null && immediates.has(handle)) {
      clearImmediate(handle as unknown as NodeJS.Immediate)
    } else originalClearTimeout(handle)
  }) as typeof clearTimeout
  try {
    return await f()
  } finally {
    globalThis.setTimeout = originalSetTimeout
    globalThis.clearTimeout = originalClearTimeout
  }
}

interface Week {
  readonly calls: number
  readonly failures: number
  readonly fetches: number
  /** Live fibers under the bearer and its callers, sampled every simulated hour. */
  readonly fibers: ReadonlyArray<number>
  /** heapUsed after forced GCs, sampled every simulated day (the first after one day). */
  readonly heap: ReadonlyArray<number>
}

const simulate = (horizon: number, heapEvery: number): Effect.Effect<Week> =>
  Effect.gen(function* () {
    const random = mulberry32(SEED)
    let calls = 0
    let failures = 0
    let fetches = 0
    const source = TokenSource.TokenSource.of({
      fetch: Effect.suspend(() => {
        calls += 1
        if (random() < FAILURE_RATE) {
          failures += 1
          return Effect.fail(new Errors.TokenSourceError({ message: "scripted failure", retryable: true }))
        }
        return Effect.map(Clock.currentTimeMillis, (now) =>
          Token.make(`token-${calls}`, { expiresAt: now + MINUTE })
        )
      })
    })
    const supervisor = yield* Supervisor.track
    const scope = yield* Scope.make()
    const bearer = yield* RenewableBearer.make({ jitter: 0 }).pipe(
      Effect.provideService(TokenSource.TokenSource, source),
      Scope.extend(scope),
      Effect.supervised(supervisor),
      Effect.orDie
    )
    // A caller that fetches every ten minutes, for the whole week.
    const caller = Effect.forever(
      Effect.zipRight(
        Effect.tap(bearer.fetch(), () => {
          fetches += 1
        }),
        Effect.sleep("10 minutes")
      )
    )
    yield* Effect.forkIn(caller, scope).pipe(Effect.supervised(supervisor))

    const fibers: Array<number> = []
    const heap: Array<number> = []
    for (let t = HOUR; t <= horizon; t += HOUR) {
      yield* TestClock.adjust(HOUR)
      fibers.push((yield* supervisor.value).length)
      if (t % heapEvery === 0) heap.push(yield* Effect.promise(heapAfterGc))
    }
    yield* Scope.close(scope, Exit.void)
    return { calls, failures, fetches, fibers, heap }
  }).pipe(Effect.provide(TestContext.TestContext))

export const longLife: BenchCase = {
  id: "5",
  title: "Long life: one simulated week, 1-minute tokens, source fails 10% of the time (TestClock)",
  run: async ({ smoke, log }) => {
    const horizon = smoke ? 6 * HOUR : 7 * DAY
    const heapEvery = smoke ? HOUR : DAY
    const started = performance.now()
    const week = await withImmediateZeroTimeouts(() => runQuiet(simulate(horizon, heapEvery)))
    log(`  ${horizon / HOUR} simulated hours in ${(performance.now() - started).toFixed(0)} ms`)

    const settled = week.fibers.slice(1)
    const heapGrowth = (week.heap[week.heap.length - 1]! - week.heap[0]!) / MB
    const rows: Array<Row> = [
      within("source calls vs the schedule's expectation", "", week.calls, expectedCalls(horizon), 0.01),
      equals(
        "source calls vs the schedule replayed with the same outcomes",
        "",
        week.calls,
        replayedCalls(horizon)
      ),
      info("failed source calls", "", week.failures, week.calls),
      info("fetches by a caller (every 10 min)", "", week.fetches),
      equals(
        "live fibers: max - min over the hourly samples",
        "",
        Math.max(...settled) - Math.min(...settled),
        0
      ),
      info("live fibers (last sample)", "", week.fibers[week.fibers.length - 1]!, week.fibers[1]),
      hasGc()
        ? atMost(
            `heap growth, ${smoke ? "hour 1 to the end" : "day 1 to day 7"} (forced GC)`,
            "MB",
            heapGrowth,
            1
          )
        : info("heap growth (run node with --expose-gc to force GC)", "MB", heapGrowth)
    ]
    return {
      rows,
      notes: [
        "jitter: 0 (so the schedule is exact); other options at their defaults. Expected calls = 1 + horizon x " +
          "(1 / 0.9 attempts per cycle) / (54 s + sum over k of 0.1^k x backoff(k)).",
        "Fiber counts exclude the first hourly sample (the loop is still starting); they include the bearer's " +
          "fiber and its children and the caller.",
        "The run maps zero-delay setTimeout calls (TestClock's yields to the event loop) to setImmediate; simulated " +
          "time is unaffected, real time is minutes shorter."
      ]
    }
  }
}
