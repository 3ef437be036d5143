import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Redacted, TestClock } from "effect"
import { RenewableBearer, TestTokenSource } from "effect-renewable-bearer"

// The code under test: a program that needs a token (here it only reads it).
const whoAmI = Effect.gen(function* () {
  const bearer = yield* RenewableBearer.RenewableBearer
  const token = yield* bearer.fetch({ timeout: "10 seconds" })
  return Redacted.value(token.value)
})

// The bearer over a scripted source. `provideMerge` keeps `TestTokenSource` visible to the test.
// `jitter: 0` makes every instant exact.
const TestBearer = (steps: ReadonlyArray<TestTokenSource.Step>) =>
  RenewableBearer.layer({ jitter: 0 }).pipe(Layer.provideMerge(TestTokenSource.layer(steps)))

const t = TestTokenSource.token

describe("whoAmI", () => {
  it.effect("reuses the token, then renews it in the background at 90 % of its lifetime", () =>
    Effect.gen(function* () {
      const source = yield* TestTokenSource.TestTokenSource
      expect(yield* whoAmI).toBe("t1")
      expect(yield* whoAmI).toBe("t1")
      yield* TestClock.adjust("54 minutes") // 90 % of one hour
      expect(yield* whoAmI).toBe("t2")
      expect(yield* source.callTimes).toEqual([0, 54 * 60_000])
    }).pipe(Effect.provide(TestBearer([t("t1", { expiresIn: "1 hour" }), t("t2", { expiresIn: "1 hour" })])))
  )

  it.effect("keeps serving the still-valid token while the source fails, with backoff", () =>
    Effect.gen(function* () {
      const source = yield* TestTokenSource.TestTokenSource
      yield* whoAmI
      yield* TestClock.adjust("54 minutes") // the refresh fails...
      expect(yield* whoAmI).toBe("t1") // ...and nobody notices
      yield* TestClock.adjust("1 second") // fails again; the next try comes 1.5 s later
      yield* TestClock.adjust("1500 millis")
      expect(yield* whoAmI).toBe("t2")
      expect(yield* source.callTimes).toEqual([0, 3_240_000, 3_241_000, 3_242_500])
    }).pipe(
      Effect.provide(
        TestBearer([
          t("t1", { expiresIn: "1 hour" }),
          TestTokenSource.fail("503"),
          TestTokenSource.fail("503"),
          t("t2", { expiresIn: "1 hour" })
        ])
      )
    )
  )

  it.effect("gives up after its own timeout when no token can be had", () =>
    Effect.gen(function* () {
      const fiber = yield* Effect.fork(whoAmI)
      yield* TestClock.adjust("10 seconds")
      const error = yield* Effect.flip(Fiber.join(fiber))
      expect(error._tag === "RenewalError" && error.reason).toBe("Timeout")
    }).pipe(Effect.provide(TestBearer([TestTokenSource.hang])))
  )
})
