/**
 * Case 2, the cold herd: N fibers call `fetch()` at once on an empty cache; the source takes 20 ms.
 *
 * The floor is N fibers awaiting one `Deferred` that a fiber completes after 20 ms. Both run on the live
 * clock; each configuration runs a few times, alternating bearer and floor, and keeps its fastest run.
 */
import { Clock, Deferred, Duration, Effect, Exit, Fiber } from "effect"
import { RenewableBearer, Token, TokenSource } from "effect-renewable-bearer"
import { equals, info, ratioAtMost, type Row } from "../report.js"
import { type BenchCase, countingClock, heapAfterGc, HOUR, runQuiet } from "../support.js"

const SOURCE_MILLIS = 20

interface Run {
  readonly wallMillis: number
  /** Process CPU time (user + system, all threads) from the first fork to the last join. */
  readonly cpuMillis: number
  readonly sourceCalls: number
  /** Sleeps armed through the waiters' clock: every timer a waiter arms. */
  readonly waiterTimers: number
  readonly failures: number
}

const measure = <E>(
  fork: (clock: Clock.Clock) => Effect.Effect<ReadonlyArray<Fiber.RuntimeFiber<unknown, E>>>
): Effect.Effect<Omit<Run, "sourceCalls">> =>
  Effect.gen(function* () {
    const counting = countingClock(yield* Effect.clock)
    const cpu = process.cpuUsage()
    const started = performance.now()
    const fibers = yield* fork(counting.clock)
    const exits = yield* Effect.forEach(fibers, Fiber.await)
    const wallMillis = performance.now() - started
    const used = process.cpuUsage(cpu)
    return {
      wallMillis,
      cpuMillis: (used.user + used.system) / 1000,
      waiterTimers: counting.sleeps(),
      failures: exits.filter(Exit.isFailure).length
    }
  })

/** Forks `n` fibers running `effect`, with `clock` as their clock. */
const forkAll = <A, E>(n: number, effect: Effect.Effect<A, E>, clock: Clock.Clock) =>
  Effect.withClock(
    Effect.forEach(Array.from({ length: n }), () => Effect.fork(effect)),
    clock
  )

const bearerRun = (n: number, timeout: Duration.Duration | undefined): Effect.Effect<Run> =>
  Effect.scoped(
    Effect.gen(function* () {
      let sourceCalls = 0
      const source = TokenSource.TokenSource.of({
        fetch: Effect.suspend(() => {
          sourceCalls += 1
          return Effect.zipRight(
            Effect.sleep(SOURCE_MILLIS),
            Effect.map(Clock.currentTimeMillis, (now) => Token.make("herd", { expiresAt: now + HOUR }))
          )
        })
      })
      const bearer = yield* RenewableBearer.make().pipe(
        Effect.provideService(TokenSource.TokenSource, source),
        Effect.orDie
      )
      const fetch = timeout === undefined ? bearer.fetch() : bearer.fetch({ timeout })
      const run = yield* measure((clock) => forkAll(n, fetch, clock))
      return { ...run, sourceCalls }
    })
  )

const floorRun = (n: number, timeout: Duration.Duration | undefined, withSpan = false): Effect.Effect<Run> =>
  Effect.gen(function* () {
    const token = Token.make("floor", { expiresAt: Date.now() + HOUR })
    const deferred = yield* Deferred.make<Token.Token>()
    const awaited = withSpan
      ? Effect.withSpan(Deferred.await(deferred), "RenewableBearer.wait", {
          attributes: { "bearer.name": "default", "bearer.mode": "asynchronous" }
        })
      : Deferred.await(deferred)
    const wait =
      timeout === undefined
        ? awaited
        : Effect.timeoutFail(awaited, { duration: timeout, onTimeout: () => "timeout" })
    const run = yield* measure((clock) =>
      Effect.zipRight(
        Effect.fork(Effect.zipRight(Effect.sleep(SOURCE_MILLIS), Deferred.succeed(deferred, token))),
        forkAll(n, wait, clock)
      )
    )
    return { ...run, sourceCalls: 1 }
  })

const fastest = (runs: ReadonlyArray<Run>): Run => ({
  wallMillis: Math.min(...runs.map((r) => r.wallMillis)),
  cpuMillis: Math.min(...runs.map((r) => r.cpuMillis)),
  sourceCalls: Math.max(...runs.map((r) => r.sourceCalls)),
  waiterTimers: Math.max(...runs.map((r) => r.waiterTimers)),
  failures: Math.max(...runs.map((r) => r.failures))
})

