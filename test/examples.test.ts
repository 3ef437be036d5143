/**
 * The README's two usage examples (the original module's basic and synchronous examples, translated to
 * Effect), run under `TestClock` with a scripted source so that each behaviour they rely on is asserted.
 * The programs below are the README's, with the API call and the token source passed in.
 */
import { describe, expect, it } from "@effect/vitest"
import { Data, Duration, Effect, Either, Exit, Fiber, Layer, Redacted, TestClock } from "effect"
import { Errors, FetchOptions, RenewableBearer, TestTokenSource, type Token } from "effect-renewable-bearer"

// ---- the basic example ---------------------------------------------------------------------------------

class Unauthorized extends Data.TaggedError("Unauthorized")<{}> {}

/** README: "fetch a token, use it in a request; on a 401 ask the receiver whether to try again". */
const request = (callApi: (token: Token.Token) => Effect.Effect<string, Unauthorized>) =>
  Effect.gen(function* () {
    const bearer = yield* RenewableBearer.RenewableBearer
    const receiver = yield* bearer.receiver
    while (true) {
      const token = yield* receiver.fetchWith({ timeout: "5 seconds" })
      const result = yield* Effect.either(callApi(token))
      if (Either.isRight(result)) return result.right
      // Within the retry budget (2 attempts) this invalidates the token, if it is still the cached one.
      if (!(yield* receiver.canRetry(result.left))) return yield* result.left
    }
  })

/** A fake API that accepts the tokens in `accepted` and counts its calls. */
const fakeApi = (accepted: ReadonlyArray<string>) => {
  const seen: Array<string> = []
  const callApi = (token: Token.Token): Effect.Effect<string, Unauthorized> =>
    Effect.suspend(() => {
      const value = Redacted.value(token.value)
      seen.push(value)
      return accepted.includes(value)
        ? Effect.succeed(`hello with ${value}`)
        : Effect.fail(new Unauthorized())
    })
  return { callApi, seen }
}

const withSource = (steps: ReadonlyArray<TestTokenSource.Step>) =>
  RenewableBearer.RenewableBearerLive.pipe(Layer.provideMerge(TestTokenSource.layer(steps)))

const hour = { expiresIn: "1 hour" } as const

describe("README example: basic", () => {
  it.effect("fetches a token and uses it: one source call for many requests", () =>
    Effect.gen(function* () {
      const source = yield* TestTokenSource.TestTokenSource
      const api = fakeApi(["my-static-token"])
      expect(yield* request(api.callApi)).toBe("hello with my-static-token")
      expect(yield* request(api.callApi)).toBe("hello with my-static-token")
      expect(yield* source.calls).toBe(1)
    }).pipe(Effect.provide(withSource([TestTokenSource.token("my-static-token")])))
  )

  it.effect("a 401 invalidates the token, the request is replayed once with a renewed one", () =>
    Effect.gen(function* () {
      const source = yield* TestTokenSource.TestTokenSource
      const api = fakeApi(["t2"]) // t1 was revoked at the server
      expect(yield* request(api.callApi)).toBe("hello with t2")
      expect(api.seen).toEqual(["t1", "t2"])
      expect(yield* source.calls).toBe(2)
    }).pipe(
      Effect.provide(withSource([TestTokenSource.token("t1", hour), TestTokenSource.token("t2", hour)]))
    )
  )

  it.effect("the retry budget ends the loop: 2 attempts, then the 401 is the caller's", () =>
    Effect.gen(function* () {
      const api = fakeApi([])
      const exit = yield* Effect.exit(request(api.callApi))
      expect(exit).toEqual(Exit.fail(new Unauthorized()))
      expect(api.seen).toEqual(["t1", "t2"])
    }).pipe(
      Effect.provide(
        withSource([
          TestTokenSource.token("t1", hour),
          TestTokenSource.token("t2", hour),
          TestTokenSource.token("t3", hour)
        ])
      )
    )
  )

  it.effect("a source that fails: the caller waits through the backoff, up to its timeout", () =>
    Effect.gen(function* () {
      const source = yield* TestTokenSource.TestTokenSource
      const api = fakeApi(["t1"])
      const fiber = yield* Effect.fork(request(api.callApi))
      // The first attempt fails at 0; the retry comes after the first backoff: 1 s, up to 20 % later (jitter).
      yield* TestClock.adjust("1200 millis")
      expect(yield* Fiber.join(fiber)).toBe("hello with t1")
      const [first, second] = yield* source.callTimes
      expect(first).toBe(0)
      expect(second).toBeGreaterThanOrEqual(1_000)
      expect(second).toBeLessThanOrEqual(1_200)
    }).pipe(Effect.provide(withSource([TestTokenSource.fail("503"), TestTokenSource.token("t1", hour)])))
  )
})

