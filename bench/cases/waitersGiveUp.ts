/**
 * Case 4, waiters that give up: 100,000 fetches with a 1 ms timeout against a source that hangs, then the
 * source recovers. Nothing may be left behind (waiters, timers, listeners), and the next fetch succeeds at once.
 *
 * The source hangs until it recovers: the attempt in flight then answers. `refreshRequestTimeout` is set to
 * ten minutes so that attempt is not abandoned (and followed by a backoff) while the waiters come and go.
 */
import { Clock, Deferred, Effect, Exit, Scope } from "effect"
import { RenewableBearer, Token, TokenSource } from "effect-renewable-bearer"
import { atMost, equals, info, ratioAtMost, type Row } from "../report.js"
import { activeTimers, type BenchCase, hasGc, heapAfterGc, HOUR, MB, runQuiet } from "../support.js"

interface Subject {
  readonly bearer: RenewableBearer.RenewableBearer["Type"]
  readonly recover: Effect.Effect<void>
  readonly calls: () => number
  readonly scope: Scope.CloseableScope
}

/** A clock that records the most sleeps (so timers) armed through it at one moment. */
const peakClock = (base: Clock.Clock) => {
  let armed = 0
  let peak = 0
  const clock: Clock.Clock = {
    ...base,
    [Clock.ClockTypeId]: Clock.ClockTypeId,
    unsafeCurrentTimeMillis: () => base.unsafeCurrentTimeMillis(),
    unsafeCurrentTimeNanos: () => base.unsafeCurrentTimeNanos(),
    currentTimeMillis: base.currentTimeMillis,
    currentTimeNanos: base.currentTimeNanos,
    sleep: (duration) =>
      Effect.suspend(() => {
        armed += 1
        peak = Math.max(peak, armed)
        return Effect.ensuring(
          base.sleep(duration),
          Effect.sync(() => {
            armed -= 1
          })
        )
      })
  }
  // `peak()` counts the sleeps armed at once beyond those already armed at `reset()` (the hung attempt's bound).
  let baseline = 0
  return {
    clock,
    peak: () => peak - baseline,
    reset: () => {
      baseline = armed
      peak = armed
    }
  }
}

const subject = async (clock?: Clock.Clock): Promise<Subject> => {
  const recovered = Effect.runSync(Deferred.make<void>())
  let calls = 0
  const source = TokenSource.TokenSource.of({
    fetch: Effect.suspend(() => {
      calls += 1
      return Effect.zipRight(
        Deferred.await(recovered),
        Effect.map(Clock.currentTimeMillis, (now) => Token.make("recovered", { expiresAt: now + HOUR }))
      )
    })
  })
  const scope = Effect.runSync(Scope.make())
  const bearer = await runQuiet(
    RenewableBearer.make({ refreshRequestTimeout: "10 minutes" }).pipe(
      Effect.provideService(TokenSource.TokenSource, source),
      Scope.extend(scope),
      clock === undefined ? (self) => self : Effect.withClock(clock)
    )
  )
  return { bearer, recover: Effect.asVoid(Deferred.succeed(recovered, undefined)), calls: () => calls, scope }
}

/** One round trip through the event loop. */
const nextTurn: Effect.Effect<void> = Effect.async<void>((resume) => {
  setImmediate(() => resume(Effect.void))
})

/**
 * `n` fetches with a 1 ms timeout, all at once (one fiber each, concurrency unbounded), with `clock` as the
 * waiters' clock; returns how many failed with the bearer's timeout and the wall time in ms.
 */
const giveUp = (
  bearer: Subject["bearer"],
  n: number,
  clock: Clock.Clock
): Promise<{ readonly timedOut: number; readonly millis: number }> =>
  runQuiet(
    Effect.gen(function* () {
      const fetch = bearer.fetch({ timeout: "1 millis" })
      let timedOut = 0
      const started = performance.now()
      yield* Effect.forEach(
        Array.from({ length: n }),
        () =>
          Effect.catchAll(Effect.asVoid(fetch), (error) =>
            Effect.sync(() => {
              if (error._tag === "RenewalError" && error.reason === "Timeout") timedOut++
            })
          ),
        { concurrency: "unbounded", discard: true }
      )
      return { timedOut, millis: performance.now() - started }
    }).pipe(Effect.withClock(clock))
  )

/**
 * The floor: `n` untimed fibers waiting on one `Deferred` (forked all at once as the fetches are), released by
 * it once every one of them waits; returns the wall time in ms, from the fork to the last one done.
 */
const floorRun = (n: number): Promise<number> =>
  runQuiet(
    Effect.gen(function* () {
      const released = yield* Deferred.make<void>()
      let waiting = 0
      const wait = Effect.suspend(() => {
        waiting += 1
        return Deferred.await(released)
      })
      const started = performance.now()
      const all = yield* Effect.fork(
        Effect.forEach(Array.from({ length: n }), () => wait, { concurrency: "unbounded", discard: true })
      )
      while (waiting < n) yield* nextTurn
      yield* Deferred.succeed(released, undefined)
      yield* all.await
      return performance.now() - started
    })
  )

