/**
 * Case 2, the cold herd: N fibers call `fetch()` at once on an empty cache; the source takes 20 ms. Then the
 * same with `fetch({ timeout: "30 seconds" })`, the fetch every `BearerHttpClient` request makes.
 *
 * The floor is N fibers awaiting one `Deferred` that a fiber completes after 20 ms; the untimed herd is held to
 * it. The timed herd is held to the untimed herd of the same size (a timed waiter must cost what an untimed
 * one does), and shown against the floor too.
 * Everything runs on the live clock; each configuration runs a few times, alternating bearer and floor, and
 * keeps its fastest run. Heap per waiter is measured apart, while every waiter of a herd is registered and
 * the source (or the `Deferred`) has not answered yet.
 */
import { Clock, Deferred, Effect, Exit, Fiber } from "effect"
import type { FetchOptions } from "effect-renewable-bearer"
import { RenewableBearer, Token, TokenSource } from "effect-renewable-bearer"
import { equals, info, ratioAtMost, type Row } from "../report.js"
import { type BenchCase, countingClock, hasGc, heapAfterGc, HOUR, median, runQuiet } from "../support.js"

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

/** One kind of herd: how each fetcher calls the bearer. */
interface Variant {
  readonly label: string
  readonly options: FetchOptions.FetchOptions | undefined
}

const untimed: Variant = { label: "fetch()", options: undefined }
const timed: Variant = { label: 'fetch({ timeout: "30 seconds" })', options: { timeout: "30 seconds" } }

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

/** A bearer with default options whose source answers `answer` (and counts its calls). */
const makeBearer = (answer: Effect.Effect<void>) =>
  Effect.gen(function* () {
    let sourceCalls = 0
    const source = TokenSource.TokenSource.of({
      fetch: Effect.suspend(() => {
        sourceCalls += 1
        return Effect.zipRight(
          answer,
          Effect.map(Clock.currentTimeMillis, (now) => Token.make("herd", { expiresAt: now + HOUR }))
        )
      })
    })
    const bearer = yield* RenewableBearer.make().pipe(
      Effect.provideService(TokenSource.TokenSource, source),
      Effect.orDie
    )
    return { bearer, sourceCalls: () => sourceCalls }
  })

const bearerRun = (n: number, variant: Variant): Effect.Effect<Run> =>
  Effect.scoped(
    Effect.gen(function* () {
      const { bearer, sourceCalls } = yield* makeBearer(Effect.sleep(SOURCE_MILLIS))
      const fetch = bearer.fetch(variant.options)
      const run = yield* measure((clock) => forkAll(n, fetch, clock))
      return { ...run, sourceCalls: sourceCalls() }
    })
  )

const floorRun = (n: number, withSpan = false): Effect.Effect<Run> =>
  Effect.gen(function* () {
    const token = Token.make("floor", { expiresAt: Date.now() + HOUR })
    const deferred = yield* Deferred.make<Token.Token>()
    const wait = withSpan
      ? Effect.withSpan(Deferred.await(deferred), "RenewableBearer.wait", {
          attributes: { "bearer.name": "default", "bearer.mode": "asynchronous" }
        })
      : Deferred.await(deferred)
    const run = yield* measure((clock) =>
      Effect.zipRight(
        Effect.fork(Effect.zipRight(Effect.sleep(SOURCE_MILLIS), Deferred.succeed(deferred, token))),
        forkAll(n, wait, clock)
      )
    )
    return { ...run, sourceCalls: 1 }
  })

const nextTurn: Effect.Effect<void> = Effect.async<void>((resume) => {
  setImmediate(() => resume(Effect.void))
})

/**
 * Heap per waiter: `heapUsed` after forced GCs while `n` fibers wait in `wait` (each counted as it starts,
 * and registered in the same synchronous step), minus the same before they were forked, divided by `n`.
 * `release` then lets them all finish; returns the bytes per waiter and how many of them failed.
 */
const heapPerWaiter = (
  n: number,
  wait: Effect.Effect<unknown, unknown>,
  release: Effect.Effect<void>
): Effect.Effect<{ readonly bytes: number; readonly failures: number }> =>
  Effect.gen(function* () {
    let started = 0
    const counted = Effect.suspend(() => {
      started += 1
      return wait
    })
    const before = yield* Effect.promise(heapAfterGc)
    const fibers = yield* Effect.forEach(Array.from({ length: n }), () => Effect.fork(counted))
    while (started < n) yield* nextTurn
    const during = yield* Effect.promise(heapAfterGc)
    yield* release
    const exits = yield* Effect.forEach(fibers, Fiber.await)
    return { bytes: (during - before) / n, failures: exits.filter(Exit.isFailure).length }
  })

