import { describe, expect, it } from "@effect/vitest"
import { Clock, Duration, Effect, Fiber, HashMap, Logger, LogLevel, TestClock } from "effect"
import { FetchOptions, TestTokenSource } from "effect-renewable-bearer"
import { setup } from "./utils/bearer.js"

describe("FetchOptions", () => {
  it("keeps the original string keys", () => {
    expect(FetchOptions.OPTION_RENEW_REQUIRED).toBe("token_renew_required")
    expect(FetchOptions.OPTION_RENEW_SYNCHRONOUS).toBe("token_renew_synchronous")
    expect(FetchOptions.OPTION_REPORT_ERROR).toBe("token_renew_report_error")
    expect(FetchOptions.OPTION_RENEW_REQUEST_TIMEOUT).toBe("token_renew_request_timeout")
    expect(FetchOptions.OPTION_MAX_RETRIES).toBe("max_fetch_token_retries")
    expect(Duration.toMillis(FetchOptions.VeryLongTimeout)).toBe(10 * 365 * 24 * 3_600_000)
  })

  it.effect("parses metadata: a non-empty value turns a flag on", () =>
    Effect.gen(function* () {
      const options = yield* FetchOptions.fromMetadata({
        token_renew_required: "1",
        token_renew_synchronous: "yes",
        token_renew_report_error: "",
        token_renew_request_timeout: "2.5",
        max_fetch_token_retries: "4",
        unrelated: "x"
      })
      expect(options).toEqual({
        renewRequired: true,
        synchronous: true,
        reportError: false,
        renewRequestTimeout: Duration.seconds(2.5),
        maxRetries: 4
      })
      expect(yield* FetchOptions.fromMetadata({})).toEqual({})
    })
  )

  it.effect("logs a malformed number as a warning and ignores it", () =>
    Effect.gen(function* () {
      const lines: Array<string> = []
      const logger = Logger.make(({ logLevel, message }) => {
        lines.push(`${logLevel.label} ${String(message)}`)
      })
      const options = yield* FetchOptions.fromMetadata({
        token_renew_request_timeout: "soon",
        max_fetch_token_retries: "2.5"
      }).pipe(
        Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
        Logger.withMinimumLogLevel(LogLevel.All)
      )
      expect(options).toEqual({})
      expect(lines).toEqual([
        "WARN Ignoring malformed fetch option token_renew_request_timeout",
        "WARN Ignoring malformed fetch option max_fetch_token_retries"
      ])
    })
  )

  const parseLogged = (metadata: Readonly<Record<string, unknown>>) =>
    Effect.gen(function* () {
      const lines: Array<string> = []
      const logger = Logger.make(({ annotations, logLevel, message }) => {
        const value = HashMap.get(annotations, "value")
        lines.push(
          `${logLevel.label} ${String(message)}${value._tag === "Some" ? ` ${String(value.value)}` : ""}`
        )
      })
      const options = yield* FetchOptions.fromMetadata(metadata as Record<string, string>).pipe(
        Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
        Logger.withMinimumLogLevel(LogLevel.All)
      )
      return { options, lines }
    })

  it.effect(
    "takes plain decimal numbers only: hexadecimal, binary, exponent, sign or whitespace are ignored",
    () =>
      Effect.gen(function* () {
        for (const raw of [
          "0x10",
          "0b11",
          "0o7",
          "1e3",
          " 5",
          "5 ",
          "+5",
          "-1",
          ".",
          "1.2.3",
          "Infinity",
          "NaN",
          "1_000"
        ]) {
          const { lines, options } = yield* parseLogged({
            token_renew_request_timeout: raw,
            max_fetch_token_retries: raw
          })
          expect(options, raw).toEqual({})
          expect(lines, raw).toEqual([
            `WARN Ignoring malformed fetch option token_renew_request_timeout ${JSON.stringify(raw)}`,
            `WARN Ignoring malformed fetch option max_fetch_token_retries ${JSON.stringify(raw)}`
          ])
        }
        const { options } = yield* parseLogged({
          token_renew_request_timeout: "0.25",
          max_fetch_token_retries: "007"
        })
        expect(options).toEqual({ renewRequestTimeout: Duration.millis(250), maxRetries: 7 })
      })
  )

  it.effect("a value that is not a string is ignored with a warning, never a defect", () =>
    Effect.gen(function* () {
      const { lines, options } = yield* parseLogged({
        token_renew_request_timeout: 5,
        max_fetch_token_retries: { valueOf: () => 3 },
        token_renew_required: true,
        token_renew_synchronous: null,
        token_renew_report_error: ["x"],
        token_renew_unrelated: Symbol("x")
      })
      expect(options).toEqual({})
      expect(lines).toEqual([
        "WARN Ignoring malformed fetch option token_renew_request_timeout (not a string: number)",
        "WARN Ignoring malformed fetch option max_fetch_token_retries (not a string: object)",
        "WARN Ignoring malformed fetch option token_renew_required (not a string: boolean)",
        "WARN Ignoring malformed fetch option token_renew_synchronous (not a string: null)",
        "WARN Ignoring malformed fetch option token_renew_report_error (not a string: object)"
      ])
    })
  )

  it.effect(
    `the retry budget is bounded by MAX_RETRIES_LIMIT (${FetchOptions.MAX_RETRIES_LIMIT}); a larger one is refused`,
    () =>
      Effect.gen(function* () {
        expect(FetchOptions.MAX_RETRIES_LIMIT).toBe(100)
        expect((yield* parseLogged({ max_fetch_token_retries: "100" })).options).toEqual({ maxRetries: 100 })
        for (const raw of ["101", "9007199254740991", "1000000000000000", "99999999999999999999"]) {
          const { lines, options } = yield* parseLogged({ max_fetch_token_retries: raw })
          expect(options, raw).toEqual({})
          expect(lines, raw).toEqual([
            `WARN Ignoring malformed fetch option max_fetch_token_retries ${JSON.stringify(raw)}`
          ])
        }
      })
  )

  it.effect("a huge malformed value is shown cut to 64 characters in the warning", () =>
    Effect.gen(function* () {
      const { lines } = yield* parseLogged({ max_fetch_token_retries: "9".repeat(1_000_000) + "x" })
      expect(lines).toEqual([
        `WARN Ignoring malformed fetch option max_fetch_token_retries ${JSON.stringify("9".repeat(64))}… (1000001 characters)`
      ])
    })
  )

  it.scoped(
    "a retry budget of 10^15 from metadata, an API answering 401 to every request: about one source call per initialRetryTimeout over 10 simulated seconds",
    () =>
      Effect.gen(function* () {
        const { bearer, source } = yield* setup(
          Array.from({ length: 200 }, (_, i) => TestTokenSource.token(`t${i + 1}`, { expiresIn: "1 hour" }))
        )
        const unauthorized = { status: 401 }
        /** One request: a token, the API (401), then retry for as long as the receiver allows. */
        const request = Effect.gen(function* () {
          const options = yield* FetchOptions.fromMetadata({ max_fetch_token_retries: String(10 ** 15) })
          const receiver = yield* bearer.receiver
          let apiCalls = 0
          // Bounded here, so that a budget taken at its word ends the test instead of hanging it.
          while (apiCalls < 10_000) {
            yield* receiver.fetchWith(options)
            apiCalls += 1
            if (!(yield* receiver.canRetry(unauthorized, options))) break
          }
          return apiCalls
        })
        const fiber = yield* Effect.fork(request)
        for (let i = 0; i < 100; i++) yield* TestClock.adjust("100 millis")
        const apiCalls = yield* Fiber.join(fiber)
        const calls = yield* source.calls
        // The budget is refused as malformed: the bearer's own (2 attempts) applies.
        expect([apiCalls, calls]).toEqual([2, 2])
        expect(calls).toBeLessThanOrEqual(1 + 10_000 / 1_000)
      })
  )

  it.scoped(
    "a typed maxRetries outside [0, MAX_RETRIES_LIMIT] is malformed: canRetry keeps the bearer's budget",
    () =>
      Effect.gen(function* () {
        const { bearer } = yield* setup([TestTokenSource.token("t1", { expiresIn: "1 hour" })])
        const unauthorized = { status: 401 }
        for (const maxRetries of [10 ** 15, Number.MAX_SAFE_INTEGER, 101, -1, 2.5, NaN, "50" as never]) {
          const receiver = yield* bearer.receiver
          yield* receiver.fetch
          yield* receiver.fetch
          // Two attempts counted: the bearer's budget (2) is spent, whatever the malformed option says.
          expect(
            yield* receiver.canRetry(unauthorized, { maxRetries, synchronous: true }),
            String(maxRetries)
          ).toBe(false)
        }
        const receiver = yield* bearer.receiver
        yield* receiver.fetch
        yield* receiver.fetch
        expect(yield* receiver.canRetry(unauthorized, { maxRetries: 100, synchronous: true })).toBe(true)
      })
  )

  it.scoped(
    "20 workers sending requests with a retry budget of 10^15 from metadata to an API answering 401 to every request: at most one source call per initialRetryTimeout, backing off while the renewed tokens are refused, over 10 simulated seconds",
    () =>
      Effect.gen(function* () {
        const { bearer, source } = yield* setup(
          Array.from({ length: 20_000 }, (_, i) =>
            TestTokenSource.token(`t${i + 1}`, { expiresIn: "1 hour" })
          )
        )
        const unauthorized = { status: 401 }
        let requests = 0
        const request = Effect.gen(function* () {
          const options = yield* FetchOptions.fromMetadata({ max_fetch_token_retries: String(10 ** 15) })
          const receiver = yield* bearer.receiver
          requests += 1
          do yield* receiver.fetchWith(options)
          while (yield* receiver.canRetry(unauthorized, options))
        })
        // Each worker sends one request after another for 10 simulated seconds (bounded, so that a bearer
        // without a guard ends the test with a count instead of hanging it).
        const worker = Effect.gen(function* () {
          while ((yield* Clock.currentTimeMillis) < 10_000 && requests < 2_000) yield* request
        })
        const workers = yield* Effect.forEach(Array.from({ length: 20 }), () => Effect.fork(worker))
        for (let i = 0; i < 100; i++) yield* TestClock.adjust("100 millis")
        yield* Effect.forEach(workers, Fiber.interrupt)
        // The storm guard (a burst of 3 credits, one more per pace): the first token at 0 spends a credit, the
        // 401 on it renews at once with the second. Each renewed token is refused within a pace of its arrival,
        // so the pace backs off like failures (1.5 s, 2.25 s, 3.375 s, 5.06 s): the third credit comes at
        // 500 ms, the next ones at 2,750 and 6,125 ms, and the one after at 11,187.5 ms, past the run.
        expect(yield* source.callTimes).toEqual([0, 0, 500, 2_750, 6_125])
        // Each request spends two tokens (the first refused, the replay with the next), the 20 workers in step
        // with one of them a token ahead: the five tokens end 20 + 1 + 20 + 1 requests, so 20 + 42 started.
        expect(requests).toBe(62)
      })
  )
})
