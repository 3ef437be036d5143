/**
 * Keyed bearers (`KeyedBearer`), three cases:
 *
 * - K1, keyed herd: K keys x C concurrent cold fetches, each key's source takes 20 ms. Floor: K x C fibers
 *   awaiting K `Deferred`s, each completed by a fiber after 20 ms.
 * - K2, idle memory: N keys fetched once, then idle (a fresh 1-hour token each, nothing renewing). Floor: N
 *   times a `Ref` and one scoped fiber asleep. Heap after forced GC, per bearer; and process CPU while idle
 *   against the same wait with nothing alive.
 * - K3, eviction: N keys fetched one after another through a capacity of N / 10; the bearers alive never
 *   exceed the capacity, and once all are idle and closed the heap is back near where it started.
 */
import { Clock, Data, Deferred, Effect, Exit, Fiber, Ref, Scope } from "effect"
import { KeyedBearer, Token, TokenSource } from "effect-renewable-bearer"
import { atMost, equals, info, ratioAtMost, type Row } from "../report.js"
import { type BenchCase, hasGc, heapAfterGc, HOUR, MB, runQuiet } from "../support.js"

const SOURCE_MILLIS = 20

class Key extends Data.Class<{ readonly audience: string }> {}
const keyOf = (i: number) => new Key({ audience: `https://api-${i}.example.com` })

/** A source per key that counts its calls and answers a 1-hour token after `delayMillis`. */
const counted = (delayMillis: number) => {
  let calls = 0
  const source = (key: Key) =>
    Effect.succeed(
      TokenSource.TokenSource.of({
        fetch: Effect.suspend(() => {
          calls += 1
          const answer = Effect.map(Clock.currentTimeMillis, (now) =>
            Token.make(`token-for-${key.audience}`, { expiresAt: now + HOUR })
          )
          return delayMillis === 0 ? answer : Effect.zipRight(Effect.sleep(delayMillis), answer)
        })
      })
    )
  return { source, calls: () => calls }
}

// ---- K1: keyed herd -------------------------------------------------------------------------------------

interface HerdRun {
  readonly wallMillis: number
  readonly sourceCalls: number
  readonly failures: number
}

const keyedHerdRun = (keys: number, callers: number): Effect.Effect<HerdRun> =>
  Effect.scoped(
    Effect.gen(function* () {
      const sources = counted(SOURCE_MILLIS)
      const keyed = yield* Effect.orDie(KeyedBearer.make({ source: sources.source }))
      const all = Array.from({ length: keys }, (_, i) => keyOf(i))
      const started = performance.now()
      const fibers: Array<Fiber.RuntimeFiber<unknown, unknown>> = []
      for (let c = 0; c < callers; c++)
        for (const key of all) fibers.push(yield* Effect.fork(keyed.fetch(key)))
      const exits = yield* Effect.forEach(fibers, Fiber.await)
      return {
        wallMillis: performance.now() - started,
        sourceCalls: sources.calls(),
        failures: exits.filter(Exit.isFailure).length
      }
    })
  )

const herdFloorRun = (keys: number, callers: number): Effect.Effect<HerdRun> =>
  Effect.gen(function* () {
    const token = Token.make("floor", { expiresAt: Date.now() + HOUR })
    const started = performance.now()
    const deferreds = yield* Effect.forEach(Array.from({ length: keys }), () => Deferred.make<Token.Token>())
    for (const deferred of deferreds) {
      yield* Effect.fork(Effect.zipRight(Effect.sleep(SOURCE_MILLIS), Deferred.succeed(deferred, token)))
    }
    const fibers: Array<Fiber.RuntimeFiber<unknown>> = []
    for (let c = 0; c < callers; c++)
      for (const deferred of deferreds) fibers.push(yield* Effect.fork(Deferred.await(deferred)))
    yield* Effect.forEach(fibers, Fiber.await)
    return { wallMillis: performance.now() - started, sourceCalls: keys, failures: 0 }
  })

