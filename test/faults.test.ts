/**
 * The fault matrix: one deterministic `TestClock` test per fault, each asserting exact instants,
 * exact source calls and exact errors, and ending with the same invariants: the loop still runs (or has
 * stopped cleanly after close), no expired token was handed out, no waiter is left hanging, never more than
 * one source call in flight, and a bad token is rejected with a `RenewalError` instead of being cached.
 */
import { describe, expect, it } from "@effect/vitest"
import {
  Clock,
  Context,
  Effect,
  Exit,
  Fiber,
  Layer,
  Logger,
  LogLevel,
  Option,
  Ref,
  Scope,
  TestClock
} from "effect"
import { type FetchOptions, RenewableBearer, TestTokenSource } from "effect-renewable-bearer"
import { settle, setup } from "./utils/bearer.js"
import { defaultBackoff, expectHealthy, expectUsable, fetchUsable, reasonOf, value } from "./utils/faults.js"

const HOUR = 3_600_000
const t = TestTokenSource.token

describe("fault matrix: the token source", () => {
  it.scoped("fails once: reportError sees the error, everyone else gets the token after 1 s", () =>
    Effect.gen(function* () {
      const { bearer, source } = yield* setup([
        TestTokenSource.fail("boom"),
        t("t1", { expiresIn: "1 hour" })
      ])
      const reporting = yield* Effect.fork(fetchUsable(bearer, { reportError: true }))
      const waiting = yield* Effect.fork(fetchUsable(bearer))
      yield* settle
      const error = yield* Effect.flip(Fiber.join(reporting))
      expect(reasonOf(error)).toBe("SourceError")
      expect(error.message).toContain("boom")
      expect(yield* bearer.current).toEqual(Option.none())
      yield* TestClock.adjust(999)
      expect(yield* Fiber.poll(waiting)).toEqual(Option.none())
      yield* TestClock.adjust(1)
      expect(value(yield* Fiber.join(waiting))).toBe("t1")
      expect(yield* source.callTimes).toEqual([0, 1000])
      // The loop goes on: the next refresh at 90 % of the hour.
      yield* TestClock.adjust(0.9 * HOUR)
      expect(yield* source.callTimes).toEqual([0, 1000, 1000 + 0.9 * HOUR])
      yield* expectHealthy(bearer, source)
    })
  )

  it.scoped("fails for longer than the token's lifetime: serves it until the margin, never after", () =>
    Effect.gen(function* () {
      const { bearer, source } = yield* setup([
        t("t1", { expiresIn: "100 seconds" }),
        TestTokenSource.fail("down")
      ])
      expect(value(yield* fetchUsable(bearer))).toBe("t1")
      // Refresh at 90 s, then backoffs of 1, 1.5, 2.25, 3.375 s. Usable until 100 s - min(10 s, 5 s) = 95 s.
      yield* TestClock.adjust(94_999)
      expect(yield* source.callTimes).toEqual([0, 90_000, 91_000, 92_500, 94_750])
      expect(value(yield* fetchUsable(bearer))).toBe("t1")
      yield* TestClock.adjust(1)
      expect(yield* bearer.current).toEqual(Option.none())
      expect(yield* bearer.isRenewalRequired).toBe(true)
      const impatient = yield* Effect.fork(fetchUsable(bearer, { timeout: "3 seconds" }))
      const patient = yield* Effect.fork(fetchUsable(bearer))
      yield* settle
      // The fetches do not cut the backoff short: the next attempt is still at 94.75 + 3.375 = 98.125 s.
      yield* TestClock.adjust(3000)
      const error = yield* Effect.flip(Fiber.join(impatient))
      expect(reasonOf(error)).toBe("Timeout")
      expect(error.message).toContain("down")
      expect(yield* source.callTimes).toEqual([0, 90_000, 91_000, 92_500, 94_750])
      yield* TestClock.adjust(2000) // 100 s: the token has expired; the source recovers
      expect(yield* source.callTimes).toEqual([0, 90_000, 91_000, 92_500, 94_750, 98_125])
      expect(yield* bearer.current).toEqual(Option.none())
      yield* source.push(t("t2", { expiresIn: "1 hour" }))
      yield* TestClock.adjust(3187.5) // 98.125 + 5.0625 s
      expect(value(yield* Fiber.join(patient))).toBe("t2")
      expect(yield* source.callTimes).toEqual([0, 90_000, 91_000, 92_500, 94_750, 98_125, 103_187.5])
      yield* TestClock.adjust(0.9 * HOUR)
      expect((yield* source.callTimes).at(-1)).toBe(103_187.5 + 0.9 * HOUR)
      yield* expectHealthy(bearer, source)
    })
  )

  it.scoped("hangs: interrupted at refreshRequestTimeout, callers with a timeout leave earlier", () =>
    Effect.gen(function* () {
      const { bearer, source } = yield* setup([TestTokenSource.hang, t("t1", { expiresIn: "1 hour" })])
      const impatient = yield* Effect.fork(fetchUsable(bearer, { timeout: "2 seconds" }))
      const reporting = yield* Effect.fork(fetchUsable(bearer, { reportError: true }))
      const patient = yield* Effect.fork(fetchUsable(bearer))
      yield* TestClock.adjust(2000)
      const timeout = yield* Effect.flip(Fiber.join(impatient))
      expect(reasonOf(timeout)).toBe("Timeout")
      expect(timeout._tag === "RenewalError" && timeout.detail).toBe("no attempt has failed yet")
      expect(yield* source.inFlight).toBe(1)
      yield* TestClock.adjust(3000)
      expect(reasonOf(yield* Effect.flip(Fiber.join(reporting)))).toBe("SourceTimeout")
      expect(yield* source.inFlight).toBe(0)
      yield* TestClock.adjust(1000)
      expect(value(yield* Fiber.join(patient))).toBe("t1")
      expect(yield* source.callTimes).toEqual([0, 6000])
      yield* TestClock.adjust(0.9 * HOUR)
      expect(yield* source.callTimes).toEqual([0, 6000, 6000 + 0.9 * HOUR])
      expect(yield* source.maxInFlight).toBe(1)
      yield* expectHealthy(bearer, source)
    })
  )

  it.scoped("dies with a defect: SourceDefect carries the thrown value, the loop survives", () =>
    Effect.gen(function* () {
      const kaboom = new Error("kaboom")
      const { bearer, source } = yield* setup([TestTokenSource.die(kaboom), t("t1", { expiresIn: "1 hour" })])
      const reporting = yield* Effect.fork(fetchUsable(bearer, { reportError: true }))
      const patient = yield* Effect.fork(fetchUsable(bearer))
      yield* settle
      const error = yield* Effect.flip(Fiber.join(reporting))
      expect(reasonOf(error)).toBe("SourceDefect")
      // Effect copies an Error that dies inside a span (to add the span to its stack): same class and message.
      const cause = error._tag === "RenewalError" ? error.cause : undefined
      expect(cause).toBeInstanceOf(Error)
      expect((cause as Error).message).toBe("kaboom")
      expect(error.message).toBe("Token renewal failed: the token source died with a defect")
      yield* TestClock.adjust(1000)
      expect(value(yield* Fiber.join(patient))).toBe("t1")
      expect(yield* source.callTimes).toEqual([0, 1000])
      yield* TestClock.adjust(0.9 * HOUR)
      expect(yield* source.calls).toBe(3)
      yield* expectHealthy(bearer, source)
    })
  )

  it.scoped("returns an already expired token: rejected, the cached valid token is kept", () =>
    Effect.gen(function* () {
      const { bearer, source } = yield* setup([
        t("t1", { expiresIn: "100 seconds" }),
        t("stale", { expiresAt: 50_000 }),
        t("t2", { expiresIn: "1 hour" })
      ])
      yield* fetchUsable(bearer)
      yield* TestClock.adjust(60_000)
      const reporting = yield* Effect.fork(fetchUsable(bearer, { renewRequired: true, reportError: true }))
      yield* settle
      const error = yield* Effect.flip(Fiber.join(reporting))
      expect(reasonOf(error)).toBe("InvalidToken")
      expect(error._tag === "RenewalError" && error.detail).toBe("the token is already expired")
      // Not cached, and the still-valid token is not evicted.
      expect(Option.map(yield* bearer.current, value)).toEqual(Option.some("t1"))
      expect(value(yield* fetchUsable(bearer))).toBe("t1")
      yield* TestClock.adjust(1000)
      expect(Option.map(yield* bearer.current, value)).toEqual(Option.some("t2"))
      expect(yield* source.callTimes).toEqual([0, 60_000, 61_000])
      yield* expectHealthy(bearer, source)
    })
  )

  const unsendable = (index: number) =>
    `the token value has a character that cannot be sent in a header (a space, a control or a non-ASCII character) at index ${index}`
  // Tokens that would break every request (a header-injection attempt, a 431, a transport error): their
  // values are not valid header values, or too long for any server.
  const unsendableTokens: ReadonlyArray<[string, string, string]> = [
    ["a token with CR LF inside", "abc\r\nX-Injected: 1", unsendable(3)],
    ["a token with a NUL", "abc\u0000def", unsendable(3)],
    ["a whitespace-only token", "   ", unsendable(0)],
    ["a token with a leading space", " abc", unsendable(0)],
    ["a token with a trailing newline", "abc.def\n", unsendable(7)],
    ["a token with a tab inside", "abc\tdef", unsendable(3)],
    ["a token with a non-ASCII character", "abcé", unsendable(3)],
    [
      "a token of 16 KiB + 1 characters",
      "a".repeat(16 * 1024 + 1),
      "the token value is longer than 16384 characters (16385)"
    ],
    [
      "a token of 50 MB",
      "a".repeat(50 * 1024 * 1024),
      `the token value is longer than 16384 characters (${50 * 1024 * 1024})`
    ]
  ]

  it.scoped("accepts a token of exactly 16 KiB of b64token characters and visible ASCII punctuation", () =>
    Effect.gen(function* () {
      const long = "a".repeat(16 * 1024 - 14) + "-._~+/!#$%&*=="
      const { bearer } = yield* setup([t(long, { expiresIn: "1 hour" })])
      expect(value(yield* fetchUsable(bearer, { reportError: true }))).toBe(long)
    })
  )

  const badTokens: ReadonlyArray<[string, TestTokenSource.Step, string]> = [
    ["an expiration in the past", t("past", { expiresAt: -1 }), "the token is already expired"],
    ["a zero lifetime", t("zero", { expiresIn: 0 }), "the token is already expired"],
    ["a NaN expiration", t("nan", { expiresAt: NaN }), "the expiration is not a valid time"],
    [
      "an Invalid Date expiration",
      t("baddate", { expiresAt: new Date(NaN) }),
      "the expiration is not a valid time"
    ],
    [
      "an expiration beyond year 275760",
      t("far", { expiresAt: 8.64e15 + 1 }),
      "the expiration is outside the range of dates (beyond year 275760)"
    ],
    [
      "an expiration before year -271821",
      t("early", { expiresAt: -8.64e15 - 1 }),
      "the expiration is outside the range of dates (beyond year 275760)"
    ],
    ["an empty token string", t("", { expiresIn: "1 hour" }), "the token value is empty"],
    ...unsendableTokens.map(([name, token, detail]): [string, TestTokenSource.Step, string] => [
      name,
      t(token, { expiresIn: "1 hour" }),
      detail
    ])
  ]
  for (const [name, bad, detail] of badTokens) {
    it.scoped(`returns ${name}: InvalidToken, never cached, the next attempt after 1 s`, () =>
      Effect.gen(function* () {
        yield* TestClock.adjust(10_000) // start at a clock that is not the epoch
        const { bearer, source } = yield* setup([bad, t("good", { expiresIn: "1 hour" })])
        const reporting = yield* Effect.fork(fetchUsable(bearer, { reportError: true }))
        const patient = yield* Effect.fork(fetchUsable(bearer))
        yield* settle
        const error = yield* Effect.flip(Fiber.join(reporting))
        expect(reasonOf(error)).toBe("InvalidToken")
        expect(error._tag === "RenewalError" && error.detail).toBe(detail)
        expect(error.message).toBe(
          `Token renewal failed: the token source returned an unusable token: ${detail}`
        )
        expect(yield* bearer.current).toEqual(Option.none())
        expect(yield* bearer.isRenewalRequired).toBe(true)
        yield* TestClock.adjust(1000)
        expect(value(yield* Fiber.join(patient))).toBe("good")
        expect(yield* source.callTimes).toEqual([10_000, 11_000])
        yield* expectHealthy(bearer, source)
      })
    )
  }

  it.scoped("the same token on every call: no refresh storm, then backoff once it has expired", () =>
    Effect.gen(function* () {
      const { bearer, source } = yield* setup([t("same", { expiresAt: 100_000 })])
      yield* fetchUsable(bearer)
      yield* TestClock.adjust(99_949)
      // 90 s (90 %); 99 s (90 % of the 10 s left); then max(90 % of 1 s, backoff(2) = 1.5 s) = 100.5 s.
      expect(yield* source.callTimes).toEqual([0, 90_000, 99_000])
      expect(value(yield* fetchUsable(bearer))).toBe("same")
      // Received again at 99 s: usable until 100 s - min(10 s, 1 s × 5 %) = 99.95 s.
      yield* TestClock.adjust(1)
      expect(yield* bearer.current).toEqual(Option.none())
      yield* TestClock.adjust(550)
      // From 100 s on the same token is expired: each answer is an InvalidToken failure, on the backoff, and
      // a caller waits (here: until its timeout) instead of getting the expired token.
      expect(yield* source.callTimes).toEqual([0, 90_000, 99_000, 100_500])
      const waiting = yield* Effect.fork(fetchUsable(bearer, { timeout: "800 millis" }))
      yield* TestClock.adjust(800)
      expect(reasonOf(yield* Effect.flip(Fiber.join(waiting)))).toBe("Timeout")
      yield* TestClock.adjust(HOUR - 101_300)
      const times = yield* source.callTimes
      let expected = [0, 90_000, 99_000, 100_500]
      for (let n = 1; expected.at(-1)! + defaultBackoff(n) <= HOUR; n++) {
        expected = [...expected, expected.at(-1)! + defaultBackoff(n)]
      }
      // Fractional backoffs add up with rounding: compare to the microsecond.
      const micros = (ms: ReadonlyArray<number>) => ms.map((m) => Math.round(m * 1000))
      expect(micros(times)).toEqual(micros(expected))
      // 70 calls in an hour, 57 of them 60 s apart at the capped backoff: no storm.
      expect(times.length).toBe(70)
      yield* expectHealthy(bearer, source)
    })
  )

  it.scoped("the same token on every call, with a caller fetching every 100 ms: a handful of calls", () =>
    Effect.gen(function* () {
      const { bearer, source } = yield* setup([t("same", { expiresAt: 100_000 })])
      const outcomes = new Map<string, number>()
      for (let i = 0; i < 1100; i++) {
        const fiber = yield* Effect.fork(fetchUsable(bearer, { timeout: "50 millis" }))
        yield* TestClock.adjust(100)
        const exit = yield* Fiber.await(fiber)
        const key = Exit.isSuccess(exit) ? value(exit.value) : reasonOf(Effect.runSync(Effect.flip(exit)))
        outcomes.set(key, (outcomes.get(key) ?? 0) + 1)
      }
      // 0, 90 s and 99 s as scheduled; the fetch at 99.9 s is still served (usable until 99.95 s). The fetch
      // at 100 s misses and wakes the loop: the answer is expired (InvalidToken), and from then on the
      // attempts follow the failure backoff (1, 1.5, 2.25, 3.375 s) however often callers ask.
      expect(yield* source.callTimes).toEqual([
        0, 90_000, 99_000, 100_000, 101_000, 102_500, 104_750, 108_125
      ])
      // Served until 99.9 s, never after expiry: the callers from 100 s on time out.
      expect(Object.fromEntries(outcomes)).toEqual({ same: 1000, Timeout: 100 })
      yield* expectHealthy(bearer, source)
    })
  )

  it.scoped("slower than the request timeout: interrupted at 5 s, its late answer never arrives", () =>
    Effect.gen(function* () {
      const { bearer, source } = yield* setup([
        t("slow", { expiresIn: "1 hour", delay: "6 seconds" }),
        t("fast", { expiresIn: "1 hour", delay: "1 second" })
      ])
      const patient = yield* Effect.fork(fetchUsable(bearer))
      yield* TestClock.adjust(5000)
      expect(yield* source.inFlight).toBe(0)
      yield* TestClock.adjust(1000)
      expect(yield* source.callTimes).toEqual([0, 6000])
      yield* TestClock.adjust(1000)
      expect(value(yield* Fiber.join(patient))).toBe("fast")
      yield* TestClock.adjust(HOUR)
      expect(Option.map(yield* bearer.current, value)).not.toEqual(Option.some("slow"))
      expect(yield* source.maxInFlight).toBe(1)
      yield* expectHealthy(bearer, source)
    })
  )

  it.scoped("recovers after every fault in a row, each on its backoff", () =>
    Effect.gen(function* () {
      const faults: ReadonlyArray<[TestTokenSource.Step, string, number]> = [
        [TestTokenSource.fail(), "SourceError", 0],
        [TestTokenSource.hang, "SourceTimeout", 5000],
        [TestTokenSource.die("thrown"), "SourceDefect", 0],
        [t(""), "InvalidToken", 0],
        [t("past", { expiresAt: 1 }), "InvalidToken", 0],
        [t("zero", { expiresIn: 0 }), "InvalidToken", 0],
        [t("nan", { expiresAt: NaN }), "InvalidToken", 0],
        [t("far", { expiresAt: 9e15 }), "InvalidToken", 0],
        [t("slow", { expiresIn: "1 hour", delay: "7 seconds" }), "SourceTimeout", 5000]
      ]
      const { bearer, source } = yield* setup([
        ...faults.map(([step]) => step),
        t("good", { expiresIn: "1 hour" })
      ])
      const reasons: Array<string> = []
      const expectedTimes: Array<number> = []
      let at = 0
      const patient = yield* Effect.fork(fetchUsable(bearer))
      let reporting = yield* Effect.fork(fetchUsable(bearer, { reportError: true }))
      for (let i = 0; i < faults.length; i++) {
        expectedTimes.push(at)
        const [, , duration] = faults[i]
        yield* settle
        yield* TestClock.adjust(duration)
        reasons.push(reasonOf(yield* Effect.flip(Fiber.join(reporting))))
        expect(yield* bearer.current).toEqual(Option.none())
        // The next reporting caller waits for the attempt that ends the backoff.
        reporting = yield* Effect.fork(fetchUsable(bearer, { reportError: true }))
        yield* settle
        const backoff = defaultBackoff(i + 1)
        yield* TestClock.adjust(backoff)
        at += duration + backoff
      }
      expectedTimes.push(at)
      expect(value(yield* Fiber.join(reporting))).toBe("good")
      expect(value(yield* Fiber.join(patient))).toBe("good")
      expect(reasons).toEqual(faults.map(([, reason]) => reason))
      expect(yield* source.callTimes).toEqual(expectedTimes)
      // After the recovery the schedule is the normal one again.
      yield* TestClock.adjust(0.9 * HOUR)
      expect((yield* source.callTimes).at(-1)).toBe(at + 0.9 * HOUR)
      yield* expectHealthy(bearer, source)
    })
  )
})