/** The bearer's heap per waiter: its source answers only when the measurement is done. */
const bearerHeap = (n: number, variant: Variant) =>
  Effect.scoped(
    Effect.gen(function* () {
      const gate = yield* Deferred.make<void>()
      const { bearer } = yield* makeBearer(Deferred.await(gate))
      return yield* heapPerWaiter(n, bearer.fetch(variant.options), Deferred.succeed(gate, undefined))
    })
  )

/** The floor's heap per waiter: untimed fibers awaiting one `Deferred`. */
const floorHeap = (n: number) =>
  Effect.gen(function* () {
    const token = Token.make("floor", { expiresAt: Date.now() + HOUR })
    const deferred = yield* Deferred.make<Token.Token>()
    return yield* heapPerWaiter(n, Deferred.await(deferred), Deferred.succeed(deferred, token))
  })

const fastest = (runs: ReadonlyArray<Run>): Run => ({
  wallMillis: Math.min(...runs.map((r) => r.wallMillis)),
  cpuMillis: Math.min(...runs.map((r) => r.cpuMillis)),
  sourceCalls: Math.max(...runs.map((r) => r.sourceCalls)),
  waiterTimers: Math.max(...runs.map((r) => r.waiterTimers)),
  failures: Math.max(...runs.map((r) => r.failures))
})

/** The rows of one herd size: every variant against the one untimed floor. */
const herdRows = async (
  n: number,
  repeats: number,
  log: (line: string) => void
): Promise<{ rows: Array<Row>; perFetcher: Map<Variant, number> }> => {
  const runs = new Map<Variant | "floor", Array<Run>>([
    [untimed, []],
    [timed, []],
    ["floor", []]
  ])
  for (let i = 0; i < repeats; i++) {
    // Alternate, so a burst of load on the machine falls on every kind alike.
    for (const kind of i % 2 === 0
      ? ([untimed, timed, "floor"] as const)
      : (["floor", timed, untimed] as const)) {
      await heapAfterGc()
      // A small unmeasured herd of the same kind first: a forced collection leaves a cold heap behind (an
      // empty young generation to grow again), which at N=1,000 weighs as much as the herd itself.
      const run = (size: number) => runQuiet(kind === "floor" ? floorRun(size) : bearerRun(size, kind))
      await run(Math.min(n, 1_000))
      runs.get(kind)!.push(await run(n))
    }
  }
  const floor = fastest(runs.get("floor")!)
  const size = n.toLocaleString("en-US")
  const rows: Array<Row> = []
  const perFetcher = new Map<Variant, number>()
  // Heap figures of small herds are a few MB, near the collector's noise: those take the median of 3 runs.
  const heapRuns = repeats > 1 && n <= 10_000 ? 3 : 1
  const medianOf = async (run: () => Promise<{ readonly bytes: number; readonly failures: number }>) => {
    const results: Array<{ readonly bytes: number; readonly failures: number }> = []
    for (let i = 0; i < heapRuns; i++) results.push(await run())
    return {
      bytes: median(results.map((r) => r.bytes)),
      failures: Math.max(...results.map((r) => r.failures))
    }
  }
  const floorHeapBytes = hasGc() ? (await medianOf(() => runQuiet(floorHeap(n)))).bytes : undefined
  const heapBytes = new Map<Variant, number>()
  for (const variant of [untimed, timed]) {
    const bearer = fastest(runs.get(variant)!)
    perFetcher.set(variant, (bearer.cpuMillis * 1000) / n)
    log(
      `  ${variant.label} N=${size}: ${bearer.wallMillis.toFixed(1)} ms (floor ${floor.wallMillis.toFixed(1)} ms)`
    )
    const label = `${variant.label} N=${size}`
    rows.push(
      equals(`${label}: source calls`, "", bearer.sourceCalls, 1),
      equals(`${label}: failed fetches`, "", bearer.failures, 0),
      // A timed waiter joins the bearer's deadline queue: its one sleeper runs on the bearer's fiber.
      equals(`${label}: timers armed by waiters`, "", bearer.waiterTimers, 0),
      variant === timed
        ? info(`${label}: wall time vs the untimed floor`, "ms", bearer.wallMillis, floor.wallMillis)
        : ratioAtMost(
            `${label}: wall time vs the untimed floor`,
            "ms",
            bearer.wallMillis,
            floor.wallMillis,
            1.5
          ),
      info(`${label}: CPU per fetcher`, "us", (bearer.cpuMillis * 1000) / n, (floor.cpuMillis * 1000) / n)
    )
    if (floorHeapBytes !== undefined) {
      const heap = await medianOf(() => runQuiet(bearerHeap(n, variant)))
      heapBytes.set(variant, heap.bytes)
      rows.push(
        info(`${label}: heap per waiter vs the untimed floor`, "bytes", heap.bytes, floorHeapBytes),
        equals(`${label}: failed fetches (heap run)`, "", heap.failures, 0)
      )
    }
  }
  // A timed fetch must cost what an untimed one does: both goals compare the two herds of the bearer.
  rows.push(
    ratioAtMost(
      `${timed.label} N=${size}: wall time vs the untimed herd (fetch())`,
      "ms",
      fastest(runs.get(timed)!).wallMillis,
      fastest(runs.get(untimed)!).wallMillis,
      1.25
    )
  )
  if (heapBytes.size === 2)
    rows.push(
      ratioAtMost(
        `${timed.label} N=${size}: heap per waiter vs the untimed herd (fetch())`,
        "bytes",
        heapBytes.get(timed)!,
        heapBytes.get(untimed)!,
        1.25
      )
    )
  return { rows, perFetcher }
}

