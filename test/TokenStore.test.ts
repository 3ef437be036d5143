import { describe, expect, it } from "@effect/vitest"
import { Clock, Duration, Effect, Exit, Fiber, Logger, Option, Scope, TestClock } from "effect"
import { TestTokenSource, Token } from "effect-renewable-bearer"
import { TokenSourceError } from "effect-renewable-bearer/Errors"
import * as TokenStore from "effect-renewable-bearer/TokenStore"
import { settle, setup, value } from "./utils/bearer.js"

const HOUR = 3_600_000
const t = TestTokenSource.token

/** Captures log lines as `LEVEL message`. */
const captureLogs = () => {
  const lines: Array<string> = []
  const logger = Logger.make(({ logLevel, message }) => {
    lines.push(`${logLevel.label} ${Array.isArray(message) ? message.join(" ") : String(message)}`)
  })
  return { lines, layer: Logger.replace(Logger.defaultLogger, logger) }
}

/** A store whose every operation fails, or hangs. */
const brokenStore = (mode: "fail" | "hang"): TokenStore.TokenStore["Type"] => {
  const broken = (operation: TokenStore.TokenStoreOperation) =>
    mode === "hang"
      ? Effect.never
      : Effect.fail(new TokenStore.TokenStoreError({ operation, reason: "Unavailable", detail: "down" }))
  return {
    get: () => broken("get"),
    put: () => broken("put"),
    tryLock: () => broken("lock"),
    unlock: () => broken("unlock")
  }
}

