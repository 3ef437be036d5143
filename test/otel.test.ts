/**
 * The bearer with `@effect/opentelemetry`, out of the box: its spans reach an OpenTelemetry exporter with
 * their attributes, and no attribute carries a token value.
 */
import { NodeSdk, type Resource } from "@effect/opentelemetry"
import { describe, expect, it } from "@effect/vitest"
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Effect, Exit, Fiber, Layer, Scope, TestClock } from "effect"
import { RenewableBearer, TestTokenSource } from "effect-renewable-bearer"
import { settle, setup } from "./utils/bearer.js"
import { reasonOf, value } from "./utils/faults.js"

const t = TestTokenSource.token

/** Keeps its spans when the SDK shuts down at the end of the scope, so the test can read them after. */
class KeepingExporter extends InMemorySpanExporter {
  override shutdown(): Promise<void> {
    return Promise.resolve()
  }
}

const otelLayer = (exporter: InMemorySpanExporter) =>
  NodeSdk.layer(() => ({
    resource: { serviceName: "effect-renewable-bearer-test" },
    spanProcessor: new SimpleSpanProcessor(exporter)
  }))
const SECRETS = ["otel-s3cr3t-1", "otel-s3cr3t-2", "otel-s3cr3t-bad"]

describe("OpenTelemetry", () => {
  it.effect("a refresh span per attempt and a wait span per waiting fetch, with attributes, no token", () =>
    Effect.gen(function* () {
      const exporter = new KeepingExporter()
      const scope = yield* Scope.make()
      const program = Effect.gen(function* () {
        const { bearer } = yield* setup(
          [
            t(SECRETS[2], { expiresIn: 0 }),
            TestTokenSource.fail("down"),
            t(SECRETS[0], { expiresIn: "1 hour" }),
            t(SECRETS[1], { expiresIn: "1 hour", delay: "10 millis" })
          ],
          { name: "otel" }
        ).pipe(Scope.extend(scope))
        // Wait spans are children of the caller's span: these callers run inside one.
        const inCaller = <A, E>(effect: Effect.Effect<A, E>) => Effect.withSpan(effect, "caller")
        const reporting = yield* Effect.fork(inCaller(bearer.fetch({ reportError: true })))
        const waiting = yield* Effect.fork(inCaller(bearer.fetch({ timeout: "1 minute" })))
        yield* settle
        expect(reasonOf(yield* Effect.flip(Fiber.join(reporting)))).toBe("InvalidToken")
        yield* TestClock.adjust(1000 + 1500)
        expect(value(yield* Fiber.join(waiting))).toBe(SECRETS[0])
        // A synchronous renewal: a third wait span, a fourth refresh span.
        const sync = yield* Effect.fork(inCaller(bearer.fetch({ synchronous: true, renewRequired: true })))
        yield* TestClock.adjust(10)
        expect(value(yield* Fiber.join(sync))).toBe(SECRETS[1])
        // A fetch that waits outside any span records no wait span (a fifth refresh span, though).
        const untraced = yield* Effect.fork(bearer.fetch({ renewRequired: true }))
        yield* TestClock.adjust(10)
        expect(value(yield* Fiber.join(untraced))).toBe(SECRETS[1])
        // The hot path makes no span.
        yield* bearer.fetch()
        yield* Scope.close(scope, Exit.void)
      })
      yield* program.pipe(Effect.provide(otelLayer(exporter)), Effect.scoped)
      yield* Effect.promise(() => exporter.forceFlush())

      const spans: ReadonlyArray<ReadableSpan> = exporter.getFinishedSpans()
      const refresh = spans.filter((span) => span.name === "RenewableBearer.refresh")
      const wait = spans.filter((span) => span.name === "RenewableBearer.wait")
      const attributes = refresh.map((span) => span.attributes)
      expect(attributes).toMatchObject([
        {
          "bearer.name": "otel",
          "bearer.attempt": 1,
          "bearer.outcome": "failure",
          "bearer.reason": "InvalidToken"
        },
        {
          "bearer.name": "otel",
          "bearer.attempt": 2,
          "bearer.outcome": "failure",
          "bearer.reason": "SourceError"
        },
        { "bearer.name": "otel", "bearer.attempt": 3, "bearer.outcome": "success" },
        { "bearer.name": "otel", "bearer.attempt": 4, "bearer.outcome": "success" },
        { "bearer.name": "otel", "bearer.attempt": 5, "bearer.outcome": "success" }
      ])
      expect(attributes.map((a) => a["bearer.reason"])).toEqual([
        "InvalidToken",
        "SourceError",
        undefined,
        undefined,
        undefined
      ])
      // A failed attempt's span ends with status ERROR (2), a successful one with OK (1).
      expect(refresh.map((span) => span.status.code)).toEqual([2, 2, 1, 1, 1])
      // Refresh spans are roots: the background work belongs to no caller's trace.
      for (const span of refresh) expect(span.parentSpanContext).toBeUndefined()
      expect(wait.map((span) => span.attributes["bearer.mode"]).sort()).toEqual([
        "asynchronous",
        "reportError",
        "synchronous"
      ])
      expect(spans.filter((span) => span.name.startsWith("RenewableBearer")).length).toBe(8)
      // No attribute, event or status of any span carries a token value.
      for (const span of spans) {
        const rendered = JSON.stringify({
          name: span.name,
          attributes: span.attributes,
          events: span.events,
          status: span.status,
          resource: span.resource.attributes
        })
        for (const secret of SECRETS) expect(rendered).not.toContain(secret)
      }
    })
  )

  // The bearer's fiber keeps the tracer it was forked with, when the layer is built: OpenTelemetry must be
  // provided to the bearer's layer or around the program, not merged beside the bearer (docs/observability.md).
  const ways: ReadonlyArray<
    [
      string,
      (
        bearer: Layer.Layer<RenewableBearer.RenewableBearer, RenewableBearer.BuildError>,
        otel: Layer.Layer<Resource.Resource>
      ) => <A, E>(
        self: Effect.Effect<A, E, RenewableBearer.RenewableBearer>
      ) => Effect.Effect<A, E | RenewableBearer.BuildError>
    ]
  > = [
    [
      "Layer.provide(otel) on the bearer's layer",
      (bearer, otel) => Effect.provide(Layer.provide(bearer, otel))
    ],
    [
      "Layer.provideMerge(otel) on the bearer's layer",
      (bearer, otel) => Effect.provide(Layer.provideMerge(bearer, otel))
    ],
    [
      "otel provided around the program",
      (bearer, otel) => (self) => self.pipe(Effect.provide(bearer), Effect.provide(otel))
    ]
  ]
  for (const [name, provide] of ways) {
    it.effect(`the refresh span reaches OpenTelemetry with ${name}`, () =>
      Effect.gen(function* () {
        const exporter = new KeepingExporter()
        const bearer = RenewableBearer.layer({ jitter: 0, name: "otel-layer" }).pipe(
          Layer.provide(TestTokenSource.layer([t(SECRETS[0], { expiresIn: "1 hour" })]))
        )
        const token = yield* Effect.flatMap(RenewableBearer.RenewableBearer, (b) => b.fetch()).pipe(
          Effect.withSpan("caller"),
          provide(bearer, otelLayer(exporter)),
          Effect.scoped
        )
        expect(value(token)).toBe(SECRETS[0])
        const spans = exporter.getFinishedSpans()
        const refresh = spans.filter((span) => span.name === "RenewableBearer.refresh")
        expect(refresh.map((span) => span.attributes["bearer.outcome"])).toEqual(["success"])
        const wait = spans.find((span) => span.name === "RenewableBearer.wait")
        const caller = spans.find((span) => span.name === "caller")
        // The wait span belongs to the caller's trace; the refresh span to none.
        expect(wait?.parentSpanContext?.spanId).toBe(caller?.spanContext().spanId)
        expect(refresh[0].parentSpanContext).toBeUndefined()
      })
    )
  }
})
