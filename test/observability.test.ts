/**
 * Observability: the metrics a scripted scenario leaves behind, read with `Metric.value` (each test bearer
 * has its own `name`, so tests never share counters), and the log lines, captured with a custom logger at
 * every level and searched for the token values.
 */
import { describe, expect, it } from "@effect/vitest"
import {
  Cause,
  Effect,
  Exit,
  Fiber,
  HashMap,
  List,
  Logger,
  LogLevel,
  Metric,
  MetricLabel,
  Option,
  Random,
  Ref,
  Scope,
  TestClock
} from "effect"
import { Metrics, TestTokenSource } from "effect-renewable-bearer"
import { inspect } from "node:util"
import { settle, setup } from "./utils/bearer.js"
import { reasonOf, value } from "./utils/faults.js"

const HOUR = 3_600_000
const t = TestTokenSource.token

const labelled = <Type, In, Out>(
  metric: Metric.Metric<Type, In, Out>,
  bearer: string,
  ...pairs: Array<string>
) => {
  const labels = [MetricLabel.make("bearer", bearer)]
  for (let i = 0; i < pairs.length; i += 2) labels.push(MetricLabel.make(pairs[i], pairs[i + 1]))
  return Metric.value(Metric.taggedWithLabels(metric, labels))
}

const attempts = (bearer: string, result: string, reason: string) =>
  Effect.map(labelled(Metrics.refreshAttempts, bearer, "result", result, "reason", reason), (s) => s.count)
const counter = (metric: Metric.Metric.Counter<number>, bearer: string, ...pairs: Array<string>) =>
  Effect.map(labelled(metric, bearer, ...pairs), (s) => s.count)
const gauge = (metric: Metric.Metric.Gauge<number>, bearer: string) =>
  Effect.map(labelled(metric, bearer), (s) => s.value)

describe("metrics", () => {
  it.scoped("a scripted scenario leaves exact counts, histogram and gauges", () =>
    Effect.gen(function* () {
      const name = "metrics-scenario"
      const t2expires = 92_520 + HOUR
      const { bearer } = yield* setup(
        [
          t("t1", { expiresIn: "100 seconds", delay: "20 millis" }),
          TestTokenSource.fail("down"),
          TestTokenSource.die(new Error("kaboom")),
          t("t2", { expiresAt: t2expires }),
          t("t2", { expiresAt: t2expires })
        ],
        { name }
      )
      // A cold fetch: one miss, one attempt of 20 ms.
      const cold = yield* Effect.fork(bearer.fetch())
      yield* TestClock.adjust(20)
      const t1 = yield* Fiber.join(cold)
      expect(yield* attempts(name, "success", "renewed")).toBe(1)
      expect(yield* gauge(Metrics.tokenExpiryTimestamp, name)).toBe(100.02)
      expect(yield* gauge(Metrics.tokenExpiresIn, name)).toBe(100)
      // Three hits on the hot path.
      for (let i = 0; i < 3; i++) yield* bearer.fetch()
      // The refresh at 20 ms + 90 s fails (SourceError), the retry 1 s later dies (SourceDefect).
      yield* TestClock.adjust(90_000)
      expect(yield* gauge(Metrics.consecutiveFailures, name)).toBe(1)
      expect(yield* gauge(Metrics.tokenExpiresIn, name)).toBe(10)
      yield* TestClock.adjust(1000)
      expect(yield* gauge(Metrics.consecutiveFailures, name)).toBe(2)
      expect(yield* gauge(Metrics.tokenExpiresIn, name)).toBe(9)
      // Past the refresh point, before expiry: a stale serve.
      yield* TestClock.adjust(480)
      expect(value(yield* bearer.fetch())).toBe("t1")
      // 1.5 s after the defect: t2.
      yield* TestClock.adjust(1020)
      expect(yield* gauge(Metrics.consecutiveFailures, name)).toBe(0)
      expect(yield* gauge(Metrics.tokenExpiryTimestamp, name)).toBe(t2expires / 1000)
      expect(yield* gauge(Metrics.tokenExpiresIn, name)).toBe(3600)
      // A 401 for the replaced t1 is ignored; one for t2 acts, and the next fetch misses and waits.
      const t2 = yield* bearer.fetch()
      expect(yield* bearer.invalidate(t1)).toBe(false)
      expect(yield* bearer.invalidate(t2)).toBe(true)
      expect(yield* bearer.invalidate(t2)).toBe(false)
      const waiter = yield* Effect.fork(bearer.fetch())
      yield* settle
      // The source answers with t2 again: a success, counted as unchanged.
      expect(value(yield* Fiber.join(waiter))).toBe("t2")

      expect(yield* attempts(name, "success", "renewed")).toBe(2)
      expect(yield* attempts(name, "success", "unchanged")).toBe(1)
      expect(yield* attempts(name, "failure", "SourceError")).toBe(1)
      expect(yield* attempts(name, "failure", "SourceDefect")).toBe(1)
      expect(yield* attempts(name, "failure", "SourceTimeout")).toBe(0)
      expect(yield* attempts(name, "failure", "InvalidToken")).toBe(0)
      const success = yield* labelled(Metrics.refreshDuration, name, "result", "success")
      const failure = yield* labelled(Metrics.refreshDuration, name, "result", "failure")
      expect([success.count, success.sum, success.max]).toEqual([3, 0.02, 0.02])
      expect([failure.count, failure.sum]).toEqual([2, 0])
      expect(yield* counter(Metrics.cacheHits, name)).toBe(4) // three, then the fetch of t2 before the 401s
      expect(yield* counter(Metrics.cacheStaleServes, name)).toBe(1)
      expect(yield* counter(Metrics.cacheMisses, name)).toBe(2)
      expect(yield* counter(Metrics.invalidations, name, "outcome", "acted")).toBe(1)
      expect(yield* counter(Metrics.invalidations, name, "outcome", "ignored")).toBe(2)
      expect(yield* gauge(Metrics.consecutiveFailures, name)).toBe(0)
    })
  )

  it.scoped(
    "an invalid token and a timeout are counted under their reasons; bearers do not share counters",
    () =>
      Effect.gen(function* () {
        const a = yield* setup(
          [t("", { expiresIn: "1 hour" }), TestTokenSource.hang, t("ok", { expiresIn: "1 hour" })],
          {
            name: "metrics-a"
          }
        )
        const b = yield* setup([t("other", { expiresIn: "1 hour" })], { name: "metrics-b" })
        const fiber = yield* Effect.fork(a.bearer.fetch())
        yield* b.bearer.fetch()
        yield* TestClock.adjust(1000 + 5000 + 1500)
        expect(value(yield* Fiber.join(fiber))).toBe("ok")
        expect(yield* attempts("metrics-a", "failure", "InvalidToken")).toBe(1)
        expect(yield* attempts("metrics-a", "failure", "SourceTimeout")).toBe(1)
        expect(yield* attempts("metrics-a", "success", "renewed")).toBe(1)
        const durations = yield* labelled(Metrics.refreshDuration, "metrics-a", "result", "failure")
        expect([durations.count, durations.sum]).toEqual([2, 5])
        expect(yield* attempts("metrics-b", "success", "renewed")).toBe(1)
        expect(yield* attempts("metrics-b", "failure", "InvalidToken")).toBe(0)
        expect(yield* counter(Metrics.cacheMisses, "metrics-b")).toBe(1)
        expect(yield* counter(Metrics.cacheMisses, "metrics-a")).toBe(1)
      })
  )
})