export const coldHerd: BenchCase = {
  id: "2",
  title: "Cold herd: N concurrent fetches on an empty cache, source takes 20 ms",
  run: async ({ smoke, log }) => {
    const sizes = smoke ? [100, 1_000] : [1_000, 10_000, 100_000]
    // Large herds take long on a small machine (with a timeout, each waiter is three fibers and a timer): they
    // run once; the smallest size, cheap (a few tens of milliseconds) and so the noisiest, five times (each
    // alternates bearer and floor).
    const repeats = (n: number) => (smoke || n >= 10_000 ? 1 : 5)
    const timeout = Duration.seconds(30)
    const rows: Array<Row> = []
    for (const [label, withTimeout] of [
      ["fetch()", undefined],
      ["fetch({ timeout: 30 s })", timeout]
    ] as const) {
      // Warm up the code paths, so the smallest size is not charged for compilation.
      await runQuiet(bearerRun(sizes[0]!, withTimeout))
      await runQuiet(floorRun(sizes[0]!, withTimeout))
      const perFetcher = new Map<number, number>()
      for (const n of sizes) {
        const bearerRuns: Array<Run> = []
        const floorRuns: Array<Run> = []
        for (let i = 0; i < repeats(n); i++) {
          await heapAfterGc()
          bearerRuns.push(await runQuiet(bearerRun(n, withTimeout)))
          await heapAfterGc()
          floorRuns.push(await runQuiet(floorRun(n, withTimeout)))
        }
        const bearer = fastest(bearerRuns)
        const floor = fastest(floorRuns)
        perFetcher.set(n, (bearer.cpuMillis * 1000) / n)
        log(`  ${label} N=${n}: ${bearer.wallMillis.toFixed(1)} ms (floor ${floor.wallMillis.toFixed(1)} ms)`)
        const size = n.toLocaleString("en-US")
        rows.push(
          equals(`${label} N=${size}: source calls`, "", bearer.sourceCalls, 1),
          equals(`${label} N=${size}: failed fetches`, "", bearer.failures, 0),
          equals(
            `${label} N=${size}: timers armed by waiters`,
            "",
            // A timed waiter joins the bearer's deadline queue: its one sleeper runs on the bearer's fiber.
            bearer.waiterTimers,
            0
          ),
          ratioAtMost(`${label} N=${size}: wall time`, "ms", bearer.wallMillis, floor.wallMillis, 1.5),
          info(
            `${label} N=${size}: CPU per fetcher`,
            "us",
            (bearer.cpuMillis * 1000) / n,
            (floor.cpuMillis * 1000) / n
          )
        )
        if (withTimeout === undefined && n === sizes[1]) {
          // Diagnosis: the same floor with one tracing span per waiter, as the bearer opens for each fetch
          // that waits (`RenewableBearer.wait`).
          await heapAfterGc()
          const spanned = await runQuiet(floorRun(n, undefined, true))
          rows.push(
            info(
              `${label} N=${size}: wall time vs floor + a span per waiter`,
              "ms",
              bearer.wallMillis,
              spanned.wallMillis
            )
          )
        }
      }
      const smallest = sizes[0]!
      const largest = sizes[sizes.length - 1]!
      rows.push(
        ratioAtMost(
          `${label}: CPU per fetcher, N=${largest.toLocaleString("en-US")} vs N=${smallest.toLocaleString("en-US")}`,
          "us",
          perFetcher.get(largest)!,
          perFetcher.get(smallest)!,
          1.5
        )
      )
    }
    return {
      rows,
      notes: [
        "Wall time: first fork to last join (fastest of 5 runs at N=1,000, one run above); the floor is N fibers awaiting one Deferred " +
          "completed after 20 ms (with the same timeout on each waiter for the timeout rows).",
        "CPU per fetcher: process CPU time (all threads, GC included) over the same span, divided by N; its floor " +
          "column is the Deferred floor's. The N=100,000 vs N=1,000 row compares the bearer with itself.",
        "Timers armed by waiters: sleeps through the waiters' Clock (a counting Clock given to the forked fibers)."
      ]
    }
  }
}
