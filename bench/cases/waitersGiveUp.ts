/**
 * Case 4, waiters that give up: 100,000 fetches with a 1 ms timeout against a source that hangs, then the
 * source recovers. Nothing may be left behind (waiters, timers, listeners), and the next fetch succeeds at once.
 *
 * The source hangs until it recovers: the attempt in flight then answers. `refreshRequestTimeout` is set to
 * one minute so that attempt is not abandoned (and followed by a backoff) while the waiters come and go.
 */
import { Clock, Deferred, Effect, Exit, Scope } from "effect"
import { RenewableBearer, Token, TokenSource } from "effect-renewable-bearer"
import { atMost, equals, info, type Row } from "../report.js"
import { activeTimers, type BenchCase, hasGc, heapAfterGc, HOUR, MB, runQuiet } from "../support.js"

interface Subject {
  readonly bearer: RenewableBearer.RenewableBearer["Type"]
  readonly recover: Effect.Effect<void>
  readonly calls: () => number
  readonly scope: Scope.CloseableScope
}

const subject = async (): Promise<Subject> => {
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
    RenewableBearer.make({ refreshRequestTimeout: "1 minute" }).pipe(
      Effect.provideService(TokenSource.TokenSource, source),
      Scope.extend(scope)
    )
  )
  return { bearer, recover: Effect.asVoid(Deferred.succeed(recovered, undefined)), calls: () => calls, scope }
}

/**
 * `n` fetches with a 1 ms timeout, `concurrency` at a time; returns how many failed with the bearer's timeout.
 * (Each waiter with a timeout costs Effect three fibers and a timer: bounding how many wait at once keeps the
 * live heap, and so the run time, small, while every one of the `n` still registers and gives up.)
 */
const giveUp = (bearer: Subject["bearer"], n: number, concurrency: number): Promise<number> =>
  runQuiet(
    Effect.gen(function* () {
      const fetch = bearer.fetch({ timeout: "1 millis" })
      let timedOut = 0
      yield* Effect.forEach(
        Array.from({ length: n }),
        () =>
          Effect.catchAll(Effect.asVoid(fetch), (error) =>
            Effect.sync(() => {
              if (error._tag === "RenewalError" && error.reason === "Timeout") timedOut++
            })
          ),
        { concurrency, discard: true }
      )
      return timedOut
    })
  )

export const waitersGiveUp: BenchCase = {
  id: "4",
  title: "Waiters that give up: 100,000 fetches with a 1 ms timeout on a hung source, then recovery",
  run: async ({ smoke, log }) => {
    const n = smoke ? 2_000 : 100_000
    const concurrency = smoke ? 500 : 2_000

    // Warm-up, so compiled code and lazily built caches count in neither heap figure: the whole story on a
    // throw-away bearer, then a few rounds of waiters on the measured one.
    const warm = await subject()
    await giveUp(warm.bearer, 2 * concurrency, concurrency)
    await runQuiet(warm.recover)
    await runQuiet(warm.bearer.fetch())
    await runQuiet(Scope.close(warm.scope, Exit.void))
    const { bearer, recover, calls, scope } = await subject()
    await giveUp(bearer, 2 * concurrency, concurrency)

    const timersBefore = activeTimers()
    const heapBefore = await heapAfterGc()

    const started = performance.now()
    const timedOut = await giveUp(bearer, n, concurrency)
    const giveUpMillis = performance.now() - started
    log(`  ${n} waiters gave up in ${giveUpMillis.toFixed(0)} ms`)

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
      equals("fetches that timed out", "", timedOut, n),
      info("time for all of them to give up", "ms", giveUpMillis),
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
          "scheduled refresh after.",
        "refreshRequestTimeout: '1 minute', so the hung attempt is still in flight when the source recovers.",
        "The fetches run 2,000 at a time (Effect.forEach with concurrency): every one registers as a waiter and " +
          "gives up; bounding how many wait at once keeps Effect's per-waiter cost (three fibers and a timer) small."
      ]
    }
  }
}