export const keyedHerd: BenchCase = {
  id: "K1",
  title: "Keyed herd: K keys x C concurrent cold fetches on a KeyedBearer, each source takes 20 ms",
  run: async ({ smoke, log }) => {
    const keys = smoke ? 10 : 100
    const callers = smoke ? 10 : 100
    const repeats = smoke ? 1 : 5
    await runQuiet(keyedHerdRun(keys, callers))
    await runQuiet(herdFloorRun(keys, callers))
    const bearerRuns: Array<HerdRun> = []
    const floorRuns: Array<HerdRun> = []
    // Each measured run follows a forced collection and a small unmeasured run of the same kind: right after a
    // forced collection the young generation is small and grows again, a cost that falls unevenly on the two
    // kinds of run (the keyed herd allocates more per fetch) and is no part of either.
    const small = (n: number) => Math.max(1, Math.round(n / 10))
    for (let i = 0; i < repeats; i++) {
      await heapAfterGc()
      await runQuiet(keyedHerdRun(small(keys), small(callers)))
      bearerRuns.push(await runQuiet(keyedHerdRun(keys, callers)))
      await heapAfterGc()
      await runQuiet(herdFloorRun(small(keys), small(callers)))
      floorRuns.push(await runQuiet(herdFloorRun(keys, callers)))
    }
    const wall = Math.min(...bearerRuns.map((r) => r.wallMillis))
    const floor = Math.min(...floorRuns.map((r) => r.wallMillis))
    log(`  ${keys} keys x ${callers}: ${wall.toFixed(1)} ms (floor ${floor.toFixed(1)} ms)`)
    const label = `${keys} keys x ${callers} fetches`
    const rows: Array<Row> = [
      equals(`${label}: source calls`, "", Math.max(...bearerRuns.map((r) => r.sourceCalls)), keys),
      equals(`${label}: failed fetches`, "", Math.max(...bearerRuns.map((r) => r.failures)), 0),
      ratioAtMost(`${label}: wall time`, "ms", wall, floor, 1.5)
    ]
    return {
      rows,
      notes: [
        `Wall time: from the first fork to the last join, fastest of ${repeats} runs (alternating with the floor, ` +
          "each after a forced collection and an unmeasured run of a tenth of the keys and callers). " +
          `The floor is ${keys * callers} fibers awaiting ${keys} Deferreds, each completed by a fiber after 20 ms.`,
        "Default options (idleTimeToLive 10 minutes, no capacity bound)."
      ]
    }
  }
}

// ---- K2: idle memory ------------------------------------------------------------------------------------

/** Heap per item after forced GC for `n` items built by `build` in a scope kept open while measuring. */
const heapPerItem = async (
  n: number,
  build: (n: number) => Effect.Effect<unknown, never, Scope.Scope>,
  whileAlive?: () => Promise<void>
): Promise<number> => {
  const scope = await Effect.runPromise(Scope.make())
  const before = await heapAfterGc()
  await runQuiet(Scope.extend(build(n), scope))
  const after = await heapAfterGc()
  if (whileAlive !== undefined) await whileAlive()
  await Effect.runPromise(Scope.close(scope, Exit.void))
  return (after - before) / n
}

const idleKeyed = (n: number): Effect.Effect<KeyedBearer.KeyedBearer<Key>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const sources = counted(0)
    const keyed = yield* Effect.orDie(KeyedBearer.make({ source: sources.source }))
    for (let i = 0; i < n; i++) yield* Effect.orDie(keyed.fetch(keyOf(i)))
    return keyed
  })

const idleFloor = (n: number): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function* () {
    for (let i = 0; i < n; i++) {
      yield* Ref.make(i)
      yield* Effect.forkScoped(Effect.sleep(HOUR))
    }
  })

/**
 * Process CPU time (user + system, ms) over `millis` of waiting, after a second of waiting first: the forced
 * GCs before leave concurrent sweeping behind, which is no part of being idle.
 */
const cpuWhileWaiting = async (millis: number): Promise<number> => {
  await new Promise((resolve) => setTimeout(resolve, 1_000))
  const cpu = process.cpuUsage()
  await new Promise((resolve) => setTimeout(resolve, millis))
  const used = process.cpuUsage(cpu)
  return (used.user + used.system) / 1000
}