// ---- the synchronous example ---------------------------------------------------------------------------

/** README: a fetch that renews synchronously, with options from the original string keys. */
const fetchSynchronously = Effect.gen(function* () {
  const bearer = yield* RenewableBearer.RenewableBearer
  const receiver = yield* bearer.receiver
  const options = yield* FetchOptions.fromMetadata({
    [FetchOptions.OPTION_RENEW_SYNCHRONOUS]: "1",
    [FetchOptions.OPTION_RENEW_REQUEST_TIMEOUT]: "2.0"
  })
  // The same as { synchronous: true, renewRequestTimeout: "2 seconds" }
  return yield* receiver.fetchWith({ ...options, timeout: "5 seconds" })
})

describe("README example: synchronous", () => {
  it.effect("returns the result of the attempt it started", () =>
    Effect.gen(function* () {
      const fiber = yield* Effect.fork(fetchSynchronously)
      yield* TestClock.adjust("1500 millis")
      const token = yield* Fiber.join(fiber)
      expect(Redacted.value(token.value)).toBe("t1")
    }).pipe(Effect.provide(withSource([TestTokenSource.token("t1", { ...hour, delay: "1500 millis" })])))
  )

  it.effect("the attempt is bounded by token_renew_request_timeout: 2 s, then its error", () =>
    Effect.gen(function* () {
      const source = yield* TestTokenSource.TestTokenSource
      const fiber = yield* Effect.fork(fetchSynchronously)
      yield* TestClock.adjust("2 seconds")
      const exit = yield* Fiber.await(fiber)
      expect(Exit.isFailure(exit)).toBe(true)
      const error = Exit.isFailure(exit) ? exit.cause : undefined
      expect(error?._tag).toBe("Fail")
      if (error?._tag === "Fail") {
        expect(Errors.isRenewalError(error.error)).toBe(true)
        expect((error.error as Errors.RenewalError).reason).toBe("SourceTimeout")
      }
      expect(yield* source.calls).toBe(1)
    }).pipe(Effect.provide(withSource([TestTokenSource.hang])))
  )

  it.effect("the source's error is reported to the caller at once, not waited through", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(fetchSynchronously)
      expect(error._tag).toBe("RenewalError")
      expect(error._tag === "RenewalError" && error.reason).toBe("SourceError")
    }).pipe(Effect.provide(withSource([TestTokenSource.fail("invalid_client", { retryable: false })])))
  )

  it.effect("the metadata parses to the typed options", () =>
    Effect.gen(function* () {
      const options = yield* FetchOptions.fromMetadata({
        [FetchOptions.OPTION_RENEW_SYNCHRONOUS]: "1",
        [FetchOptions.OPTION_RENEW_REQUEST_TIMEOUT]: "2.0"
      })
      expect(options.synchronous).toBe(true)
      // "2.0" from the original key is in seconds.
      expect(Duration.toMillis(options.renewRequestTimeout ?? Duration.zero)).toBe(2_000)
    })
  )
})
