import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Fiber, Redacted, TestClock } from "effect"
import { Errors, TestTokenSource, Token, TokenSource } from "effect-renewable-bearer"

class Secret extends Context.Tag("test/Secret")<Secret, string>() {}

describe("TokenSource", () => {
  it.effect("fromToken always answers the same token", () =>
    Effect.gen(function* () {
      const token = Token.make("static")
      const source = TokenSource.fromToken(token)
      expect(yield* source.fetch).toBe(token)
      expect(yield* source.fetch).toBe(token)
    })
  )

  it.effect("fromEffect captures its context and wraps foreign errors", () =>
    Effect.gen(function* () {
      const source = yield* TokenSource.fromEffect(Effect.map(Secret, (value) => Token.make(value))).pipe(
        Effect.provideService(Secret, "from-context")
      )
      expect(Redacted.value((yield* source.fetch).value)).toBe("from-context")

      const failing = yield* TokenSource.fromEffect(Effect.fail("nope"))
      const error = yield* Effect.flip(failing.fetch)
      expect(error).toBeInstanceOf(Errors.TokenSourceError)
      expect(error.cause).toBe("nope")

      const typed = new Errors.TokenSourceError({ message: "typed", retryable: false })
      const passing = yield* TokenSource.fromEffect(Effect.fail(typed))
      expect(yield* Effect.flip(passing.fetch)).toBe(typed)
      expect(typed.isRetryable).toBe(false)
    })
  )
})

describe("TestTokenSource", () => {
  it.effect(
    "answers at most MAX_CALLS calls from its script, then fails each at once with a permanent error",
    () =>
      Effect.gen(function* () {
        const { source, test } = yield* TestTokenSource.make([
          TestTokenSource.token("t", { expiresIn: "1 hour" })
        ])
        yield* Effect.repeatN(source.fetch, TestTokenSource.MAX_CALLS - 1)
        const error = yield* Effect.flip(source.fetch)
        expect(error.message).toBe("TestTokenSource: more than 10,000 calls, a refresh storm")
        expect(error.isRetryable).toBe(false)
        expect(yield* test.calls).toBe(TestTokenSource.MAX_CALLS + 1)
      })
  )

  it.effect("plays its script one step per call, counts calls, then repeats the last step", () =>
    Effect.gen(function* () {
      const { source, test } = yield* TestTokenSource.make([
        TestTokenSource.token("a", { expiresIn: "1 minute", delay: "1 second" }),
        TestTokenSource.fail("down")
      ])
      const first = yield* Effect.fork(source.fetch)
      yield* TestClock.adjust("1 second")
      const token = yield* Fiber.join(first)
      expect(Token.remainingLifetime(token, 1000)).toEqual(
        Token.remainingLifetime(Token.make("x", { expiresAt: 61_000 }), 1000)
      )
      expect((yield* Effect.flip(source.fetch)).message).toBe("down")
      expect((yield* Effect.flip(source.fetch)).message).toBe("down")
      expect(yield* test.calls).toBe(3)
      expect(yield* test.callTimes).toEqual([0, 1000, 1000])
      expect(yield* test.maxInFlight).toBe(1)
      yield* test.push(TestTokenSource.token("b"))
      expect(Redacted.value((yield* source.fetch).value)).toBe("b")
    })
  )

  it.effect("hang never answers and a defect dies", () =>
    Effect.gen(function* () {
      const { source, test } = yield* TestTokenSource.make([
        TestTokenSource.hang,
        TestTokenSource.die("boom")
      ])
      const hanging = yield* Effect.fork(source.fetch)
      yield* TestClock.adjust("1 day")
      expect(yield* test.inFlight).toBe(1)
      yield* Fiber.interrupt(hanging)
      expect(yield* test.inFlight).toBe(0)
      const exit = yield* Effect.exit(source.fetch)
      expect(exit._tag === "Failure" && exit.cause._tag).toBe("Die")
    })
  )
})