export const waitersGiveUp: BenchCase = {
  id: "4",
  title: "Waiters that give up: 100,000 fetches with a 1 ms timeout on a hung source, then recovery",
  run: async ({ smoke, log }) => {
    const n = smoke ? 2_000 : 100_000
    const warmUp = smoke ? 1_000 : 4_000

    // Warm-up, so compiled code and lazily built caches count in neither heap figure: the whole story on a
    // throw-away bearer, then a few rounds of waiters on the measured one.
    const rounds = smoke ? 1 : 3
    const warm = await subject()
    const unwatched = Effect.runSync(Effect.clock)
    await giveUp(warm.bearer, warmUp, unwatched)
    await runQuiet(warm.recover)
    await runQuiet(warm.bearer.fetch())
    await runQuiet(Scope.close(warm.scope, Exit.void))
    // One clock for the bearer and the waiters: every sleep either arms (so every timer) is counted.
    const timers = peakClock(unwatched)
    const { bearer, recover, calls, scope } = await subject(timers.clock)
    await giveUp(bearer, warmUp, timers.clock)
    // Effect's scheduler keeps a weak table with an entry per fiber that ran (`SchedulerRunner.cached`). V8
    // clears its entries in a full collection but sizes the table by the entries, live or cleared, at the moment
    // it grows: 100,000 fibers make it about 4 MB, 200,000 between two full collections about 8 MB. The table
    // belongs to neither the bearer nor its waiters, so a full-size floor round sizes it before the heap is
    // measured, and a forced collection after every round below keeps it that size.
    await floorRun(n)
    timers.reset()

    const timersBefore = activeTimers()
    const heapBefore = await heapAfterGc()

    // The bearer and the floor alternate; each keeps its fastest round. The source stays hung throughout. A
    // floor round comes last, as one came just before the heap was measured, so Effect's table is alike in
    // both heap figures.
    const floorMillis: Array<number> = []
    const giveUpMillis: Array<number> = []
    let timedOut = n
    for (let round = 0; round < rounds; round++) {
      const result = await giveUp(bearer, n, timers.clock)
      await heapAfterGc()
      floorMillis.push(await floorRun(n))
      await heapAfterGc()
      giveUpMillis.push(result.millis)
      timedOut = Math.min(timedOut, result.timedOut)
      log(
        `  ${n} waiters gave up in ${result.millis.toFixed(0)} ms (floor ${floorMillis[round]!.toFixed(0)} ms)`
      )
    }
    const peakTimers = timers.peak()

    const next = await runQuiet(
      Effect.gen(function* () {
        yield* recover
        const from = performance.now()
        const exit = yield* Effect.exit(bearer.fetch({ timeout: "5 seconds" }))
        return { ok: Exit.isSuccess(exit), millis: performance.now() - from }
      })
    )
    const heapAfter = await heapAfterGc()
    const timersAfter = activeTimers()
    await runQuiet(Scope.close(scope, Exit.void))

    const rows: Array<Row> = [
      equals("fetches that timed out (fewest of the rounds)", "", timedOut, n),
      ratioAtMost(
        "time for all of them to give up vs untimed waiters released by one Deferred",
        "ms",
        Math.min(...giveUpMillis),
        Math.min(...floorMillis),
        1.25
      ),
      atMost("timers armed at once while they wait (bearer and waiters)", "", peakTimers, 1),
      equals("source calls", "", calls(), 1),
      equals("next fetch after recovery succeeds", "", next.ok ? 1 : 0, 1),
      atMost("next fetch after recovery", "ms", next.millis, 50, "performance"),
      // Before: the hung attempt's bound (refreshRequestTimeout); after: the scheduled refresh.
      {
        ...atMost("timers alive, after vs before", "", timersAfter, timersBefore),
        floor: timersBefore,
        goal: "<= before"
      },
      hasGc()
        ? atMost("heap growth after forced GC", "MB", (heapAfter - heapBefore) / MB, 1)
        : info("heap growth (run node with --expose-gc to force GC)", "MB", (heapAfter - heapBefore) / MB)
    ]
    return {
      rows,
      notes: [
        "Heap: heapUsed after forced full GCs, before (after warm-up rounds of waiters, source still hung) and " +
          "after (bearer holding the recovered token); the one timer alive is the hung attempt's bound before, the " +
          "scheduled refresh after. A forced collection follows every round, outside the timings: Effect's " +
          "scheduler keeps a weak table of every fiber that ran, which V8 sizes by the fibers created between two " +
          "full collections (4 MB for 100,000, 8 MB for 200,000) and does not shrink; without it the table, not the " +
          "bearer, decides the heap figure.",
        "refreshRequestTimeout: '10 minutes' instead of the default 5 s, so the hung attempt is still in flight " +
          "when the source recovers, after all the rounds (each can take tens of seconds on a loaded machine).",
        "All the fetches start at once (Effect.forEach, concurrency unbounded); a timed waiter joins the bearer's " +
          "deadline queue, whose one alarm (among the bearer's alarms) ends the expired waits. Floor: as many untimed fibers, forked the " +
          "same way, waiting on one Deferred and released by it once all of them wait. Fastest of " +
          `${rounds} rounds each, bearer and floor alternating (the source stays hung through them all).`,
        "Timers: a counting Clock given to the bearer and to the waiting fibers, so a timer armed by either counts."
      ]
    }
  }
}
