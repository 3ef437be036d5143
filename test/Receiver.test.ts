import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Option, Redacted, TestClock } from "effect"
import { Receiver, RenewableBearer, TestTokenSource } from "effect-renewable-bearer"
import { settle, setup } from "./utils/bearer.js"

const t = TestTokenSource.token
const unauthorized = { status: 401 }

describe("Receiver", () => {
  it.scoped("counts trials and remembers the latest token", () =>
    Effect.gen(function* () {
      const { bearer } = yield* setup([t("t1", { expiresIn: "1 hour" })])
      const receiver = yield* bearer.receiver
      expect(yield* receiver.trials).toBe(0)
      expect(yield* receiver.latest).toEqual(Option.none())
      const token = yield* receiver.fetch
      expect(yield* receiver.trials).toBe(1)
      expect(yield* receiver.latest).toEqual(Option.some(token))
      yield* receiver.fetchWith({ timeout: "1 second" })
      expect(yield* receiver.trials).toBe(2)
    })
  )

  it.scoped("a failed fetch counts as a trial too", () =>
    Effect.gen(function* () {
      const { bearer } = yield* setup([TestTokenSource.fail()])
      const receiver = yield* bearer.receiver
      const fiber = yield* Effect.fork(Effect.flip(receiver.fetchWith({ timeout: "10 millis" })))
      yield* TestClock.adjust("10 millis")
      expect((yield* Fiber.join(fiber))._tag).toBe("RenewalError")
      expect(yield* receiver.trials).toBe(1)
      expect(yield* receiver.latest).toEqual(Option.none())
    })
  )

  it.scoped("canRetry invalidates the token and allows maxRetries attempts", () =>
    Effect.gen(function* () {
      const { bearer, source } = yield* setup([
        t("t1", { expiresIn: "1 hour" }),
        t("t2", { expiresIn: "1 hour" })
      ])
      const receiver = yield* bearer.receiver
      yield* receiver.fetch
      expect(yield* receiver.canRetry(unauthorized)).toBe(true)
      expect(yield* bearer.isRenewalRequired).toBe(true)
      const renewed = yield* receiver.fetch
      expect(Redacted.value(renewed.value)).toBe("t2")
      expect(yield* source.calls).toBe(2)
      expect(yield* receiver.canRetry(unauthorized)).toBe(false)
      expect(yield* receiver.canRetry(unauthorized, { maxRetries: 3 })).toBe(true)
    })
  )

  it.scoped(
    "a synchronous request's canRetry invalidates the token too: its replay, right after, is the one renewal, at once",
    () =>
      Effect.gen(function* () {
        const { bearer, source } = yield* setup([
          t("t1", { expiresIn: "1 hour" }),
          t("t2", { expiresIn: "1 hour", delay: "100 millis" })
        ])
        const receiver = yield* bearer.receiver
        const sync = { synchronous: true } as const
        yield* receiver.fetchWith(sync)
        yield* TestClock.adjust("1 minute")
        // The request's replay follows its canRetry at once, as BearerHttpClient's does.
        const replay = yield* Effect.fork(
          Effect.flatMap(receiver.canRetry(unauthorized, sync), (again) =>
            again ? receiver.fetchWith(sync) : Effect.die("no retry")
          )
        )
        yield* settle
        expect(yield* bearer.isRenewalRequired).toBe(true)
        yield* TestClock.adjust("99 millis")
        expect(yield* Fiber.poll(replay)).toEqual(Option.none())
        yield* TestClock.adjust("1 millis")
        expect(Redacted.value((yield* Fiber.join(replay)).value)).toBe("t2")
        // One renewal, started the moment canRetry said yes (60 s after the first call), not held back.
        expect(yield* source.callTimes).toEqual([0, 60_000])
        expect(yield* receiver.trials).toBe(2)
        expect(yield* receiver.canRetry(unauthorized, sync)).toBe(false)
        expect(yield* bearer.isRenewalRequired).toBe(false)
        yield* settle
        expect(yield* source.calls).toBe(2)
      })
  )

  it.scoped("a synchronous request's canRetry leaves a token that was already replaced alone", () =>
    Effect.gen(function* () {
      const { bearer, source } = yield* setup([
        t("t1", { expiresIn: "1 hour" }),
        t("t2", { expiresIn: "1 hour" })
      ])
      const late = yield* bearer.receiver
      yield* late.fetchWith({ synchronous: true })
      yield* bearer.invalidate(Option.getOrThrow(yield* late.latest))
      expect(Redacted.value((yield* bearer.fetch()).value)).toBe("t2")
      expect(yield* late.canRetry(unauthorized, { synchronous: true })).toBe(true)
      expect(yield* bearer.isRenewalRequired).toBe(false)
      expect(Redacted.value((yield* late.fetchWith({ synchronous: true })).value)).toBe("t2")
      yield* settle
      expect(yield* source.calls).toBe(2)
    })
  )

  it.scoped("50 concurrent 401s for one token cause one renewal", () =>
    Effect.gen(function* () {
      const { bearer, source } = yield* setup([
        t("t1", { expiresIn: "1 hour" }),
        t("t2", { expiresIn: "1 hour", delay: "10 millis" })
      ])
      const receivers = yield* Effect.forEach(Array.from({ length: 50 }), () => bearer.receiver)
      yield* Effect.forEach(receivers, (r) => r.fetch, { concurrency: "unbounded" })
      const retries = yield* Effect.forEach(receivers, (r) => r.canRetry(unauthorized), {
        concurrency: "unbounded"
      })
      expect(retries.every((ok) => ok)).toBe(true)
      const fibers = yield* Effect.forEach(receivers, (r) => Effect.fork(r.fetch))
      yield* TestClock.adjust("10 millis")
      const tokens = yield* Fiber.joinAll(fibers)
      expect(new Set(tokens.map((token) => Redacted.value(token.value)))).toEqual(new Set(["t2"]))
      expect(yield* source.calls).toBe(2)
    })
  )

  it.scoped("a 401 for a token that was already replaced does not renew again", () =>
    Effect.gen(function* () {
      const { bearer, source } = yield* setup([
        t("t1", { expiresIn: "1 hour" }),
        t("t2", { expiresIn: "1 hour" })
      ])
      const late = yield* bearer.receiver
      yield* late.fetch
      const first = yield* bearer.receiver
      yield* first.fetch
      yield* first.canRetry(unauthorized)
      yield* first.fetch
      expect(yield* source.calls).toBe(2)
      expect(yield* late.canRetry(unauthorized)).toBe(true)
      expect(yield* bearer.isRenewalRequired).toBe(false)
      yield* settle
      expect(yield* source.calls).toBe(2)
    })
  )

  it.scoped("the Receiver tag works in a generator with a fresh receiver per request", () =>
    Effect.gen(function* () {
      const { bearer } = yield* setup([t("t1", { expiresIn: "1 hour" })])
      const request = Effect.gen(function* () {
        const token = yield* Receiver.fetch
        yield* Receiver.fetchWith({})
        return [
          Redacted.value(token.value),
          yield* Receiver.trials,
          yield* Receiver.canRetry(unauthorized)
        ] as const
      }).pipe(Receiver.provideFresh, Effect.provideService(RenewableBearer.RenewableBearer, bearer))
      expect(yield* request).toEqual(["t1", 2, false])
      expect(yield* request).toEqual(["t1", 2, false])
      const latest = yield* Receiver.latest.pipe(
        Receiver.provideFresh,
        Effect.provideService(RenewableBearer.RenewableBearer, bearer)
      )
      expect(latest).toEqual(Option.none())
    })
  )
})