describe("fault matrix: the callers", () => {
  it.scoped("interrupted while waiting, in every mode: the shared attempt goes on for the next caller", () =>
    Effect.gen(function* () {
      const { bearer, source } = yield* setup([t("t1", { expiresIn: "1 hour", delay: "1 second" })])
      const modes: ReadonlyArray<FetchOptions.FetchOptions> = [
        {},
        { reportError: true },
        { synchronous: true },
        { renewRequired: true, timeout: "1 minute" }
      ]
      const fibers = yield* Effect.forEach(modes, (options) => Effect.fork(bearer.fetch(options)))
      yield* settle
      expect(yield* source.inFlight).toBe(1)
      yield* Fiber.interruptAll(fibers)
      for (const fiber of fibers) expect(Exit.isInterrupted(yield* Fiber.await(fiber))).toBe(true)
      expect(yield* source.inFlight).toBe(1)
      yield* TestClock.adjust(1000)
      expect(Option.map(yield* bearer.current, value)).toEqual(Option.some("t1"))
      expect(value(yield* fetchUsable(bearer))).toBe("t1")
      expect(yield* source.callTimes).toEqual([0])
      yield* expectHealthy(bearer, source)
    })
  )

  it.scoped("a caller's timeout shorter than an attempt ends that caller's wait only", () =>
    Effect.gen(function* () {
      const { bearer, source } = yield* setup([t("t1", { expiresIn: "1 hour", delay: "3 seconds" })])
      const asyncCaller = yield* Effect.fork(fetchUsable(bearer, { timeout: "1 second" }))
      const syncCaller = yield* Effect.fork(fetchUsable(bearer, { synchronous: true, timeout: "1 second" }))
      const patient = yield* Effect.fork(fetchUsable(bearer))
      yield* TestClock.adjust(1000)
      expect(reasonOf(yield* Effect.flip(Fiber.join(asyncCaller)))).toBe("Timeout")
      expect(reasonOf(yield* Effect.flip(Fiber.join(syncCaller)))).toBe("Timeout")
      expect(yield* source.inFlight).toBe(1)
      yield* TestClock.adjust(2000)
      expect(value(yield* Fiber.join(patient))).toBe("t1")
      expect(yield* source.callTimes).toEqual([0])
      yield* expectHealthy(bearer, source)
    })
  )

  it.scoped(
    "a synchronous renewRequestTimeout shorter than the attempt: SourceTimeout, token kept, retried",
    () =>
      Effect.gen(function* () {
        const { bearer, source } = yield* setup([
          t("t1", { expiresIn: "1 hour" }),
          t("slow", { expiresIn: "1 hour", delay: "3 seconds" }),
          t("t3", { expiresIn: "1 hour" })
        ])
        yield* fetchUsable(bearer)
        const sync = yield* Effect.fork(
          fetchUsable(bearer, { synchronous: true, renewRequired: true, renewRequestTimeout: "2 seconds" })
        )
        yield* TestClock.adjust(2000)
        expect(reasonOf(yield* Effect.flip(Fiber.join(sync)))).toBe("SourceTimeout")
        expect(Option.map(yield* bearer.current, value)).toEqual(Option.some("t1"))
        yield* TestClock.adjust(1000)
        expect(Option.map(yield* bearer.current, value)).toEqual(Option.some("t3"))
        expect(yield* source.callTimes).toEqual([0, 0, 3000])
        yield* expectHealthy(bearer, source)
      })
  )

  it.scoped("3,000 concurrent callers against a source that fails once: two calls, nobody left waiting", () =>
    Effect.gen(function* () {
      const { bearer, source } = yield* setup([
        TestTokenSource.fail("once", { delay: "10 millis" }),
        t("t1", { expiresIn: "1 hour", delay: "10 millis" })
      ])
      const modes = [{}, { timeout: "10 seconds" }, { reportError: true }] as const
      const fibers = yield* Effect.forEach(
        Array.from({ length: 3000 }, (_, i) => modes[i % 3]),
        (options) => Effect.fork(Effect.either(fetchUsable(bearer, options)))
      )
      yield* TestClock.adjust(10)
      yield* TestClock.adjust(1010)
      const results = yield* Fiber.joinAll(fibers)
      const summary = results.map((r) => (r._tag === "Right" ? value(r.right) : reasonOf(r.left)))
      expect(summary).toEqual(Array.from({ length: 3000 }, (_, i) => (i % 3 === 2 ? "SourceError" : "t1")))
      expect(yield* source.callTimes).toEqual([0, 1010])
      expect(yield* source.maxInFlight).toBe(1)
      yield* expectHealthy(bearer, source)
    })
  )

  it.scoped("renewRequired and synchronous storms: one attempt per wave, the synchronous one wins", () =>
    Effect.gen(function* () {
      const { bearer, source } = yield* setup([
        t("t1", { expiresIn: "1 hour" }),
        t("t2", { expiresIn: "1 hour", delay: "100 millis" }),
        t("t3", { expiresIn: "1 hour", delay: "100 millis" })
      ])
      yield* fetchUsable(bearer)
      yield* TestClock.adjust(60_000)
      const asyncWave = yield* Effect.forEach(Array.from({ length: 1000 }), () =>
        Effect.fork(fetchUsable(bearer, { renewRequired: true }))
      )
      yield* settle
      expect(yield* source.callTimes).toEqual([0, 60_000])
      const syncWave = yield* Effect.forEach(Array.from({ length: 1000 }), () =>
        Effect.fork(fetchUsable(bearer, { synchronous: true, renewRequired: true }))
      )
      yield* settle
      // The first synchronous request abandoned the background attempt; the other 999 joined its own.
      expect(yield* source.callTimes).toEqual([0, 60_000, 60_000])
      yield* TestClock.adjust(100)
      const tokens = yield* Fiber.joinAll([...asyncWave, ...syncWave])
      expect(new Set(tokens.map(value))).toEqual(new Set(["t3"]))
      // A synchronous storm against a fresh token is answered from the cache.
      const hot = yield* Effect.forEach(Array.from({ length: 1000 }), () =>
        fetchUsable(bearer, { synchronous: true })
      )
      expect(new Set(hot.map(value))).toEqual(new Set(["t3"]))
      expect(yield* source.calls).toBe(3)
      expect(yield* source.maxInFlight).toBe(1)
      yield* TestClock.adjust(0.9 * HOUR)
      expect(yield* source.callTimes).toEqual([0, 60_000, 60_000, 60_100 + 0.9 * HOUR])
      yield* expectHealthy(bearer, source)
    })
  )

  it.scoped("retry after a 401 with a token that has already been replaced: no new renewal", () =>
    Effect.gen(function* () {
      const { bearer, source } = yield* setup([
        t("t1", { expiresIn: "1 hour" }),
        t("t2", { expiresIn: "1 hour", delay: "10 millis" }),
        t("t3", { expiresIn: "1 hour" })
      ])
      const slow = yield* bearer.receiver
      const quick = yield* bearer.receiver
      expect(value(yield* slow.fetch)).toBe("t1")
      expect(value(yield* quick.fetch)).toBe("t1")
      // t1 has been in use for a minute (a token rejected the instant it arrives would slow the storm guard).
      yield* TestClock.adjust("1 minute")
      // The quick request gets its 401 first: t1 is invalidated and renewed.
      expect(yield* quick.canRetry("401")).toBe(true)
      yield* TestClock.adjust(10)
      expect(value(yield* quick.fetch)).toBe("t2")
      // The slow request's 401 is for t1, already replaced: it may retry, and gets t2 without a renewal.
      expect(yield* slow.canRetry("401")).toBe(true)
      expect(yield* bearer.isRenewalRequired).toBe(false)
      expect(value(yield* slow.fetch)).toBe("t2")
      expect(yield* source.calls).toBe(2)
      // A second 401 ends the retries (maxRetries 2): no 401, renew, replay, 401 loop.
      expect(yield* slow.canRetry("401")).toBe(false)
      // 100 concurrent 401s for t2 cause one renewal.
      const receivers = yield* Effect.forEach(Array.from({ length: 100 }), () => bearer.receiver)
      yield* Effect.forEach(receivers, (r) => r.fetch)
      const retries = yield* Effect.forEach(receivers, (r) => r.canRetry("401"), { concurrency: "unbounded" })
      expect(retries.every((ok) => ok)).toBe(true)
      const replays = yield* Effect.forEach(receivers, (r) => Effect.flatMap(r.fetch, expectUsable), {
        concurrency: "unbounded"
      })
      expect(new Set(replays.map(value))).toEqual(new Set(["t3"]))
      expect(yield* source.calls).toBe(3)
      yield* expectHealthy(bearer, source)
    })
  )
})