describe("TokenStore", () => {
  describe("layerMemory", () => {
    it.effect("locks expire; only the owner unlocks", () =>
      Effect.gen(function* () {
        const store = yield* TokenStore.makeMemory
        expect(yield* store.tryLock("k", "a", Duration.seconds(1))).toBe(true)
        expect(yield* store.tryLock("k", "b", Duration.seconds(1))).toBe(false)
        // Never granted twice, not even to its owner (as Redis SET NX).
        expect(yield* store.tryLock("k", "a", Duration.seconds(1))).toBe(false)
        yield* store.unlock("k", "b")
        expect(yield* store.tryLock("k", "b", Duration.seconds(1))).toBe(false)
        yield* TestClock.adjust("1 second")
        expect(yield* store.tryLock("k", "b", Duration.seconds(1))).toBe(true)
        yield* store.unlock("k", "b")
        expect(yield* store.tryLock("k", "c", Duration.seconds(1))).toBe(true)
        expect(yield* store.get("k")).toEqual(Option.none())
      })
    )
  })

  describe("a bearer with a store", () => {
    it.scoped("a second bearer adopts the first one's token: one source call for both", () =>
      Effect.gen(function* () {
        const store = yield* TokenStore.makeMemory
        const a = yield* setup(
          [t("a1", { expiresIn: "1 hour" }), t("a2", { expiresIn: "1 hour" })],
          undefined,
          store
        )
        const b = yield* setup(
          [t("b1", { expiresIn: "1 hour" }), t("b2", { expiresIn: "1 hour" })],
          undefined,
          store
        )
        expect(value(yield* a.bearer.fetch())).toBe("a1")
        expect(value(yield* b.bearer.fetch())).toBe("a1")
        expect([yield* a.source.calls, yield* b.source.calls]).toEqual([1, 0])
        // Both refresh at 90 % of the lifetime; one takes the lock, the other adopts its token.
        yield* TestClock.adjust(0.9 * HOUR)
        yield* TestClock.adjust("100 millis")
        expect((yield* a.source.calls) + (yield* b.source.calls)).toBe(2)
        const next = value(yield* a.bearer.fetch())
        expect(["a2", "b1"]).toContain(next)
        expect(value(yield* b.bearer.fetch())).toBe(next)
      })
    )

    it.scoped("bearers with different store keys do not share", () =>
      Effect.gen(function* () {
        const store = yield* TokenStore.makeMemory
        const a = yield* setup([t("a1", { expiresIn: "1 hour" })], { storeKey: "idp/client-a" }, store)
        const b = yield* setup([t("b1", { expiresIn: "1 hour" })], { storeKey: "idp/client-b" }, store)
        expect(value(yield* a.bearer.fetch())).toBe("a1")
        expect(value(yield* b.bearer.fetch())).toBe("b1")
        expect(Option.map(yield* store.get("idp/client-a"), (s) => value(s.token))).toEqual(Option.some("a1"))
      })
    )

    it.scoped("a stored token equal to the one being invalidated is not adopted again", () =>
      Effect.gen(function* () {
        const store = yield* TokenStore.makeMemory
        const a = yield* setup(
          [t("a1", { expiresIn: "1 hour" }), t("a2", { expiresIn: "1 hour" })],
          undefined,
          store
        )
        const first = yield* a.bearer.fetch()
        expect(yield* a.bearer.invalidate(first)).toBe(true)
        expect(value(yield* a.bearer.fetch())).toBe("a2")
        expect(yield* a.source.calls).toBe(2)
        expect(Option.map(yield* store.get("default"), (s) => value(s.token))).toEqual(Option.some("a2"))
      })
    )

    it.scoped("a stale stored token (past its refresh point) is renewed, not adopted", () =>
      Effect.gen(function* () {
        const store = yield* TokenStore.makeMemory
        yield* store.put("default", { token: Token.make("old", { expiresAt: HOUR }), writtenAt: 0 })
        yield* TestClock.adjust(0.95 * HOUR)
        const a = yield* setup([t("a1", { expiresIn: "1 hour" })], undefined, store)
        expect(value(yield* a.bearer.fetch())).toBe("a1")
        expect(yield* a.source.calls).toBe(1)
      })
    )

    it.scoped("a fresh token left by a previous process is adopted at start", () =>
      Effect.gen(function* () {
        const store = yield* TokenStore.makeMemory
        yield* store.put("default", { token: Token.make("left", { expiresAt: HOUR }), writtenAt: 0 })
        yield* TestClock.adjust(0.5 * HOUR)
        const a = yield* setup([t("a1", { expiresIn: "1 hour" })], undefined, store)
        expect(value(yield* a.bearer.fetch())).toBe("left")
        expect(yield* a.source.calls).toBe(0)
        // It refreshes at 90 % of what was left when adopted.
        yield* TestClock.adjust(0.9 * 0.5 * HOUR)
        expect(yield* a.source.callTimes).toEqual([0.5 * HOUR + 0.9 * 0.5 * HOUR])
      })
    )

    it.scoped("a waiter adopts the lock holder's token as soon as it is written", () =>
      Effect.gen(function* () {
        const store = yield* TokenStore.makeMemory
        const a = yield* setup([t("a1", { expiresIn: "1 hour", delay: "450 millis" })], undefined, store)
        const b = yield* setup([t("b1", { expiresIn: "1 hour" })], undefined, store)
        const fa = yield* Effect.fork(a.bearer.fetch())
        yield* settle
        const fb = yield* Effect.fork(b.bearer.fetch())
        yield* TestClock.adjust("450 millis")
        expect(value(yield* Fiber.join(fa))).toBe("a1")
        yield* TestClock.adjust("50 millis") // B polls every 100 ms: at 500 it finds a1
        expect(value(yield* Fiber.join(fb))).toBe("a1")
        expect([yield* a.source.calls, yield* b.source.calls]).toEqual([1, 0])
      })
    )

    it.scoped("a lock left by a dead process: the waiter takes it when it expires", () =>
      Effect.gen(function* () {
        const store = yield* TokenStore.makeMemory
        expect(yield* store.tryLock("default", "dead-process", Duration.seconds(1))).toBe(true)
        const b = yield* setup([t("b1", { expiresIn: "1 hour" })], undefined, store)
        const fiber = yield* Effect.fork(b.bearer.fetch())
        yield* TestClock.adjust("999 millis")
        expect(yield* b.source.calls).toBe(0)
        yield* TestClock.adjust("1 millis")
        expect(value(yield* Fiber.join(fiber))).toBe("b1")
        expect(yield* b.source.callTimes).toEqual([1000])
        // B released its lock after writing.
        expect(yield* store.tryLock("default", "someone", Duration.seconds(1))).toBe(true)
      })
    )

    it.scoped("a lock held past the wait: the waiter calls the source itself, with a warning", () => {
      const logs = captureLogs()
      return Effect.gen(function* () {
        const store = yield* TokenStore.makeMemory
        // A live holder's lock (as long as the bearer's own, 5 s): a longer one would be stale and broken.
        yield* store.tryLock("default", "stuck-process", Duration.seconds(5))
        // refreshRequestTimeout 5 s: the wait is 3/4 of it.
        const b = yield* setup([t("b1", { expiresIn: "1 hour" })], undefined, store)
        const fiber = yield* Effect.fork(b.bearer.fetch())
        yield* TestClock.adjust("3749 millis")
        expect(yield* b.source.calls).toBe(0)
        yield* TestClock.adjust("1 millis")
        expect(value(yield* Fiber.join(fiber))).toBe("b1")
        expect(yield* b.source.callTimes).toEqual([3750])
        expect(logs.lines.some((l) => l.startsWith("WARN") && l.includes("held the refresh lock"))).toBe(true)
        // The token is shared all the same.
        expect(Option.map(yield* store.get("default"), (s) => value(s.token))).toEqual(Option.some("b1"))
      }).pipe(Effect.provide(logs.layer))
    })

    it.scoped("a lock that claims to live longer than the lock TTL is stale: taken at once, no wait", () =>
      Effect.gen(function* () {
        const store = yield* TokenStore.makeMemory
        yield* store.tryLock("default", "planted", Duration.hours(1))
        const b = yield* setup([t("b1", { expiresIn: "1 hour" })], undefined, store)
        expect(value(yield* b.bearer.fetch())).toBe("b1")
        expect(yield* b.source.callTimes).toEqual([0])
      })
    )

    it.scoped("a failing store: the fetch succeeds from the source, with a warning", () => {
      const logs = captureLogs()
      return Effect.gen(function* () {
        const b = yield* setup([t("b1", { expiresIn: "1 hour" })], undefined, brokenStore("fail"))
        expect(value(yield* b.bearer.fetch())).toBe("b1")
        expect(yield* b.source.callTimes).toEqual([0])
        expect(
          logs.lines.filter(
            (l) => l.startsWith("WARN") && l.includes("the store failed (get: Token store get")
          )
        ).toHaveLength(1)
      }).pipe(Effect.provide(logs.layer))
    })

    it.scoped("a hanging store delays a fetch by one operation timeout, no more", () =>
      Effect.gen(function* () {
        const b = yield* setup([t("b1", { expiresIn: "1 hour" })], undefined, brokenStore("hang"))
        const fiber = yield* Effect.fork(b.bearer.fetch())
        yield* TestClock.adjust("1 second")
        expect(value(yield* Fiber.join(fiber))).toBe("b1")
        expect(yield* b.source.callTimes).toEqual([1000])
      })
    )

    describe("a store call that never answers inside the lock's acquire or release", () => {
      const hungAt = (operation: "tryLock" | "unlock"): TokenStore.TokenStore["Type"] => ({
        get: () => Effect.succeedNone,
        put: () => Effect.void,
        tryLock: () => (operation === "tryLock" ? Effect.never : Effect.succeed(true)),
        unlock: () => (operation === "unlock" ? Effect.never : Effect.void)
      })

      // Daemon fibers, so that a test run against a hanging implementation fails instead of waiting for them.
      /** Builds a bearer over the hung store in its own scope. */
      const build = (operation: "tryLock" | "unlock") =>
        Effect.gen(function* () {
          const scope = yield* Scope.make()
          const b = yield* Scope.extend(
            setup([t("b1", { expiresIn: "1 hour" })], undefined, hungAt(operation)),
            scope
          )
          return { ...b, scope }
        })

      it.scoped("tryLock: the fetch comes from the source after the operation timeout", () =>
        Effect.gen(function* () {
          const b = yield* build("tryLock")
          const fiber = yield* Effect.forkDaemon(b.bearer.fetch())
          yield* TestClock.adjust("1 second")
          yield* settle
          const done = yield* Fiber.poll(fiber)
          expect(Option.map(done, Exit.map(value))).toEqual(Option.some(Exit.succeed("b1")))
          expect(yield* b.source.callTimes).toEqual([1000])
          const close = yield* Effect.forkDaemon(Scope.close(b.scope, Exit.void))
          yield* settle
          expect(Option.isSome(yield* Fiber.poll(close))).toBe(true)
        })
      )

      it.scoped("tryLock: the scope closes while the call hangs", () =>
        Effect.gen(function* () {
          const b = yield* build("tryLock")
          yield* Effect.forkDaemon(b.bearer.fetch())
          yield* TestClock.adjust("500 millis")
          const close = yield* Effect.forkDaemon(Scope.close(b.scope, Exit.void))
          yield* settle
          expect(Option.isSome(yield* Fiber.poll(close))).toBe(true)
          expect(yield* b.source.calls).toBe(0)
        })
      )

      it.scoped("unlock: the fetch returns after the operation timeout, and the scope closes", () =>
        Effect.gen(function* () {
          const b = yield* build("unlock")
          const fiber = yield* Effect.forkDaemon(b.bearer.fetch())
          yield* TestClock.adjust("1 second")
          yield* settle
          const done = yield* Fiber.poll(fiber)
          expect(Option.map(done, Exit.map(value))).toEqual(Option.some(Exit.succeed("b1")))
          expect(yield* b.source.callTimes).toEqual([0])
          const close = yield* Effect.forkDaemon(Scope.close(b.scope, Exit.void))
          yield* settle
          expect(Option.isSome(yield* Fiber.poll(close))).toBe(true)
        })
      )

      it.scoped("unlock: the scope closes while the call hangs", () =>
        Effect.gen(function* () {
          const b = yield* build("unlock")
          yield* Effect.forkDaemon(b.bearer.fetch())
          yield* TestClock.adjust("500 millis")
          const close = yield* Effect.forkDaemon(Scope.close(b.scope, Exit.void))
          yield* settle
          expect(Option.isSome(yield* Fiber.poll(close))).toBe(true)
        })
      )
    })

    it.scoped("a source failure under the lock releases the lock and reaches the bearer", () =>
      Effect.gen(function* () {
        const store = yield* TokenStore.makeMemory
        const b = yield* setup(
          [TestTokenSource.fail("nope", { retryable: true }), t("b1", { expiresIn: "1 hour" })],
          undefined,
          store
        )
        const fiber = yield* Effect.fork(b.bearer.fetch({ reportError: true }))
        const error = yield* Effect.flip(Fiber.join(fiber))
        expect(error._tag).toBe("RenewalError")
        expect(yield* store.tryLock("default", "someone", Duration.millis(1))).toBe(true)
        yield* TestClock.adjust("1 second")
        expect(value(yield* b.bearer.fetch())).toBe("b1")
      })
    )

    it.scoped(
      "a hung source under the lock: the bearer's timeout interrupts it and the lock is released",
      () =>
        Effect.gen(function* () {
          const memory = yield* TokenStore.makeMemory
          const locks: Array<[string, number]> = []
          const record = (what: string) =>
            Effect.flatMap(Clock.currentTimeMillis, (now) =>
              Effect.sync(() => {
                locks.push([what, now])
              })
            )
          const store: TokenStore.TokenStore["Type"] = {
            ...memory,
            tryLock: (key, owner, ttl) =>
              Effect.tap(memory.tryLock(key, owner, ttl), (ok) =>
                record(`lock ${Duration.toMillis(ttl)} ms: ${ok}`)
              ),
            unlock: (key, owner) => Effect.zipRight(memory.unlock(key, owner), record("unlock"))
          }
          const b = yield* setup(
            [TestTokenSource.hang, t("b1", { expiresIn: "1 hour" })],
            {
              refreshRequestTimeout: "2 seconds"
            },
            store
          )
          yield* Effect.fork(b.bearer.fetch())
          yield* TestClock.adjust("2 seconds")
          // The lock lives as long as the refreshRequestTimeout; the finalizer releases it when the timeout
          // interrupts the source.
          expect(locks).toEqual([
            ["lock 2000 ms: true", 0],
            ["unlock", 2000]
          ])
          yield* TestClock.adjust("1 second")
          expect(value(yield* b.bearer.fetch())).toBe("b1")
          expect(yield* b.source.callTimes).toEqual([0, 3000])
        })
    )
  })

  describe("withStore by hand", () => {
    it.effect("two concurrent fetches through one wrapper call the source once", () =>
      Effect.gen(function* () {
        const store = yield* TokenStore.makeMemory
        const { source, test } = yield* TestTokenSource.make([
          t("s1", { expiresIn: "1 hour", delay: "500 millis" }),
          t("s2", { expiresIn: "1 hour", delay: "500 millis" })
        ])
        const shared = yield* TokenStore.withStore(source, store, { key: "k" })
        const fiber = yield* Effect.fork(Effect.all([shared.fetch, shared.fetch], { concurrency: 2 }))
        yield* TestClock.adjust("500 millis")
        expect(yield* test.calls).toBe(1)
        // The second one polls every 100 ms and adopts the first one's token at the poll after it was written.
        yield* TestClock.adjust("100 millis")
        expect((yield* Fiber.join(fiber)).map(value)).toEqual(["s1", "s1"])
        expect(yield* test.callTimes).toEqual([0])
      })
    )

    it.effect("an invalid option fails with a TokenStoreError, never silently the default", () =>
      Effect.gen(function* () {
        const store = yield* TokenStore.makeMemory
        const { source } = yield* TestTokenSource.make([t("s1", { expiresIn: "1 hour" })])
        const message = (options: Omit<TokenStore.SharedOptions, "key">) =>
          Effect.map(Effect.flip(TokenStore.withStore(source, store, { key: "k", ...options })), (e) => [
            e.operation,
            e.reason,
            e.message
          ])
        expect(yield* message({ lockTtl: -1 })).toEqual([
          "open",
          "InvalidOptions",
          "Token store open failed (InvalidOptions): lockTtl: expected a non-negative number of milliseconds, got -1"
        ])
        expect((yield* message({ pollInterval: 0 }))[2]).toBe(
          "Token store open failed (InvalidOptions): pollInterval: expected a positive duration, got 0 ms"
        )
        expect((yield* message({ waitTimeout: "forever" as Duration.DurationInput }))[2]).toBe(
          'Token store open failed (InvalidOptions): waitTimeout: expected a duration, got "forever"'
        )
        expect((yield* message({ freshFraction: 1.5 }))[2]).toBe(
          "Token store open failed (InvalidOptions): freshFraction: expected a number in (0, 1], got 1.5"
        )
        expect(
          yield* Effect.either(TokenStore.withStore(source, store, { key: "k", waitTimeout: 0 }))
        ).toMatchObject({ _tag: "Right" })
      })
    )

    it.effect("an option of the wrong type fails with a TokenStoreError, never silently the default", () =>
      Effect.gen(function* () {
        const store = yield* TokenStore.makeMemory
        const { source } = yield* TestTokenSource.make([t("s1", { expiresIn: "1 hour" })])
        const message = (options: Record<string, unknown>) =>
          Effect.map(
            Effect.flip(
              TokenStore.withStore(source, store, { key: "k", ...options } as TokenStore.SharedOptions)
            ),
            (e) => `${e.reason}: ${e.message}`
          )
        expect(yield* message({ key: 42 })).toBe(
          "InvalidOptions: Token store open failed (InvalidOptions): key: expected a non-empty string, got 42"
        )
        expect(yield* message({ key: "" })).toBe(
          'InvalidOptions: Token store open failed (InvalidOptions): key: expected a non-empty string, got ""'
        )
        expect(yield* message({ name: true })).toBe(
          "InvalidOptions: Token store open failed (InvalidOptions): name: expected a non-empty string, got true"
        )
        expect(yield* message({ freshFraction: "0.5" })).toBe(
          'InvalidOptions: Token store open failed (InvalidOptions): freshFraction: expected a number in (0, 1], got "0.5"'
        )
        expect(yield* message({ lockTtl: true })).toBe(
          'InvalidOptions: Token store open failed (InvalidOptions): lockTtl: expected a duration, got "true"'
        )
      })
    )

    it.effect("shares a source outside a bearer", () =>
      Effect.gen(function* () {
        const store = yield* TokenStore.makeMemory
        const { source, test } = yield* TestTokenSource.make([t("s1", { expiresIn: "1 hour" })])
        const one = yield* TokenStore.withStore(source, store, { key: "k" })
        const two = yield* TokenStore.withStore(source, store, { key: "k" })
        expect(value(yield* one.fetch)).toBe("s1")
        expect(value(yield* two.fetch)).toBe("s1")
        expect(yield* test.calls).toBe(1)
        const failing = yield* TokenStore.withStore(
          { fetch: Effect.fail(new TokenSourceError({ message: "x" })) },
          brokenStore("fail"),
          { key: "k" }
        )
        expect((yield* Effect.flip(failing.fetch))._tag).toBe("TokenSourceError")
      })
    )
  })
})
