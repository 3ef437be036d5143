import { describe, expect, it } from "@effect/vitest"
import {
  Cause,
  Chunk,
  Clock,
  Config,
  ConfigProvider,
  Context,
  Effect,
  Exit,
  Fiber,
  Layer,
  Option,
  Metric,
  MetricLabel,
  Random,
  Scope,
  Stream,
  TestClock
} from "effect"
import {
  Errors,
  Metrics,
  RenewableBearer,
  TestTokenSource,
  Token,
  TokenSource
} from "effect-renewable-bearer"
import { settle, setup, value } from "./utils/bearer.js"

const HOUR = 3_600_000
const t = TestTokenSource.token

describe("RenewableBearer", () => {
  describe("the background fiber", () => {
    it.scoped("does nothing until the first fetch", () =>
      Effect.gen(function* () {
        const { bearer, source } = yield* setup([t("t1", { expiresIn: "1 hour" })])
        yield* TestClock.adjust("1 hour")
        expect(yield* source.calls).toBe(0)
        expect(value(yield* bearer.fetch())).toBe("t1")
        expect(yield* source.callTimes).toEqual([HOUR])
      })
    )

    it.scoped("starts at build with eager", () =>
      Effect.gen(function* () {
        const { bearer, source } = yield* setup([t("t1", { expiresIn: "1 hour" })], { eager: true })
        yield* settle
        expect(yield* source.calls).toBe(1)
        expect(Option.map(yield* bearer.current, value)).toEqual(Option.some("t1"))
      })
    )

    it.scoped("10,000 concurrent cold fetches cause exactly one source call", () =>
      Effect.gen(function* () {
        const { bearer, source } = yield* setup([t("t1", { expiresIn: "1 hour", delay: "20 millis" })])
        const fibers = yield* Effect.forEach(Array.from({ length: 10_000 }), () =>
          Effect.fork(bearer.fetch())
        )
        yield* TestClock.adjust("20 millis")
        const tokens = yield* Fiber.joinAll(fibers)
        expect(new Set(tokens.map(value))).toEqual(new Set(["t1"]))
        expect(yield* source.calls).toBe(1)
        expect(yield* source.maxInFlight).toBe(1)
      })
    )
  })

  describe("schedule, backoff, jitter and timeouts", () => {
    it.scoped("refreshes at lifetimeSafeFraction of the remaining lifetime", () =>
      Effect.gen(function* () {
        const { bearer, source } = yield* setup([
          t("t1", { expiresIn: "1 hour" }),
          t("t2", { expiresIn: "1 hour" })
        ])
        yield* bearer.fetch()
        yield* TestClock.adjust(0.9 * HOUR - 1)
        expect(yield* source.calls).toBe(1)
        yield* TestClock.adjust(1)
        expect(yield* source.callTimes).toEqual([0, 0.9 * HOUR])
        expect(value(yield* bearer.fetch())).toBe("t2")
        yield* TestClock.adjust(0.9 * HOUR)
        expect(yield* source.callTimes).toEqual([0, 0.9 * HOUR, 1.8 * HOUR])
      })
    )

    it.scoped("backs off 1 s, 1.5 s, 2.25 s, 3.375 s after consecutive failures", () =>
      Effect.gen(function* () {
        const { bearer, source } = yield* setup([
          TestTokenSource.fail(),
          TestTokenSource.fail(),
          TestTokenSource.fail(),
          TestTokenSource.fail(),
          t("t1", { expiresIn: "1 hour" })
        ])
        const fiber = yield* Effect.fork(bearer.fetch())
        yield* TestClock.adjust("10 seconds")
        expect(value(yield* Fiber.join(fiber))).toBe("t1")
        expect(yield* source.callTimes).toEqual([0, 1000, 2500, 4750, 8125])
      })
    )

    it.scoped("caps the backoff at maxRetryTimeout", () =>
      Effect.gen(function* () {
        const { bearer, source } = yield* setup([TestTokenSource.fail()], {
          initialRetryTimeout: "1 second",
          maxRetryTimeout: "3 seconds",
          retryTimeoutExponent: 2
        })
        yield* Effect.fork(bearer.fetch())
        yield* TestClock.adjust("12 seconds")
        expect(yield* source.callTimes).toEqual([0, 1000, 3000, 6000, 9000, 12000])
      })
    )

    it.scoped("a permanent failure waits the longest backoff at once", () =>
      Effect.gen(function* () {
        const { bearer, source } = yield* setup([
          TestTokenSource.fail("invalid_client", { retryable: false })
        ])
        yield* Effect.fork(bearer.fetch())
        yield* TestClock.adjust("3 minutes")
        expect(yield* source.callTimes).toEqual([0, 60_000, 120_000, 180_000])
      })
    )

    it.scoped("jitter spreads backoffs by ± jitter through Effect's Random", () =>
      Effect.gen(function* () {
        const { bearer, source } = yield* setup(
          [TestTokenSource.fail(), TestTokenSource.fail(), t("t1", { expiresIn: "1 hour" })],
          { jitter: 0.2 }
        ).pipe(Effect.withRandom(Random.fixed([1, 0, 0.5])))
        yield* Effect.fork(bearer.fetch())
        yield* TestClock.adjust("3 seconds")
        // 1 s * 1.2, then 1.5 s * 0.8; the refresh then comes 0.2 * 0.5 earlier than at 90 %.
        expect(yield* source.callTimes).toEqual([0, 1200, 2400])
        yield* TestClock.adjust(0.9 * 0.9 * HOUR)
        expect(yield* source.callTimes).toEqual([0, 1200, 2400, 2400 + 0.9 * 0.9 * HOUR])
      })
    )

    // With default options (jitter 0 for exact instants), a source that answers in 20 ms: each refresh starts
    // at 90 % of the remaining lifetime, or earlier when that would leave less than twice the source's latency
    // before the token stops being handed out (its expiration less the early-expiry margin).
    const schedules: ReadonlyArray<[string, number, ReadonlyArray<number>]> = [
      // Usable until 115 ms: min(90, 115 - 20 - 2 * 20) = 55 ms after each answer.
      ["100 millis", 100, [0, 75, 150, 225]],
      // Usable until 970 ms: min(900, 970 - 20 - 40) = 900 ms after each answer.
      ["1 second", 1000, [0, 920, 1840, 2760]],
      ["1 minute", 60_000, [0, 54_020, 108_040, 162_060]],
      ["1 hour", HOUR, [0, 0.9 * HOUR + 20, 1.8 * HOUR + 40, 2.7 * HOUR + 60]]
    ]
    for (const [lifetime, millis, expected] of schedules) {
      it.scoped(
        `${lifetime} tokens: every refresh starts inside the usable window, with time for the source`,
        () =>
          Effect.gen(function* () {
            const { bearer, source } = yield* setup([t("a", { expiresIn: millis, delay: "20 millis" })])
            const first = yield* Effect.fork(bearer.fetch())
            yield* TestClock.adjust(20)
            yield* Fiber.join(first)
            yield* TestClock.adjust(expected[3]! - 20)
            expect(yield* source.callTimes).toEqual(expected)
            const margin = Math.min(10_000, (millis * 0.1) / 2)
            for (let i = 1; i < expected.length; i++) {
              // The renewed token arrives before the one it replaces stops being handed out.
              expect(expected[i]! + 20).toBeLessThan(expected[i - 1]! + 20 + millis - margin)
            }
          })
      )
    }

    it.scoped("100 ms tokens: a caller fetching every 5 ms never waits for a renewal", () =>
      Effect.gen(function* () {
        const { bearer, source } = yield* setup([t("a", { expiresIn: "100 millis", delay: "20 millis" })])
        const first = yield* Effect.fork(bearer.fetch())
        yield* TestClock.adjust(20)
        yield* Fiber.join(first)
        for (let i = 0; i < 200; i++) {
          const fiber = yield* Effect.fork(bearer.fetch())
          yield* settle
          expect(Option.isSome(yield* Fiber.poll(fiber))).toBe(true)
          yield* TestClock.adjust(5)
        }
        // 1,020 ms: a refresh every 75 ms.
        expect(yield* source.calls).toBe(14)
      })
    )

    it.scoped("the lead time follows the slowest of the recent answers, not the last one", () =>
      Effect.gen(function* () {
        const { bearer, source } = yield* setup([
          t("a", { expiresIn: "1 second", delay: "5 millis" }),
          t("b", { expiresIn: "1 second", delay: "40 millis" }),
          t("c", { expiresIn: "1 second", delay: "5 millis" })
        ])
        const first = yield* Effect.fork(bearer.fetch())
        yield* TestClock.adjust(5)
        yield* Fiber.join(first)
        // a arrives at 5 ms: refresh at 905 ms (90 %). b arrives at 945 ms, usable until 1895 ms, lead 2 x 40 ms:
        // at 1815 ms. c arrives at 1820 ms; the lead is still 2 x 40 ms (the last answer took 5 ms): 2690 ms,
        // not 2720 ms.
        yield* TestClock.adjust(2690 - 5)
        expect(yield* source.callTimes).toEqual([0, 905, 1815, 2690])
      })
    )

    it.scoped(
      "a short-lived token handed back unchanged: one more refresh inside its window, then the backoff",
      () =>
        Effect.gen(function* () {
          const { bearer, source } = yield* setup([t("same", { expiresAt: 1000 })])
          yield* bearer.fetch()
          yield* TestClock.adjust(5000)
          // 900 ms (90 %); the same token: max(90 ms, backoff 1 s) cut at its usable end, 995 ms; the same again:
          // asking before it ends brings nothing, so the 1.5 s backoff runs in full (2,495 ms). From then on the
          // token has expired: InvalidToken failures on the failure backoff (1 s, 1.5 s).
          expect(yield* source.callTimes).toEqual([0, 900, 995, 2495, 3495, 4995])
        })
    )

    it.scoped("a fetch past the refresh point starts the renewal at once when the timer is held back", () =>
      Effect.gen(function* () {
        const name = `ahead-${Math.random()}`
        const held = Clock.make()
        const testClock = yield* Effect.clock
        // The bearer's timers never fire (a starved scheduler); its clock reads the test's time.
        const late: Clock.Clock = {
          ...held,
          unsafeCurrentTimeMillis: () => testClock.unsafeCurrentTimeMillis(),
          unsafeCurrentTimeNanos: () => testClock.unsafeCurrentTimeNanos(),
          currentTimeMillis: testClock.currentTimeMillis,
          currentTimeNanos: testClock.currentTimeNanos,
          sleep: () => Effect.never
        }
        const { bearer, source } = yield* setup([t("t1", { expiresIn: "1 hour" }), TestTokenSource.hang], {
          name
        }).pipe(Effect.withClock(late))
        const wakes = Metric.value(
          Metrics.refreshAheadWakes.pipe(Metric.taggedWithLabels([MetricLabel.make("bearer", name)]))
        )
        yield* bearer.fetch()
        yield* TestClock.adjust(0.9 * HOUR + 1)
        expect(yield* source.callTimes).toEqual([0])
        expect(value(yield* bearer.fetch())).toBe("t1")
        yield* settle
        expect(yield* source.callTimes).toEqual([0, 0.9 * HOUR + 1])
        // Once per token: later stale serves of t1 do not wake the fiber again.
        yield* bearer.fetch()
        yield* bearer.fetch()
        expect((yield* wakes).count).toBe(1)
        expect(yield* source.calls).toBe(2)
      })
    )

    it.scoped("a Retry-After from the source delays the next attempt, up to maxRetryTimeout", () =>
      Effect.gen(function* () {
        const slowDown: TestTokenSource.Step = {
          _tag: "Fail",
          error: new Errors.TokenSourceError({ message: "429", status: 429, retryAfter: "120 seconds" })
        }
        const capped = yield* setup([slowDown, t("t1", { expiresIn: "1 hour" })])
        yield* Effect.fork(capped.bearer.fetch())
        yield* TestClock.adjust("3 minutes")
        expect(yield* capped.source.callTimes).toEqual([0, 60_000])
        const allowed = yield* setup([slowDown, t("t1", { expiresIn: "1 hour" })], {
          maxRetryTimeout: "5 minutes"
        })
        const start = yield* Clock.currentTimeMillis
        yield* Effect.fork(allowed.bearer.fetch())
        yield* TestClock.adjust("3 minutes")
        expect(yield* allowed.source.callTimes).toEqual([start, start + 120_000])
        // A shorter Retry-After does not cut the backoff.
        const short = yield* setup([
          { ...slowDown, error: new Errors.TokenSourceError({ message: "429", retryAfter: 10 }) },
          t("t1", { expiresIn: "1 hour" })
        ])
        const at = yield* Clock.currentTimeMillis
        yield* Effect.fork(short.bearer.fetch())
        yield* TestClock.adjust("2 seconds")
        expect(yield* short.source.callTimes).toEqual([at, at + 1000])
      })
    )
    it.scoped("a source that hangs is interrupted at refreshRequestTimeout and retried", () =>
      Effect.gen(function* () {
        const { bearer, source } = yield* setup([TestTokenSource.hang, t("t1", { expiresIn: "1 hour" })])
        const fiber = yield* Effect.fork(bearer.fetch())
        yield* TestClock.adjust("5 seconds")
        expect(yield* source.inFlight).toBe(0)
        yield* TestClock.adjust("1 second")
        expect(value(yield* Fiber.join(fiber))).toBe("t1")
        expect(yield* source.callTimes).toEqual([0, 6000])
        expect(yield* source.maxInFlight).toBe(1)
      })
    )

    it.scoped("a token without expiration is refreshed after VeryLongTimeout", () =>
      Effect.gen(function* () {
        const { bearer, source } = yield* setup([t("forever")])
        yield* bearer.fetch()
        yield* TestClock.adjust("3649 days")
        expect(yield* source.calls).toBe(1)
        yield* TestClock.adjust("1 day")
        expect(yield* source.calls).toBe(2)
      })
    )

    it.scoped("refreshes early enough for the latency it observed", () =>
      Effect.gen(function* () {
        // 200 ms tokens from a source that takes 20 ms: refresh at 180 ms would leave callers without a token.
        const { bearer, source } = yield* setup([t("a", { expiresIn: "200 millis", delay: "20 millis" })], {
          initialRetryTimeout: "1 millis"
        })
        const fiber = yield* Effect.fork(bearer.fetch())
        yield* TestClock.adjust("20 millis")
        yield* Fiber.join(fiber)
        // Received at 20 ms, expires at 220 ms, usable until 220 - 200 * (1 - 0.9) / 2 = 210 ms. At 90 % the
        // refresh would start at 200 ms and end at 220 ms; it starts at 20 + min(180, 190 - 2 * 20) = 170 ms.
        yield* TestClock.adjust("149 millis")
        expect(yield* source.callTimes).toEqual([0])
        yield* TestClock.adjust("1 millis")
        expect(yield* source.callTimes).toEqual([0, 170])
      })
    )
  })

  it.scoped("a wrapper that spreads the service keeps every member working", () =>
    Effect.gen(function* () {
      const { bearer, source } = yield* setup([t("t1", { expiresIn: "1 hour" })])
      const wrapped = RenewableBearer.RenewableBearer.of({ ...bearer })
      expect(value(yield* wrapped.fetch())).toBe("t1")
      expect(Option.map(yield* wrapped.current, value)).toEqual(Option.some("t1"))
      expect(yield* wrapped.isRenewalRequired).toBe(false)
      const receiver = yield* wrapped.receiver
      expect(value(yield* receiver.fetch)).toBe("t1")
      expect(yield* receiver.trials).toBe(1)
      expect(
        (yield* Stream.runCollect(Stream.take(wrapped.changes, 1))).pipe(Chunk.map(value), Chunk.toArray)
      ).toEqual(["t1"])
      yield* wrapped.requestRenewal()
      expect(yield* wrapped.isRenewalRequired).toBe(true)
      yield* settle
      expect(yield* source.calls).toBe(2)
    })
  )

  describe("fetch modes", () => {
    it.scoped("a fresh token is returned at once without arming a timer", () =>
      Effect.gen(function* () {
        const { bearer, source } = yield* setup([t("t1", { expiresIn: "1 hour" })])
        yield* bearer.fetch()
        const sleeps = Chunk.size(yield* TestClock.sleeps())
        const token = yield* bearer.fetch({ timeout: "1 second" })
        expect(value(token)).toBe("t1")
        expect(Chunk.size(yield* TestClock.sleeps())).toBe(sleeps)
        expect(yield* source.calls).toBe(1)
      })
    )

    it.scoped("renewRequired waits for a new token", () =>
      Effect.gen(function* () {
        const { bearer, source } = yield* setup([
          t("t1", { expiresIn: "1 hour" }),
          t("t2", { expiresIn: "1 hour", delay: "100 millis" })
        ])
        yield* bearer.fetch()
        const fiber = yield* Effect.fork(bearer.fetch({ renewRequired: true }))
        yield* TestClock.adjust("100 millis")
        expect(value(yield* Fiber.join(fiber))).toBe("t2")
        expect(yield* source.callTimes).toEqual([0, 0])
      })
    )

    it.scoped("synchronous abandons the attempt in flight and returns its own", () =>
      Effect.gen(function* () {
        const { bearer, source } = yield* setup([
          t("t1", { expiresIn: "1 hour" }),
          TestTokenSource.hang,
          t("t3", { expiresIn: "1 hour", delay: "10 millis" })
        ])
        yield* bearer.fetch()
        yield* TestClock.adjust("10 minutes")
        yield* bearer.requestRenewal()
        yield* settle
        expect(yield* source.inFlight).toBe(1)
        const fiber = yield* Effect.fork(bearer.fetch({ synchronous: true, renewRequired: true }))
        yield* settle
        yield* TestClock.adjust("10 millis")
        expect(value(yield* Fiber.join(fiber))).toBe("t3")
        expect(yield* source.callTimes).toEqual([0, 600_000, 600_000])
        expect(yield* source.maxInFlight).toBe(1)
      })
    )

    it.scoped("synchronous attempts are bounded by renewRequestTimeout and report their error", () =>
      Effect.gen(function* () {
        const { bearer } = yield* setup([t("t1", { expiresIn: "1 hour" }), TestTokenSource.hang])
        yield* bearer.fetch()
        const fiber = yield* Effect.fork(
          bearer.fetch({ synchronous: true, renewRequired: true, renewRequestTimeout: "2 seconds" })
        )
        yield* TestClock.adjust("2 seconds")
        const error = yield* Effect.flip(Fiber.join(fiber))
        expect(error).toBeInstanceOf(Errors.RenewalError)
        expect(error._tag === "RenewalError" && error.reason).toBe("SourceTimeout")
      })
    )

    it.scoped("concurrent synchronous requests share one attempt", () =>
      Effect.gen(function* () {
        const { bearer, source } = yield* setup([
          t("t1", { expiresIn: "1 hour" }),
          t("t2", { expiresIn: "1 hour", delay: "50 millis" })
        ])
        yield* bearer.fetch()
        const fibers = yield* Effect.forEach(Array.from({ length: 100 }), () =>
          Effect.fork(bearer.fetch({ synchronous: true, renewRequired: true }))
        )
        yield* TestClock.adjust("50 millis")
        const tokens = yield* Fiber.joinAll(fibers)
        expect(new Set(tokens.map(value))).toEqual(new Set(["t2"]))
        expect(yield* source.calls).toBe(2)
      })
    )

    it.scoped("reportError surfaces the next attempt's error; the default waits through it", () =>
      Effect.gen(function* () {
        const { bearer, source } = yield* setup([
          t("t1", { expiresIn: "1 hour" }),
          TestTokenSource.fail("boom"),
          TestTokenSource.fail("boom"),
          t("t4", { expiresIn: "1 hour" })
        ])
        yield* bearer.fetch()
        const reporting = yield* Effect.fork(bearer.fetch({ renewRequired: true, reportError: true }))
        const waiting = yield* Effect.fork(bearer.fetch({ renewRequired: true }))
        yield* settle
        const error = yield* Effect.flip(Fiber.join(reporting))
        expect(error._tag === "RenewalError" && error.reason).toBe("SourceError")
        expect(error._tag === "RenewalError" && Errors.isTokenSourceError(error.cause)).toBe(true)
        yield* TestClock.adjust("2500 millis")
        expect(value(yield* Fiber.join(waiting))).toBe("t4")
        expect(yield* source.callTimes).toEqual([0, 0, 1000, 2500])
      })
    )

    it.scoped("a caller's timeout ends its own wait only", () =>
      Effect.gen(function* () {
        const { bearer, source } = yield* setup([t("t1", { expiresIn: "1 hour", delay: "3 seconds" })])
        const impatient = yield* Effect.fork(bearer.fetch({ timeout: "1 second" }))
        const patient = yield* Effect.fork(bearer.fetch())
        yield* TestClock.adjust("1 second")
        const error = yield* Effect.flip(Fiber.join(impatient))
        expect(error._tag === "RenewalError" && error.reason).toBe("Timeout")
        yield* TestClock.adjust("2 seconds")
        expect(value(yield* Fiber.join(patient))).toBe("t1")
        expect(yield* source.calls).toBe(1)
      })
    )

    it.scoped(
      "10,000 timed waiters time out at their own deadlines, in order, with one timer for all",
      () =>
        Effect.gen(function* () {
          const { bearer } = yield* setup([TestTokenSource.hang])
          yield* Effect.fork(bearer.fetch())
          yield* settle
          const timersBefore = Chunk.size(yield* TestClock.sleeps())
          // Timeouts of 1, 11, 21, ... 991 ms, in a scrambled order (100 instants: TestClock checks every fiber
          // at each instant it wakes one).
          const timeouts = Array.from({ length: 10_000 }, (_, i) => 1 + ((i * 7919) % 100) * 10)
          const fibers = yield* Effect.forEach(timeouts, (timeout) =>
            Effect.fork(
              Effect.flatMap(Effect.flip(bearer.fetch({ timeout })), (error) =>
                Effect.map(Clock.currentTimeMillis, (at) => ({ error, at }))
              )
            )
          )
          yield* settle
          expect(Chunk.size(yield* TestClock.sleeps())).toBe(timersBefore + 1)
          for (let now = 100; now <= 1000; now += 100) {
            yield* TestClock.adjust(100)
            // One timer while any waiter is left (the last times out at 991 ms), none after.
            expect(Chunk.size(yield* TestClock.sleeps())).toBe(timersBefore + (now < 991 ? 1 : 0))
          }
          const results = yield* Fiber.joinAll(fibers)
          expect(results.map((r) => r.at)).toEqual(timeouts)
          expect(new Set(results.map((r) => r.error._tag === "RenewalError" && r.error.reason))).toEqual(
            new Set(["Timeout"])
          )
          // Every waiter is gone: the sleeper holds no timer any more.
          expect(Chunk.size(yield* TestClock.sleeps())).toBe(timersBefore)
        }),
      60_000
    )

    it.scoped("malformed fetch options fail with a clear error", () =>
      Effect.gen(function* () {
        const { bearer } = yield* setup([t("t1", { expiresIn: "1 hour" })])
        const error = yield* Effect.flip(bearer.fetch({ timeout: -5 }))
        expect(error._tag === "RenewalError" && error.reason).toBe("InvalidOptions")
        expect(error.message).toContain("timeout")
      })
    )
  })

  describe("never an expired token, never an evicted valid one", () => {
    it.scoped("serves the still-valid token while refresh fails, then waits and reports the last error", () =>
      Effect.gen(function* () {
        const { bearer, source } = yield* setup([
          t("t1", { expiresIn: "100 seconds" }),
          TestTokenSource.fail("down")
        ])
        yield* bearer.fetch()
        yield* TestClock.adjust("94 seconds")
        // The first call at 0; the refresh at 90 % of the 100 s lifetime (90 s) fails, and so do the retries
        // on the backoff (jitter 0): 1 s later (91 s), then 1.5 s later (92.5 s); the next, 2.25 s later
        // (94.75 s), is still to come.
        expect(yield* source.calls).toBe(4)
        expect(yield* source.callTimes).toEqual([0, 90_000, 91_000, 92_500])
        expect(value(yield* bearer.fetch())).toBe("t1")
        // usable until 100 s less min(10 s margin, 5 % of the lifetime) = 95 s
        yield* TestClock.adjust("1 second")
        expect(yield* bearer.current).toEqual(Option.none())
        const fiber = yield* Effect.fork(bearer.fetch({ timeout: "500 millis" }))
        yield* TestClock.adjust("500 millis")
        const error = yield* Effect.flip(Fiber.join(fiber))
        expect(error._tag === "RenewalError" && error.reason).toBe("Timeout")
        expect(error._tag === "RenewalError" && Errors.isTokenSourceError(error.cause)).toBe(true)
        expect(error.message).toContain("down")
      })
    )
  })

  describe("a bad source never kills the loop", () => {
    it.scoped(
      "defects, empty tokens, expired tokens and invalid expirations are rejected, and the loop goes on",
      () =>
        Effect.gen(function* () {
          const { bearer, source } = yield* setup([
            TestTokenSource.die(new Error("kaboom")),
            t(""),
            t("stale", { expiresAt: 0 }),
            t("nan", { expiresAt: NaN }),
            t("far", { expiresAt: 8.64e15 + 1 }),
            t("good", { expiresIn: "1 hour" })
          ])
          const reasons: Array<string> = []
          // One waiter per attempt; the attempts come at 0, 1 s, 2.5 s, 4.75 s and 8.125 s.
          for (const wait of [0, 1000, 1500, 2250, 3375]) {
            const fiber = yield* Effect.fork(bearer.fetch({ renewRequired: true, reportError: true }))
            yield* TestClock.adjust(wait)
            const error = yield* Effect.flip(Fiber.join(fiber))
            reasons.push(
              error._tag === "RenewalError" ? `${error.reason}: ${error.detail ?? ""}` : error._tag
            )
          }
          expect(reasons).toEqual([
            "SourceDefect: ",
            "InvalidToken: the token value is empty",
            "InvalidToken: the token is already expired",
            "InvalidToken: the expiration is not a valid time",
            "InvalidToken: the expiration is outside the range of dates (beyond year 275760)"
          ])
          expect(yield* bearer.current).toEqual(Option.none())
          const fiber = yield* Effect.fork(bearer.fetch())
          yield* TestClock.adjust(5062.5)
          expect(value(yield* Fiber.join(fiber))).toBe("good")
          expect(yield* source.calls).toBe(6)
        })
    )
  })

  describe("requestRenewal, invalidate, current, changes", () => {
    it.scoped("invalidate acts only on the cached token, once", () =>
      Effect.gen(function* () {
        const { bearer, source } = yield* setup([
          t("t1", { expiresIn: "1 hour" }),
          t("t2", { expiresIn: "1 hour", delay: "10 millis" })
        ])
        const t1 = yield* bearer.fetch()
        expect(yield* bearer.invalidate(Token.make("other"))).toBe(false)
        expect(yield* bearer.invalidate(t1)).toBe(true)
        expect(yield* bearer.invalidate(t1)).toBe(false)
        expect(yield* bearer.isRenewalRequired).toBe(true)
        expect(yield* bearer.current).toEqual(Option.none())
        yield* TestClock.adjust("10 millis")
        expect(Option.map(yield* bearer.current, value)).toEqual(Option.some("t2"))
        expect(yield* bearer.isRenewalRequired).toBe(false)
        expect(yield* bearer.invalidate(t1)).toBe(false)
        expect(yield* source.calls).toBe(2)
      })
    )

    it.scoped("requestRenewal without invalidation keeps serving the cached token", () =>
      Effect.gen(function* () {
        const { bearer, source } = yield* setup([
          t("t1", { expiresIn: "1 hour" }),
          t("t2", { expiresIn: "1 hour", delay: "10 millis" })
        ])
        yield* bearer.fetch()
        yield* bearer.requestRenewal()
        expect(yield* bearer.isRenewalRequired).toBe(true)
        expect(value(yield* bearer.fetch())).toBe("t1")
        yield* TestClock.adjust("10 millis")
        expect(value(yield* bearer.fetch())).toBe("t2")
        expect(yield* source.calls).toBe(2)
      })
    )

    it.scoped("changes streams each new token", () =>
      Effect.gen(function* () {
        const { bearer } = yield* setup([
          t("t1", { expiresIn: "1 hour" }),
          t("t2", { expiresIn: "1 hour" }),
          t("t3", { expiresIn: "1 hour" })
        ])
        yield* bearer.fetch()
        const collected = yield* Effect.fork(Stream.runCollect(Stream.take(bearer.changes, 3)))
        yield* settle
        yield* TestClock.adjust(0.9 * HOUR)
        yield* TestClock.adjust(0.9 * HOUR)
        expect(Chunk.toArray(yield* Fiber.join(collected)).map(value)).toEqual(["t1", "t2", "t3"])
      })
    )
  })

  describe("one storm guard for every trigger", () => {
    const fresh = (n: number) => Array.from({ length: n }, (_, i) => t(`t${i}`, { expiresIn: "1 hour" }))

    it.scoped("requestRenewal in a loop: a burst of three, then one attempt per initialRetryTimeout", () =>
      Effect.gen(function* () {
        const { bearer, source } = yield* setup(fresh(40))
        yield* bearer.fetch()
        for (let i = 0; i < 200; i++) {
          yield* bearer.requestRenewal()
          yield* TestClock.adjust(50)
        }
        // The first fetch and two requests spend the burst; then one credit per second.
        expect(yield* source.callTimes).toEqual([
          0, 0, 50, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 10_000
        ])
      })
    )

    it.scoped("a renewRequired loop: held to the same pace", () =>
      Effect.gen(function* () {
        const { bearer, source } = yield* setup(fresh(40))
        const worker = yield* Effect.fork(Effect.forever(bearer.fetch({ renewRequired: true })))
        for (let i = 0; i < 200; i++) yield* TestClock.adjust(50)
        yield* Fiber.interrupt(worker)
        expect(yield* source.callTimes).toEqual([
          0, 0, 0, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 10_000
        ])
      })
    )

    it.scoped("synchronous renewals in a loop: held to the same pace", () =>
      Effect.gen(function* () {
        const { bearer, source } = yield* setup(fresh(40))
        const worker = yield* Effect.fork(
          Effect.forever(bearer.fetch({ synchronous: true, renewRequired: true }))
        )
        for (let i = 0; i < 200; i++) yield* TestClock.adjust(50)
        yield* Fiber.interrupt(worker)
        expect(yield* source.callTimes).toEqual([
          0, 0, 0, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 10_000
        ])
      })
    )

    it.scoped("a 401 on every request, 20 workers: freshly renewed tokens rejected back the pace off", () =>
      Effect.gen(function* () {
        const { bearer, source } = yield* setup(fresh(40))
        const request = Effect.gen(function* () {
          const receiver = yield* bearer.receiver
          while (true) {
            yield* receiver.fetch
            if (!(yield* receiver.canRetry("401"))) return
          }
        })
        const workers = yield* Effect.forEach(Array.from({ length: 20 }), () =>
          Effect.fork(Effect.forever(request))
        )
        for (let i = 0; i < 200; i++) yield* TestClock.adjust(50)
        yield* Fiber.interruptAll(workers)
        // Each token is rejected as soon as it arrives: the pace grows 1.5 s, 2.25 s, 3.375 s, 5.0625 s.
        expect(yield* source.callTimes).toEqual([0, 0, 500, 2750, 6125])
      })
    )

    it.scoped("the first 401 on a token in use renews at once, even after a burst of requests", () =>
      Effect.gen(function* () {
        const { bearer, source } = yield* setup(fresh(10))
        yield* bearer.fetch()
        yield* bearer.requestRenewal()
        yield* settle
        yield* bearer.requestRenewal()
        yield* settle
        expect(yield* source.callTimes).toEqual([0, 0, 0])
        yield* TestClock.adjust("10 seconds")
        const receiver = yield* bearer.receiver
        yield* receiver.fetch
        expect(yield* receiver.canRetry("401")).toBe(true)
        const replay = yield* receiver.fetch
        expect(value(replay)).toBe("t3")
        expect(yield* source.callTimes).toEqual([0, 0, 0, 10_000])
      })
    )

    it.scoped("a synchronous renewRequestTimeout of 0 is refused, and backs off nobody", () =>
      Effect.gen(function* () {
        const { bearer, source } = yield* setup(fresh(3))
        yield* bearer.fetch()
        const error = yield* Effect.flip(
          bearer.fetch({ synchronous: true, renewRequired: true, renewRequestTimeout: 0 })
        )
        expect(error._tag === "RenewalError" && error.reason).toBe("InvalidOptions")
        expect(error.message).toContain("renewRequestTimeout")
        const renewed = yield* bearer.fetch({ synchronous: true, renewRequired: true })
        expect(value(renewed)).toBe("t1")
        expect(yield* source.callTimes).toEqual([0, 0])
      })
    )
  })

  describe("the same token again", () => {
    it.scoped("a source that returns the same token does not cause a refresh storm", () =>
      Effect.gen(function* () {
        // A token that expires at 100 s, returned again and again. Each repeat counts like a failure: the next
        // attempt waits at least the backoff for that many repeats (1 s, 1.5 s, ...), not 90 % of a remainder
        // that shrinks to nothing.
        const { bearer, source } = yield* setup([t("same", { expiresAt: 100_000 })], {
          expiryMargin: 0,
          initialRetryTimeout: "100 millis"
        })
        yield* bearer.fetch()
        yield* TestClock.adjust("100 seconds")
        // 90 % rule alone: 90, 99, 99.9, 99.99 s, ... every 100 ms from there. With the rule: 90 s; 99 s (9 s
        // beats the 100 ms backoff); then max(0.9 s, 150 ms) = 99.9 s; then max(90 ms, 225 ms) = 100.125 s.
        expect(yield* source.callTimes).toEqual([0, 90_000, 99_000, 99_900])
        yield* TestClock.adjust("125 millis")
        expect(yield* source.callTimes).toEqual([0, 90_000, 99_000, 99_900, 100_125])
      })
    )
  })

  describe("shutdown", () => {
    it.effect("closing the scope interrupts the attempt, releases waiters and stops for good", () =>
      Effect.gen(function* () {
        const scope = yield* Scope.make()
        const { bearer, source } = yield* setup([TestTokenSource.hang]).pipe(Scope.extend(scope))
        const waiter = yield* Effect.fork(bearer.fetch())
        yield* settle
        expect(yield* source.inFlight).toBe(1)
        yield* Scope.close(scope, Exit.void)
        expect(yield* source.inFlight).toBe(0)
        expect(yield* Effect.flip(Fiber.join(waiter))).toBeInstanceOf(Errors.StoppedError)
        const after = yield* Effect.flip(bearer.fetch())
        expect(after.message).toBe("Renewal is stopped.")
        yield* bearer.requestRenewal({ invalidate: true })
        expect(yield* Effect.flip(bearer.fetch({ synchronous: true }))).toBeInstanceOf(Errors.StoppedError)
        yield* TestClock.adjust("1 day")
        expect(yield* source.calls).toBe(1)
      })
    )

    it.effect("closing during a backoff sleep leaves no timer behind", () =>
      Effect.gen(function* () {
        const scope = yield* Scope.make()
        const { bearer, source } = yield* setup([TestTokenSource.fail()]).pipe(Scope.extend(scope))
        const waiter = yield* Effect.fork(bearer.fetch({ timeout: "1 minute" }))
        yield* TestClock.adjust("500 millis")
        yield* Scope.close(scope, Exit.void)
        expect(yield* Effect.flip(Fiber.join(waiter))).toBeInstanceOf(Errors.StoppedError)
        yield* TestClock.adjust("1 hour")
        expect(yield* source.calls).toBe(1)
      })
    )

    it.scoped("a waiter that is interrupted disturbs no one else", () =>
      Effect.gen(function* () {
        const { bearer, source } = yield* setup([t("t1", { expiresIn: "1 hour", delay: "1 second" })])
        const leaving = yield* Effect.fork(bearer.fetch())
        const staying = yield* Effect.fork(bearer.fetch())
        yield* settle
        yield* Fiber.interrupt(leaving)
        yield* TestClock.adjust("1 second")
        expect(value(yield* Fiber.join(staying))).toBe("t1")
        expect(yield* source.calls).toBe(1)
      })
    )

    it.live("closing the scope leaves no timer to keep the process alive", () =>
      Effect.gen(function* () {
        const timers = () => process.getActiveResourcesInfo().filter((name) => name === "Timeout").length
        const before = timers()
        const scope = yield* Scope.make()
        const { bearer } = yield* setup([t("t1", { expiresIn: "1 hour" })]).pipe(Scope.extend(scope))
        yield* bearer.fetch()
        yield* Effect.yieldNow()
        expect(timers()).toBeGreaterThan(before)
        yield* Scope.close(scope, Exit.void)
        expect(timers()).toBe(before)
      })
    )

    it.effect(
      "a layer built, closed and built again starts afresh: the second build calls the source again",
      () =>
        Effect.gen(function* () {
          // One source for both builds, so that its calls are counted across them.
          const { source, test } = yield* TestTokenSource.make([t("t", { expiresAt: HOUR })])
          const layer = RenewableBearer.layer({ jitter: 0 }).pipe(
            Layer.provide(Layer.succeed(TokenSource.TokenSource, source))
          )
          const once = Effect.flatMap(RenewableBearer.RenewableBearer, (bearer) => bearer.fetch())
          const first = yield* Effect.scoped(Effect.provide(once, layer))
          expect(yield* test.calls).toBe(1)
          const second = yield* Effect.scoped(Effect.provide(once, layer))
          expect(Token.isToken(first) && Token.isToken(second)).toBe(true)
          // The token of the first build was still valid for an hour: the second build did not keep it.
          expect(yield* test.callTimes).toEqual([0, 0])
        })
    )
  })

  describe("layerConfig", () => {
    const config = {
      refreshRequestTimeout: Config.duration("TOKEN_REQUEST_TIMEOUT"),
      lifetimeSafeFraction: Config.number("TOKEN_SAFE_FRACTION"),
      jitter: Config.succeed(0)
    }
    const build = (env: Record<string, string>) =>
      Layer.build(
        RenewableBearer.layerConfig(config).pipe(
          Layer.provideMerge(TestTokenSource.layer([TestTokenSource.hang, t("t1", { expiresIn: "1 hour" })]))
        )
      ).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))))

    it.scoped("reads its options from Config", () =>
      Effect.gen(function* () {
        const context = yield* build({ TOKEN_REQUEST_TIMEOUT: "2 seconds", TOKEN_SAFE_FRACTION: "0.5" })
        const bearer = Context.get(context, RenewableBearer.RenewableBearer)
        const source = Context.get(context, TestTokenSource.TestTokenSource)
        const fiber = yield* Effect.fork(bearer.fetch())
        // The hanging first attempt is abandoned at 2 s, the retry comes 1 s later.
        yield* TestClock.adjust("3 seconds")
        yield* Fiber.join(fiber)
        yield* TestClock.adjust(0.5 * HOUR)
        expect(yield* source.callTimes).toEqual([0, 3000, 3000 + 0.5 * HOUR])
      })
    )

    it.effect("fails with InvalidOptionsError or ConfigError for bad settings", () =>
      Effect.gen(function* () {
        const invalid = yield* Effect.flip(
          Effect.scoped(build({ TOKEN_REQUEST_TIMEOUT: "2 seconds", TOKEN_SAFE_FRACTION: "7" }))
        )
        expect(invalid._tag).toBe("InvalidOptionsError")
        const missing = yield* Effect.flip(Effect.scoped(build({ TOKEN_SAFE_FRACTION: "0.5" })))
        expect(missing._tag).not.toBe("InvalidOptionsError")
        expect(String(missing)).toContain("TOKEN_REQUEST_TIMEOUT")
      })
    )
  })

  describe("options", () => {
    const invalid: ReadonlyArray<[RenewableBearer.Options, string]> = [
      [{ lifetimeSafeFraction: 0 }, "lifetimeSafeFraction"],
      [{ lifetimeSafeFraction: 1.5 }, "lifetimeSafeFraction"],
      [{ lifetimeSafeFraction: NaN }, "lifetimeSafeFraction"],
      [{ initialRetryTimeout: -1 }, "initialRetryTimeout"],
      [{ refreshRequestTimeout: NaN }, "refreshRequestTimeout"],
      [{ maxRetryTimeout: "nonsense" as never }, "maxRetryTimeout"],
      [{ maxRetryTimeout: "1 millis" }, "maxRetryTimeout"],
      [{ maxRetries: -1 }, "maxRetries"],
      [{ maxRetries: 1.5 }, "maxRetries"],
      [{ retryTimeoutExponent: 0.5 }, "retryTimeoutExponent"],
      [{ jitter: 1 }, "jitter"],
      [{ expiryMargin: -10 }, "expiryMargin"],
      // The retry budget is bounded, and a wrong type is refused, never read as false or the default.
      [{ maxRetries: 101 }, "maxRetries"],
      [{ maxRetries: Number.MAX_SAFE_INTEGER }, "maxRetries"],
      [{ maxRetries: "3" as never }, "maxRetries"],
      [{ jitter: "0.1" as never }, "jitter"],
      [{ initialRetryTimeout: true as never }, "initialRetryTimeout"],
      [{ refreshRequestTimeout: null as never }, "refreshRequestTimeout"],
      [{ eager: "yes" as never }, "eager"],
      [{ eager: 1 as never }, "eager"],
      [{ name: 5 as never }, "name"],
      [{ name: "" }, "name"],
      [{ storeKey: {} as never }, "storeKey"],
      ["fast" as never, "options"]
    ]
    for (const [options, option] of invalid) {
      it.effect(`rejects ${JSON.stringify(options)} when the layer is built`, () =>
        Effect.gen(function* () {
          const exit = yield* Effect.exit(
            Layer.build(
              RenewableBearer.layer(options).pipe(Layer.provide(TokenSource.layerToken(Token.make("x"))))
            ).pipe(Effect.scoped)
          )
          expect(Exit.isFailure(exit)).toBe(true)
          const error = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
          expect(Option.map(error, (e) => (e._tag === "InvalidOptionsError" ? e.option : e._tag))).toEqual(
            Option.some(option)
          )
          expect(
            Option.map(error, (e) => e.message.startsWith(`Invalid RenewableBearer option "${option}"`))
          ).toEqual(Option.some(true))
        })
      )
    }
  })
})
