import { FetchHttpClient } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Clock, Context, Effect, Exit, Fiber, Layer, Option, Redacted, TestClock } from "effect"
import { Errors, OAuth2TokenSource, RenewableBearer, TestTokenSource } from "effect-renewable-bearer"
import type { IncomingMessage } from "node:http"
import { OAuth2Server } from "oauth2-mock-server"
import { setup, value } from "./utils/bearer.js"

const t = TestTokenSource.token

/** The failure of a finished build, or a test failure when it succeeded. */
const failureOf = <A, E>(exit: Exit.Exit<A, E>): E =>
  Option.getOrThrowWith(Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none(), () =>
    Error("expected the build to fail")
  )

describe("RenewableBearer awaitFirstToken: fail fast at start-up", () => {
  it.scoped("the layer is built once the first token is cached, not before", () =>
    Effect.gen(function* () {
      const build = yield* Effect.fork(
        setup([t("t1", { expiresIn: "1 hour", delay: "2 seconds" })], { awaitFirstToken: "10 seconds" })
      )
      yield* TestClock.adjust("1999 millis")
      expect(Option.isNone(yield* Fiber.poll(build))).toBe(true)
      yield* TestClock.adjust("1 milli")
      const { bearer, source } = yield* Fiber.join(build)
      expect(Option.map(yield* bearer.current, value)).toEqual(Option.some("t1"))
      expect(yield* source.callTimes).toEqual([0])
    })
  )

  it.scoped("transient failures are retried on the usual backoff until a token comes", () =>
    Effect.gen(function* () {
      const build = yield* Effect.fork(
        setup(
          [TestTokenSource.fail("down"), TestTokenSource.fail("down"), t("t1", { expiresIn: "1 hour" })],
          {
            awaitFirstToken: "10 seconds"
          }
        )
      )
      yield* TestClock.adjust("2499 millis")
      expect(Option.isNone(yield* Fiber.poll(build))).toBe(true)
      yield* TestClock.adjust("1 milli")
      const { bearer, source } = yield* Fiber.join(build)
      expect(yield* source.callTimes).toEqual([0, 1000, 2500])
      expect(Option.map(yield* bearer.current, value)).toEqual(Option.some("t1"))
    })
  )

  it.scoped("transient failures until the bound fail the build with a Timeout carrying the last cause", () =>
    Effect.gen(function* () {
      const build = yield* Effect.fork(
        Effect.exit(
          setup([TestTokenSource.fail("identity provider is down")], { awaitFirstToken: "5 seconds" })
        )
      )
      yield* TestClock.adjust("4999 millis")
      expect(Option.isNone(yield* Fiber.poll(build))).toBe(true)
      yield* TestClock.adjust("1 milli")
      const error = failureOf(yield* Fiber.join(build))
      expect(error).toBeInstanceOf(Errors.RenewalError)
      const renewal = error as Errors.RenewalError
      expect(renewal.reason).toBe("Timeout")
      expect(renewal.detail).toBe(
        "no token within awaitFirstToken (5000 ms) while the layer was built; the last attempt failed: " +
          "Token renewal failed: the token source returned an error: identity provider is down"
      )
      expect(Errors.isTokenSourceError(renewal.cause)).toBe(true)
      expect((renewal.cause as Errors.TokenSourceError).message).toBe("identity provider is down")
    })
  )

  it.scoped("a permanent failure fails the build at once, with the source's error as cause", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(
        setup([TestTokenSource.fail("invalid_client", { retryable: false })], { awaitFirstToken: true })
      )
      expect(yield* Clock.currentTimeMillis).toBe(0)
      const error = failureOf(exit) as Errors.RenewalError
      expect([error._tag, error.reason]).toEqual(["RenewalError", "SourceError"])
      expect(Errors.isTokenSourceError(error.cause) && error.cause.isRetryable).toBe(false)
    })
  )

  it.scoped("true waits 30 seconds", () =>
    Effect.gen(function* () {
      const build = yield* Effect.fork(
        Effect.exit(setup([TestTokenSource.fail()], { awaitFirstToken: true }))
      )
      yield* TestClock.adjust("29999 millis")
      expect(Option.isNone(yield* Fiber.poll(build))).toBe(true)
      yield* TestClock.adjust("1 milli")
      expect((failureOf(yield* Fiber.join(build)) as Errors.RenewalError).reason).toBe("Timeout")
    })
  )

  it.scoped("without it (or with false) the layer is built at once, even over a failing source", () =>
    Effect.gen(function* () {
      for (const options of [{}, { awaitFirstToken: false }]) {
        const { source } = yield* setup(
          [TestTokenSource.fail("invalid_client", { retryable: false })],
          options
        )
        expect(yield* source.calls).toBe(0)
      }
    })
  )

  it.scoped("a named bearer waits for its first token too", () =>
    Effect.gen(function* () {
      class Billing extends RenewableBearer.Tag("test/awaitFirstToken/Billing")<Billing>() {}
      const exit = yield* Effect.exit(
        Layer.build(
          TestTokenSource.layerFor(Billing, [TestTokenSource.fail("invalid_client", { retryable: false })], {
            awaitFirstToken: "10 seconds"
          })
        )
      )
      expect((failureOf(exit) as Errors.RenewalError).reason).toBe("SourceError")
    })
  )

  for (const [awaitFirstToken, got] of [
    [0, "0 ms"],
    [-1, "-1"],
    ["soon", '"soon"'],
    [Number.POSITIVE_INFINITY, "Infinity"]
  ] as const) {
    it.scoped(`rejects awaitFirstToken ${JSON.stringify(awaitFirstToken)} before calling the source`, () =>
      Effect.gen(function* () {
        const exit = yield* Effect.exit(
          setup([t("t1")], { awaitFirstToken: awaitFirstToken as RenewableBearer.Options["awaitFirstToken"] })
        )
        const error = failureOf(exit)
        expect(error._tag).toBe("InvalidOptionsError")
        expect((error as Errors.InvalidOptionsError).option).toBe("awaitFirstToken")
        expect((error as Errors.InvalidOptionsError).detail).toBe(
          `expected a boolean or a positive duration, got ${got}`
        )
      })
    )
  }
})