describe("logs", () => {
  it.effect("debug for the schedule, warning for failures, never a token value", () =>
    Effect.gen(function* () {
      const secrets = ["s3cr3t-first", "s3cr3t-second", "s3cr3t-expired-one"]
      const lines = yield* Ref.make<
        ReadonlyArray<{ readonly level: string; readonly message: string; readonly text: string }>
      >([])
      const logger = Logger.make(({ annotations, cause, date, fiberId, logLevel, message, spans }) => {
        // Everything a logger can see, rendered every way a user's logger might render it.
        const text = [
          inspect(message, { depth: 10 }),
          JSON.stringify(message),
          inspect(HashMap.toEntries(annotations), { depth: 10 }),
          JSON.stringify(HashMap.toEntries(annotations)),
          List.toArray(spans)
            .map((span) => span.label)
            .join(","),
          Cause.pretty(cause),
          String(fiberId),
          date.toISOString()
        ].join(" | ")
        const first = Array.isArray(message) ? message[0] : message
        Effect.runSync(
          Ref.update(lines, (all) => [...all, { level: logLevel.label, message: String(first), text }])
        )
      })
      const scope = yield* Scope.make()
      const program = Effect.gen(function* () {
        const { bearer } = yield* setup(
          [
            t(secrets[0], { expiresIn: "1 hour" }),
            TestTokenSource.fail("token endpoint answered 503"),
            t(secrets[2], { expiresAt: 1 }),
            t(secrets[1], { expiresIn: "1 hour" })
          ],
          { name: "logs" }
        ).pipe(Scope.extend(scope))
        const first = yield* bearer.fetch()
        yield* Effect.logInfo("the program logs its token", first)
        yield* bearer.invalidate(first)
        const reporting = yield* Effect.fork(bearer.fetch({ reportError: true }))
        yield* settle
        const error = yield* Effect.flip(Fiber.join(reporting))
        yield* Effect.logError("fetch failed", error)
        yield* Effect.logError(Cause.fail(error))
        const waiter = yield* Effect.fork(bearer.fetch({ reportError: true }))
        yield* TestClock.adjust(1000)
        const invalid = yield* Effect.flip(Fiber.join(waiter))
        expect(reasonOf(invalid)).toBe("InvalidToken")
        yield* Effect.logWarning("invalid", invalid)
        yield* TestClock.adjust(1500)
        expect(Option.map(yield* bearer.current, value)).toEqual(Option.some(secrets[1]))
        yield* Scope.close(scope, Exit.void)
      })
      yield* program.pipe(
        Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
        Logger.withMinimumLogLevel(LogLevel.All)
      )
      const all = yield* Ref.get(lines)
      const find = (level: string, text: string) =>
        all.filter((l) => l.level === level && l.text.includes(text))
      // The capture works: the expected lines are there.
      expect(find("DEBUG", "RenewableBearer: token renewed")).toHaveLength(2)
      expect(find("DEBUG", "bearer.nextRefreshInMillis")).toHaveLength(2)
      const warnings = find("WARN", "RenewableBearer: Token renewal failed")
      expect(warnings.map((w) => w.message)).toEqual([
        "RenewableBearer: Token renewal failed: the token source returned an error: token endpoint answered 503",
        "RenewableBearer: Token renewal failed: the token source returned an unusable token: the token is already expired"
      ])
      expect(warnings[0].text).toContain("SourceError")
      expect(warnings[0].text).toContain("bearer.retryInMillis")
      expect(warnings[1].text).toContain("InvalidToken")
      expect(find("DEBUG", "RenewableBearer: stopped")).toHaveLength(1)
      expect(find("INFO", "the program logs its token")).toHaveLength(1)
      // And no line, annotation, span or cause carries a token value.
      for (const line of all) for (const secret of secrets) expect(line.text).not.toContain(secret)
    })
  )

  it.effect(
    "millisecond annotations are whole numbers; a permanent failure is an Error saying what to check",
    () =>
      Effect.gen(function* () {
        const lines: Array<{ level: string; message: string; retryIn: unknown }> = []
        const logger = Logger.make(({ annotations, logLevel, message }) => {
          const first = Array.isArray(message) ? message[0] : message
          lines.push({
            level: logLevel.label,
            message: String(first),
            retryIn: Option.getOrUndefined(HashMap.get(annotations, "bearer.retryInMillis"))
          })
        })
        yield* Effect.gen(function* () {
          const { bearer } = yield* setup(
            [
              TestTokenSource.fail("503"),
              TestTokenSource.fail("invalid_client", { retryable: false }),
              t("t1", { expiresIn: "1 hour" })
            ],
            { name: "logs-millis", jitter: 0.2 }
          )
          yield* Effect.fork(bearer.fetch())
          yield* TestClock.adjust("2 minutes")
        }).pipe(
          // Jitter makes the backoff fractional: 1.5 s × (1 + 0.2 × (2 × 0.123 − 1)) = 1,273.8 ms (the first
          // one, 849.2 ms, is raised to initialRetryTimeout), then 60 s × 0.8492 = 50,952 ms.
          Effect.withRandom(Random.fixed([0.123])),
          Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
          Logger.withMinimumLogLevel(LogLevel.All),
          Effect.scoped
        )
        const failures = lines.filter((l) => l.message.startsWith("RenewableBearer: Token renewal failed"))
        expect(failures.map((l) => [l.level, l.retryIn])).toEqual([
          ["WARN", 1000],
          ["ERROR", 50_952]
        ])
        expect(failures[1].message).toContain("permanent: check the source's credentials")
      })
  )
})

describe("shutdown logs", () => {
  it.effect(
    "a bearer's shutdown logs with the logger and level of its build, not of the fiber that closes its scope",
    () =>
      Effect.gen(function* () {
        const lines: Array<string> = []
        const logger = Logger.make(({ message }) => {
          lines.push(String(Array.isArray(message) ? message[0] : message))
        })
        const scope = yield* Scope.make()
        yield* setup([t("t1", { expiresIn: "1 hour" })], { name: "logs-shutdown" }).pipe(
          Effect.flatMap(({ bearer }) => bearer.fetch()),
          Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
          Logger.withMinimumLogLevel(LogLevel.Debug),
          Scope.extend(scope)
        )
        expect(lines).not.toContain("RenewableBearer: stopped")
        // Closed from a fiber with the default logger and level (Info): the debug line still reaches the
        // build's logger.
        yield* Scope.close(scope, Exit.void)
        expect(lines).toContain("RenewableBearer: stopped")
      })
  )
})