describe("fault matrix: the storm guard and the timer", () => {
  const fresh = (n: number) => Array.from({ length: n }, (_, i) => t(`t${i}`, { expiresIn: "1 hour" }))

  it.scoped("an API that answers 401 to every request: a burst, then a pace that backs off", () =>
    Effect.gen(function* () {
      const { bearer, source } = yield* setup(fresh(40))
      yield* fetchUsable(bearer)
      yield* TestClock.adjust("1 minute")
      const request = Effect.gen(function* () {
        const receiver = yield* bearer.receiver
        while (true) {
          yield* Effect.flatMap(receiver.fetch, expectUsable)
          if (!(yield* receiver.canRetry("401"))) return
        }
      })
      const workers = yield* Effect.forEach(Array.from({ length: 20 }), () =>
        Effect.fork(Effect.forever(request))
      )
      for (let i = 0; i < 100; i++) yield* TestClock.adjust(100)
      yield* Fiber.interruptAll(workers)
      // The first 401 (t0, in use for a minute) renews at once; each token after it is rejected as it arrives,
      // and the pace grows 1.5 s, 2.25 s, 3.375 s, 5.0625 s from the burst of three on.
      expect(yield* source.callTimes).toEqual([0, 60_000, 60_000, 60_500, 62_750, 66_125])
      yield* expectHealthy(bearer, source)
    })
  )

  it.scoped("a token handed back unchanged again and again: the same-token backoff, never a storm", () =>
    Effect.gen(function* () {
      const { bearer, source } = yield* setup([t("same", { expiresAt: 10_000 })])
      yield* fetchUsable(bearer)
      yield* TestClock.adjust(9_999)
      // 9 s (90 %); the first repeat cut at its usable end (10 s less 5 % of the 1 s left): 9.95 s; then the
      // backoff for two repeats, 1.5 s, past the expiry: from there on, failures on the failure backoff.
      expect(yield* source.callTimes).toEqual([0, 9000, 9950])
      yield* TestClock.adjust(1)
      expect(yield* bearer.current).toEqual(Option.none())
      yield* TestClock.adjust(1450)
      expect(yield* source.callTimes).toEqual([0, 9000, 9950, 11_450])
      yield* expectHealthy(bearer, source)
    })
  )

  it.scoped("a late timer: the first fetch past the refresh point renews, the token never expires", () =>
    Effect.gen(function* () {
      const testClock = yield* Effect.clock
      // The bearer's timers never fire (a starved scheduler); its clock reads the test's time.
      const late: Clock.Clock = {
        ...testClock,
        unsafeCurrentTimeMillis: () => testClock.unsafeCurrentTimeMillis(),
        unsafeCurrentTimeNanos: () => testClock.unsafeCurrentTimeNanos(),
        currentTimeMillis: testClock.currentTimeMillis,
        currentTimeNanos: testClock.currentTimeNanos,
        sleep: () => Effect.never
      }
      const { bearer, source } = yield* setup(fresh(10)).pipe(Effect.withClock(late))
      yield* fetchUsable(bearer)
      for (let i = 0; i < 3; i++) {
        yield* TestClock.adjust(0.9 * HOUR)
        expect(value(yield* fetchUsable(bearer))).toBe(`t${i}`)
        yield* settle
        expect(value(yield* fetchUsable(bearer))).toBe(`t${i + 1}`)
      }
      expect(yield* source.callTimes).toEqual([0, 0.9 * HOUR, 1.8 * HOUR, 2.7 * HOUR])
      yield* expectHealthy(bearer, source)
    })
  )

  it.scoped("timed waiters of every mode end at their own deadlines, in order", () =>
    Effect.gen(function* () {
      const { bearer, source } = yield* setup([TestTokenSource.hang])
      const modes: ReadonlyArray<FetchOptions.FetchOptions> = [
        { timeout: 300 },
        { timeout: 100, reportError: true },
        { timeout: 200, synchronous: true },
        { timeout: 100 },
        { timeout: 400, renewRequired: true }
      ]
      const fibers = yield* Effect.forEach(modes, (options) =>
        Effect.fork(
          Effect.flatMap(Effect.flip(bearer.fetch(options)), (error) =>
            Effect.map(Clock.currentTimeMillis, (at) => `${reasonOf(error)}@${at}`)
          )
        )
      )
      yield* TestClock.adjust(400)
      expect(yield* Fiber.joinAll(fibers)).toEqual([
        "Timeout@300",
        "Timeout@100",
        "Timeout@200",
        "Timeout@100",
        "Timeout@400"
      ])
      expect(yield* source.calls).toBe(1)
      yield* expectHealthy(bearer, source)
    })
  )
})