export const coldHerd: BenchCase = {
  id: "2",
  title: "Cold herd: N concurrent fetches on an empty cache, source takes 20 ms",
  run: async ({ smoke, log }) => {
    const sizes = smoke ? [100, 1_000] : [1_000, 10_000, 100_000]
    // The smallest size, cheap (a few tens of milliseconds) and so the noisiest, runs nine times; larger ones
    // fewer times, each alternating the two kinds of bearer herd and the floor.
    const repeats = (n: number) => (smoke ? 1 : n >= 100_000 ? 2 : n >= 10_000 ? 3 : 9)
    // Warm up the code paths, so the smallest size is not charged for compilation.
    for (const variant of [untimed, timed]) await runQuiet(bearerRun(sizes[0]!, variant))
    await runQuiet(floorRun(sizes[0]!))
    if (hasGc()) {
      await runQuiet(bearerHeap(sizes[0]!, timed))
      await runQuiet(floorHeap(sizes[0]!))
    }
    const rows: Array<Row> = []
    const perFetcher = new Map<number, Map<Variant, number>>()
    for (const n of sizes) {
      const herd = await herdRows(n, repeats(n), log)
      rows.push(...herd.rows)
      perFetcher.set(n, herd.perFetcher)
      if (n === sizes[1]) {
        // Diagnosis: the floor with one tracing span per waiter, as the bearer once opened for each fetch
        // that waits (`RenewableBearer.wait`; today only inside a caller's span).
        await heapAfterGc()
        const spanned = await runQuiet(floorRun(n, true))
        const bearer = rows.find(
          (row) => row.metric === `fetch() N=${n.toLocaleString("en-US")}: wall time vs the untimed floor`
        )
        rows.push(
          info(
            `fetch() N=${n.toLocaleString("en-US")}: wall time vs floor + a span per waiter`,
            "ms",
            bearer!.measured,
            spanned.wallMillis
          )
        )
      }
    }
    const smallest = sizes[0]!
    const largest = sizes[sizes.length - 1]!
    for (const variant of [untimed, timed]) {
      rows.push(
        ratioAtMost(
          `${variant.label}: CPU per fetcher, N=${largest.toLocaleString("en-US")} vs N=${smallest.toLocaleString("en-US")}`,
          "us",
          perFetcher.get(largest)!.get(variant)!,
          perFetcher.get(smallest)!.get(variant)!,
          1.5
        )
      )
    }
    return {
      rows,
      notes: [
        "Default options. Wall time: first fork to last join, fastest of 9 runs at N=1,000, 3 at 10,000, 2 at " +
          "100,000 (bearer without and with a timeout and floor alternating); the floor is N fibers awaiting one " +
          "Deferred completed after 20 ms. Goals: the untimed herd against the floor, the timed herd (wall time " +
          "and heap per waiter) against the untimed herd of the same size. Each measured run follows a forced " +
          "collection and an unmeasured herd of the same kind (at most 1,000 fibers), so no run starts on a cold heap.",
        "Heap per waiter: heapUsed after forced full GCs while all N waiters are registered and the source (a " +
          "gate, not a 20 ms sleep) has not answered, minus the same before the fork, divided by N; the floor " +
          "is N fibers awaiting one Deferred, measured the same way (median of 3 runs at N <= 10,000). The gate can hold the source call past " +
          "refreshRequestTimeout (5 s) at N=100,000, so a heap run may make a second call: its calls are no goal.",
        "CPU per fetcher: process CPU time (all threads, GC included) over the same span, divided by N; its floor " +
          "column is the Deferred floor's. The N=100,000 vs N=1,000 rows compare the bearer with itself.",
        "Timers armed by waiters: sleeps through the waiters' Clock (a counting Clock given to the forked fibers)."
      ]
    }
  }
}