const CLIENT_ID = "billing-worker"
const SECRET = "the-registered-client-secret"

/** oauth2-mock-server on a free loopback port that accepts only `CLIENT_ID:SECRET` in HTTP Basic. */
const identityProvider = Effect.acquireRelease(
  Effect.promise(async () => {
    const server = new OAuth2Server()
    await server.issuer.keys.generate("RS256")
    let requests = 0
    server.service.on(
      "beforeResponse",
      (response: { body: unknown; statusCode: number }, req: IncomingMessage) => {
        requests++
        const basic = Buffer.from(
          (req.headers.authorization ?? "").replace(/^Basic /, ""),
          "base64"
        ).toString()
        if (basic !== `${CLIENT_ID}:${SECRET}`) {
          response.statusCode = 401
          response.body = { error: "invalid_client", error_description: "client authentication failed" }
        }
      }
    )
    await server.start(0, "127.0.0.1")
    return { server, tokenUrl: `${server.issuer.url}/token`, requests: () => requests }
  }),
  ({ server }) => Effect.promise(() => server.stop())
)

const bearerOver = (tokenUrl: string, secret: string) =>
  RenewableBearer.layer({ awaitFirstToken: "10 seconds" }).pipe(
    Layer.provide(
      OAuth2TokenSource.layerClientCredentials({
        tokenUrl,
        clientId: CLIENT_ID,
        clientSecret: Redacted.make(secret)
      })
    ),
    Layer.provide(FetchHttpClient.layer)
  )

describe("awaitFirstToken against a real OAuth 2.0 server on loopback", { timeout: 15_000 }, () => {
  it.scopedLive("a wrong client secret fails the layer at build, after one token request", () =>
    Effect.gen(function* () {
      const idp = yield* identityProvider
      const exit = yield* Effect.exit(Layer.build(bearerOver(idp.tokenUrl, "a-wrong-client-secret")))
      const error = failureOf(exit) as Errors.RenewalError
      // A SourceError, not a Timeout: the build did not wait for the 10-second bound.
      expect([error._tag, error.reason]).toEqual(["RenewalError", "SourceError"])
      const cause = error.cause as Errors.TokenSourceError
      expect([cause.status, cause.code, cause.isRetryable]).toEqual([401, "invalid_client", false])
      expect(idp.requests()).toBe(1)
      expect(JSON.stringify(error)).not.toContain("a-wrong-client-secret")
      expect(String(error)).not.toContain("a-wrong-client-secret")
    })
  )

  it.scopedLive("the right client secret builds the layer with the token already cached", () =>
    Effect.gen(function* () {
      const idp = yield* identityProvider
      const context = yield* Layer.build(bearerOver(idp.tokenUrl, SECRET))
      expect(idp.requests()).toBe(1)
      const bearer = Context.get(context, RenewableBearer.RenewableBearer)
      expect(Option.isSome(yield* bearer.current)).toBe(true)
    })
  )
})