describe("fault matrix: the lifecycle", () => {
  const closable = (steps: ReadonlyArray<TestTokenSource.Step>, options?: RenewableBearer.Options) =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const built = yield* setup(steps, options).pipe(Scope.extend(scope))
      return { ...built, scope }
    })

  const expectStopped = (bearer: RenewableBearer.RenewableBearer["Type"]) =>
    Effect.gen(function* () {
      expect(reasonOf(yield* Effect.flip(bearer.fetch()))).toBe("StoppedError")
      expect(reasonOf(yield* Effect.flip(bearer.fetch({ synchronous: true, renewRequired: true })))).toBe(
        "StoppedError"
      )
      expect(yield* bearer.current).toEqual(Option.none())
      yield* bearer.requestRenewal({ invalidate: true })
      const receiver = yield* bearer.receiver
      expect(reasonOf(yield* Effect.flip(receiver.fetch))).toBe("StoppedError")
    })

  it.effect("scope closed during an attempt: the attempt is interrupted, every waiter is stopped", () =>
    Effect.gen(function* () {
      const { bearer, source, scope } = yield* closable([
        t("t1", { expiresIn: "1 hour", delay: "10 seconds" })
      ])
      const modes: ReadonlyArray<FetchOptions.FetchOptions> = [
        {},
        { reportError: true },
        { synchronous: true },
        { timeout: "1 minute" }
      ]
      const waiters = yield* Effect.forEach(modes, (options) => Effect.fork(bearer.fetch(options)))
      yield* TestClock.adjust(1000)
      expect(yield* source.inFlight).toBe(1)
      yield* Scope.close(scope, Exit.void)
      expect(yield* source.inFlight).toBe(0)
      for (const waiter of waiters)
        expect(reasonOf(yield* Effect.flip(Fiber.join(waiter)))).toBe("StoppedError")
      yield* expectStopped(bearer)
      yield* TestClock.adjust("1 day")
      expect(yield* source.callTimes).toEqual([0])
    })
  )

  it.effect("scope closed during a backoff sleep: no further call, no timer left", () =>
    Effect.gen(function* () {
      const { bearer, source, scope } = yield* closable([TestTokenSource.fail()])
      const waiter = yield* Effect.fork(bearer.fetch({ timeout: "1 minute" }))
      yield* TestClock.adjust(500)
      yield* Scope.close(scope, Exit.void)
      expect(reasonOf(yield* Effect.flip(Fiber.join(waiter)))).toBe("StoppedError")
      yield* expectStopped(bearer)
      yield* TestClock.adjust("1 hour")
      expect(yield* source.callTimes).toEqual([0])
    })
  )

  it.effect("scope closed with a thousand waiters of every kind: all settled with StoppedError at once", () =>
    Effect.gen(function* () {
      const { bearer, source, scope } = yield* closable([
        t("t1", { expiresIn: "1 hour" }),
        TestTokenSource.fail("down")
      ])
      yield* bearer.fetch()
      yield* TestClock.adjust(0.9 * HOUR + 500) // in the backoff after the first failed refresh
      const modes: ReadonlyArray<FetchOptions.FetchOptions> = [
        { renewRequired: true },
        { renewRequired: true, reportError: true },
        { renewRequired: true, synchronous: true },
        { renewRequired: true, timeout: "1 hour" }
      ]
      const waiters = yield* Effect.forEach(
        Array.from({ length: 1000 }, (_, i) => modes[i % 4]),
        (options) => Effect.fork(bearer.fetch(options))
      )
      yield* settle
      for (const waiter of waiters) expect(yield* Fiber.poll(waiter)).toEqual(Option.none())
      yield* Scope.close(scope, Exit.void)
      const exits = yield* Effect.forEach(waiters, Fiber.await)
      expect(new Set(exits.map((exit) => (Exit.isFailure(exit) ? "failure" : "success")))).toEqual(
        new Set(["failure"])
      )
      const errors = yield* Effect.forEach(waiters, (w) => Effect.flip(Fiber.join(w)))
      expect(new Set(errors.map(reasonOf))).toEqual(new Set(["StoppedError"]))
      yield* TestClock.adjust("1 day")
      expect(yield* source.callTimes).toEqual([0, 0.9 * HOUR])
    })
  )

  it.effect("scope closed twice: the second close is a no-op, the bearer stops once", () =>
    Effect.gen(function* () {
      const logs = yield* Ref.make<ReadonlyArray<string>>([])
      const logger = Logger.make(({ message }) => {
        Effect.runSync(Ref.update(logs, (all) => [...all, String(message)]))
      })
      const { bearer, source, scope } = yield* closable([t("t1", { expiresIn: "1 hour" })]).pipe(
        Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
        Logger.withMinimumLogLevel(LogLevel.All)
      )
      yield* bearer.fetch()
      yield* Scope.close(scope, Exit.void)
      yield* Scope.close(scope, Exit.void)
      yield* Scope.close(scope, Exit.fail("again"))
      yield* expectStopped(bearer)
      const stopped = (yield* Ref.get(logs)).filter((line) => line.includes("RenewableBearer: stopped"))
      expect(stopped).toHaveLength(1)
      yield* TestClock.adjust("1 day")
      expect(yield* source.callTimes).toEqual([0])
    })
  )

  it.effect(
    "a layer built, closed and rebuilt: the new bearer starts empty, the old loop never calls again",
    () =>
      Effect.gen(function* () {
        // One source for both builds, so its counters see both bearers.
        const sourceScope = yield* Scope.make()
        const sourceContext = yield* Layer.build(
          TestTokenSource.layer([
            t("t1", { expiresIn: "1 hour" }),
            t("t2", { expiresIn: "1 hour" }),
            t("t3", { expiresIn: "1 hour" })
          ])
        ).pipe(Scope.extend(sourceScope))
        const source = Context.get(sourceContext, TestTokenSource.TestTokenSource)
        const layer = RenewableBearer.layer({ jitter: 0 }).pipe(
          Layer.provide(Layer.succeedContext(sourceContext))
        )

        const first = yield* Scope.make()
        const bearer1 = Context.get(
          yield* Layer.build(layer).pipe(Scope.extend(first)),
          RenewableBearer.RenewableBearer
        )
        expect(value(yield* fetchUsable(bearer1))).toBe("t1")
        yield* TestClock.adjust("10 minutes")
        yield* Scope.close(first, Exit.void)

        const second = yield* Scope.make()
        const bearer2 = Context.get(
          yield* Layer.build(layer).pipe(Scope.extend(second)),
          RenewableBearer.RenewableBearer
        )
        expect(yield* bearer2.current).toEqual(Option.none())
        expect(value(yield* fetchUsable(bearer2))).toBe("t2")
        expect(reasonOf(yield* Effect.flip(bearer1.fetch()))).toBe("StoppedError")
        // Only the second loop refreshes: at 10 min + 54 min, not at the first loop's 54 min.
        yield* TestClock.adjust(0.9 * HOUR)
        expect(yield* source.callTimes).toEqual([0, 600_000, 600_000 + 0.9 * HOUR])
        expect(value(yield* fetchUsable(bearer2))).toBe("t3")
        expect(yield* source.maxInFlight).toBe(1)
        yield* Scope.close(second, Exit.void)
        yield* TestClock.adjust("1 day")
        expect(yield* source.calls).toBe(3)
        yield* Scope.close(sourceScope, Exit.void)
      })
  )
})