export const keyedIdle: BenchCase = {
  id: "K2",
  title: "Idle keyed bearers: heap per bearer after forced GC, CPU while idle",
  run: async ({ smoke, log }) => {
    const sizes = smoke ? [100] : [100, 1_000, 10_000]
    const idleMillis = smoke ? 200 : 2_000
    const rows: Array<Row> = []
    // Warm up the code paths (their compiled code is heap too).
    await heapPerItem(100, idleKeyed)
    await heapPerItem(100, idleFloor)
    let idleCpu = 0
    let emptyCpu = 0
    for (const n of sizes) {
      const largest = n === sizes[sizes.length - 1]
      const bearer = await heapPerItem(n, idleKeyed, async () => {
        if (largest) idleCpu = await cpuWhileWaiting(idleMillis)
      })
      const floor = await heapPerItem(n, idleFloor)
      log(
        `  N=${n}: ${(bearer / 1024).toFixed(1)} KB per idle bearer (floor ${(floor / 1024).toFixed(1)} KB)`
      )
      const size = n.toLocaleString("en-US")
      // The goal is for 10,000 bearers; smaller sets show how the per-bearer figure settles (at N = 100 a few
      // kilobytes of shared state and compiled code weigh on each bearer and on each floor item alike).
      rows.push(
        hasGc() && largest
          ? ratioAtMost(`N=${size}: heap per idle keyed bearer`, "bytes", bearer, floor, 1.25)
          : info(
              `N=${size}: heap per idle keyed bearer${hasGc() ? "" : " (run node with --expose-gc)"}`,
              "bytes",
              bearer,
              floor
            )
      )
    }
    await heapAfterGc()
    emptyCpu = await cpuWhileWaiting(idleMillis)
    const largest = sizes[sizes.length - 1]!.toLocaleString("en-US")
    rows.push(
      atMost(
        `N=${largest}: CPU while idle for ${idleMillis} ms, minus the same wait with nothing alive`,
        "ms",
        idleCpu - emptyCpu,
        idleMillis * 0.01,
        "performance"
      ),
      info(`N=${largest}: CPU while idle (the empty process's)`, "ms", idleCpu, emptyCpu)
    )
    return {
      rows,
      notes: [
        "Each key fetched once (a 1-hour token, no delay), so every bearer holds a fresh token and sleeps until " +
          "its refresh point; default options. The floor is N times Ref.make plus Effect.forkScoped of a " +
          "1-hour sleep.",
        "Heap: heapUsed after forced full GCs, before and after building, divided by N; the scope stays open.",
        "Idle CPU: process CPU (all threads) over the idle span, measured one second after the forced GCs; goal: " +
          "at most 1% of the span above the same wait with nothing alive (after closing and a GC)."
      ]
    }
  }
}

// ---- K3: eviction ---------------------------------------------------------------------------------------

export const keyedEviction: BenchCase = {
  id: "K3",
  title: "Eviction: N keys one after another through a capacity of N / 10",
  run: async ({ smoke, log }) => {
    const n = smoke ? 1_000 : 10_000
    const capacity = n / 10
    const ttlMillis = 200
    let maxAlive = 0
    let aliveAfterTtl = -1
    let calls = 0
    const scope = await Effect.runPromise(Scope.make())
    const start = await heapAfterGc()
    const keyed = await runQuiet(
      Scope.extend(
        Effect.gen(function* () {
          const sources = counted(0)
          const keyed = yield* Effect.orDie(
            KeyedBearer.make({ source: sources.source, capacity, idleTimeToLive: ttlMillis })
          )
          for (let i = 0; i < n; i++) {
            yield* Effect.orDie(keyed.fetch(keyOf(i)))
            maxAlive = Math.max(maxAlive, yield* keyed.size)
          }
          calls = sources.calls()
          return keyed
        }),
        scope
      )
    )
    await new Promise((resolve) => setTimeout(resolve, ttlMillis * 3))
    aliveAfterTtl = await Effect.runPromise(keyed.size)
    const end = await heapAfterGc()
    await Effect.runPromise(Scope.close(scope, Exit.void))
    log(
      `  ${n} keys: at most ${maxAlive} alive; heap start ${(start / MB).toFixed(1)} MB, end ${(end / MB).toFixed(1)} MB`
    )
    const size = n.toLocaleString("en-US")
    return {
      rows: [
        equals(`${size} keys: source calls`, "", calls, n),
        atMost(`${size} keys: most bearers alive at once (capacity ${capacity})`, "", maxAlive, capacity),
        equals(`bearers alive after idleTimeToLive`, "", aliveAfterTtl, 0),
        hasGc()
          ? atMost(
              "heap after all are idle and closed, above the start (forced GC)",
              "MB",
              (end - start) / MB,
              2
            )
          : info("heap after all are idle and closed (run node with --expose-gc)", "MB", (end - start) / MB)
      ],
      notes: [
        `idleTimeToLive ${ttlMillis} ms instead of the default 10 minutes, so the case can wait until every ` +
          "bearer is closed for idleness; capacity is the case's subject. Other options at their defaults.",
        "Start: heapUsed after forced GC before the service is built; the service stays open to the end."
      ]
    }
  }
}
