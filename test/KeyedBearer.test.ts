/**
 * Keyed bearers: one bearer per key, shared by the key's callers, closed after `idleTimeToLive`, evicted
 * least recently used at capacity, stopped when the service closes. Every instant is on the TestClock.
 */
import { FetchHttpClient, HttpClient } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import {
  Clock,
  Data,
  Duration,
  Effect,
  Exit,
  Fiber,
  Metric,
  MetricLabel,
  Option,
  Scope,
  TestClock
} from "effect"
import { BearerHttpClient, Errors, KeyedBearer, Metrics, Token, TokenSource } from "effect-renewable-bearer"
import { settle, value } from "./utils/bearer.js"
import { loopbackServer } from "../support/loopback.js"

class Audience extends Data.Class<{ readonly audience: string }> {}
const aud = (audience: string) => new Audience({ audience })

/**
 * A source per key that answers after `delayMillis` with `<audience>#<n>` (the n-th call for that key), tokens
 * valid 1 hour; `calls` counts per audience.
 */
const countingSources = (delayMillis = 0) => {
  const calls = new Map<string, number>()
  const source = (key: Audience) =>
    Effect.succeed(
      TokenSource.TokenSource.of({
        fetch: Effect.suspend(() => {
          const n = (calls.get(key.audience) ?? 0) + 1
          calls.set(key.audience, n)
          const answer = Effect.map(Clock.currentTimeMillis, (now) =>
            Token.make(`${key.audience}#${n}`, { expiresAt: now + 3_600_000 })
          )
          return delayMillis === 0 ? answer : Effect.zipRight(Effect.sleep(delayMillis), answer)
        })
      })
    )
  const total = () => Array.from(calls.values()).reduce((a, b) => a + b, 0)
  return { source, calls, total }
}

const jitterOff = { jitter: 0 } as const

describe("KeyedBearer", { timeout: 30_000 }, () => {
  it.scoped(
    "a cold herd of 100 keys x 10 callers makes exactly 100 source calls, each key its own token",
    () =>
      Effect.gen(function* () {
        const sources = countingSources(20)
        const keyed = yield* KeyedBearer.make({ source: sources.source, bearer: jitterOff })
        const keys = Array.from({ length: 100 }, (_, i) => aud(`api-${i}`))
        const fibers = yield* Effect.forEach(keys, (key) =>
          Effect.forEach(Array.from({ length: 10 }), () => Effect.fork(keyed.fetch(key)))
        )
        yield* TestClock.adjust("20 millis")
        const tokens = yield* Effect.forEach(fibers, (perKey) => Fiber.joinAll(perKey))
        expect(tokens.map((perKey) => new Set(perKey.map(value)))).toEqual(
          keys.map((key) => new Set([`${key.audience}#1`]))
        )
        expect(sources.total()).toBe(100)
        expect(yield* keyed.size).toBe(100)
        // Equal keys (a new struct with the same audience) share the bearer: still a hit, no call.
        expect(value(yield* keyed.fetch(aud("api-7")))).toBe("api-7#1")
        expect(sources.total()).toBe(100)
      })
  )

  it.scoped("a bearer idle for idleTimeToLive is closed at that instant; a use restarts the idle time", () =>
    Effect.gen(function* () {
      const sources = countingSources()
      const keyed = yield* KeyedBearer.make({
        source: sources.source,
        bearer: jitterOff,
        idleTimeToLive: "5 minutes"
      })
      const key = aud("billing")
      const bearer = yield* Effect.scoped(keyed.get(key))
      expect(value(yield* bearer.fetch())).toBe("billing#1")
      expect(yield* keyed.idleSize).toBe(1)
      // A use at 4 minutes makes the bearer idle again from then: it closes at 9 minutes, not 5.
      yield* TestClock.adjust("4 minutes")
      yield* keyed.fetch(key)
      yield* TestClock.adjust(Duration.millis(5 * 60_000 - 1))
      expect(yield* keyed.size).toBe(1)
      yield* TestClock.adjust("1 millis")
      yield* settle
      expect(yield* keyed.size).toBe(0)
      // Its fiber is stopped: the bearer refuses every fetch, and the next use of the key builds a new one.
      expect(yield* Effect.flip(bearer.fetch())).toBeInstanceOf(Errors.StoppedError)
      expect(value(yield* keyed.fetch(key))).toBe("billing#2")
      expect(sources.calls.get("billing")).toBe(2)
    })
  )

  it.scoped("a bearer in use is never closed for idleness; its idle time starts when the last use ends", () =>
    Effect.gen(function* () {
      const sources = countingSources()
      const keyed = yield* KeyedBearer.make({ source: sources.source, idleTimeToLive: "1 minute" })
      const scope = yield* Scope.make()
      yield* keyed.get(aud("held")).pipe(Scope.extend(scope))
      yield* TestClock.adjust("10 minutes")
      expect(yield* keyed.size).toBe(1)
      yield* Scope.close(scope, Exit.void)
      yield* TestClock.adjust(Duration.millis(59_999))
      expect(yield* keyed.size).toBe(1)
      yield* TestClock.adjust("1 millis")
      yield* settle
      expect(yield* keyed.size).toBe(0)
    })
  )

  it.scoped("at capacity a new key evicts the least recently used idle bearer and stops it", () =>
    Effect.gen(function* () {
      const sources = countingSources()
      const keyed = yield* KeyedBearer.make({ source: sources.source, capacity: 2 })
      const a = yield* Effect.scoped(keyed.get(aud("a")))
      const b = yield* Effect.scoped(keyed.get(aud("b")))
      yield* a.fetch()
      yield* b.fetch()
      // `a` is used again, so `b` is now the least recently used.
      yield* keyed.fetch(aud("a"))
      expect(value(yield* keyed.fetch(aud("c")))).toBe("c#1")
      expect(yield* keyed.size).toBe(2)
      expect(yield* Effect.flip(b.fetch())).toBeInstanceOf(Errors.StoppedError)
      expect(value(yield* a.fetch())).toBe("a#1")
      // `b` comes back as a new bearer (a new source call), evicting `a`, now the least recently used.
      expect(value(yield* keyed.fetch(aud("b")))).toBe("b#2")
      expect(yield* Effect.flip(a.fetch())).toBeInstanceOf(Errors.StoppedError)
      expect(yield* keyed.size).toBe(2)
    })
  )

  it.scoped("when every bearer is in use a new key waits for one to become idle, within its timeout", () =>
    Effect.gen(function* () {
      const sources = countingSources()
      const keyed = yield* KeyedBearer.make({ source: sources.source, capacity: 1 })
      const scope = yield* Scope.make()
      yield* keyed.get(aud("busy")).pipe(Scope.extend(scope))
      // With a timeout the wait fails at that instant with a RenewalError of reason Timeout.
      const bounded = yield* Effect.fork(keyed.fetch(aud("late"), { timeout: "1 second" }))
      yield* TestClock.adjust(Duration.millis(999))
      expect(yield* Fiber.poll(bounded)).toEqual(Option.none())
      yield* TestClock.adjust("1 millis")
      const error = yield* Effect.flip(Fiber.join(bounded))
      expect(error._tag === "RenewalError" && error.reason).toBe("Timeout")
      // Without one it waits until the busy bearer is released, then evicts it.
      const waiting = yield* Effect.fork(keyed.fetch(aud("next")))
      yield* settle
      expect(yield* Fiber.poll(waiting)).toEqual(Option.none())
      yield* Scope.close(scope, Exit.void)
      expect(value(yield* Fiber.join(waiting))).toBe("next#1")
      expect(yield* keyed.size).toBe(1)
      expect(sources.calls.get("late")).toBeUndefined()
    })
  )

  it.scoped(
    "a fetch waiting for its key's token holds the bearer: no idle close, no eviction, until it is answered",
    () =>
      Effect.gen(function* () {
        // Every key's source answers after 4 s (within refreshRequestTimeout); a bearer idle for 1 s is
        // closed; one bearer at most.
        const sources = countingSources(4_000)
        const keyed = yield* KeyedBearer.make({
          source: sources.source,
          idleTimeToLive: "1 second",
          capacity: 1
        })
        // The key's bearer is built first (nothing fetched yet), so the fetch finds it built and must wait.
        yield* Effect.scoped(keyed.get(aud("slow")))
        const waiting = yield* Effect.fork(keyed.fetch(aud("slow")))
        yield* TestClock.adjust("2 seconds")
        expect(yield* Fiber.poll(waiting)).toEqual(Option.none())
        expect(yield* keyed.size).toBe(1)
        // At capacity, a new key cannot evict the bearer of a waiting fetch: it times out waiting for a slot.
        const other = yield* Effect.fork(keyed.fetch(aud("other"), { timeout: "1 second" }))
        yield* TestClock.adjust("1 second")
        const error = yield* Effect.flip(Fiber.join(other))
        expect(error._tag === "RenewalError" && error.reason).toBe("Timeout")
        yield* TestClock.adjust("1 second")
        expect(value(yield* Fiber.join(waiting))).toBe("slow#1")
        // Answered, the bearer is idle: the next fetch of its key is served from its cache.
        expect(value(yield* keyed.fetch(aud("slow")))).toBe("slow#1")
        expect(sources.total()).toBe(1)
      })
  )

  it.effect(
    "closing the service stops every bearer: waiting callers and later uses fail with StoppedError",
    () =>
      Effect.gen(function* () {
        const hanging = (_key: Audience) =>
          Effect.succeed(TokenSource.TokenSource.of({ fetch: Effect.never }))
        const scope = yield* Scope.make()
        const keyed = yield* KeyedBearer.make({ source: hanging }).pipe(Scope.extend(scope))
        // "y" is built before its fetch (which then waits holding it), "x" is built by its fetch.
        yield* Effect.scoped(keyed.get(aud("y")))
        const waiters = yield* Effect.forEach(["x", "y"], (a) => Effect.fork(keyed.fetch(aud(a))))
        yield* settle
        expect(yield* keyed.size).toBe(2)
        yield* Scope.close(scope, Exit.void)
        for (const waiter of waiters) {
          expect(yield* Effect.flip(Fiber.join(waiter))).toBeInstanceOf(Errors.StoppedError)
        }
        expect(yield* Effect.flip(keyed.fetch(aud("x")))).toBeInstanceOf(Errors.StoppedError)
        expect(yield* keyed.size).toBe(0)
      })
  )

  it.scoped("metrics carry the label chosen per key (a constant by default), never the raw key", () =>
    Effect.gen(function* () {
      const sources = countingSources()
      const byHost = yield* KeyedBearer.make({
        source: sources.source,
        label: (key) => `tenant-${key.audience.length}`
      })
      const constant = yield* KeyedBearer.make({ source: sources.source })
      const hits = (bearer: string) =>
        Effect.map(
          Metric.value(Metric.taggedWithLabels(Metrics.cacheHits, [MetricLabel.make("bearer", bearer)])),
          (s) => s.count
        )
      const before = yield* hits("keyed")
      for (const key of ["abc", "xyz", "abc"]) yield* byHost.fetch(aud(key))
      for (const key of ["abc", "xyz", "abc"]) yield* constant.fetch(aud(key))
      expect(yield* hits("tenant-3")).toBe(1)
      expect((yield* hits("keyed")) - before).toBe(1)
      expect(yield* hits("abc")).toBe(0)
    })
  )

  it.scoped("a failing source fails that use with RenewalError SourceError; the next use tries again", () =>
    Effect.gen(function* () {
      let attempts = 0
      const keyed = yield* KeyedBearer.make({
        source: (_key: Audience) =>
          Effect.suspend(() => {
            attempts += 1
            return attempts === 1
              ? Effect.fail("no credentials yet")
              : Effect.succeed(TokenSource.fromToken(Token.make("ok")))
          })
      })
      const error = yield* Effect.flip(keyed.fetch(aud("k")))
      expect(error._tag === "RenewalError" && error.reason).toBe("SourceError")
      expect(yield* keyed.size).toBe(0)
      expect(value(yield* keyed.fetch(aud("k")))).toBe("ok")
    })
  )

  it.scoped("options out of range fail with InvalidOptionsError when the service is built", () =>
    Effect.gen(function* () {
      const source = () => Effect.succeed(TokenSource.fromToken(Token.make("x")))
      const errors = yield* Effect.all([
        Effect.flip(KeyedBearer.make({ source, capacity: 0 })),
        Effect.flip(KeyedBearer.make({ source, idleTimeToLive: -1 })),
        Effect.flip(KeyedBearer.make({ source, bearer: { jitter: 2 } }))
      ])
      expect(errors.map((e) => e.option)).toEqual(["capacity", "idleTimeToLive", "jitter"])
    })
  )
})

describe("BearerHttpClient.withKeyedBearer", { timeout: 20_000 }, () => {
  it.scopedLive(
    "picks the token of each request's origin; an API that checks the audience accepts each",
    () =>
      Effect.gen(function* () {
        const calls = new Map<string, number>()
        const keyed = yield* KeyedBearer.make({
          source: (key: Audience) =>
            Effect.succeed(
              TokenSource.TokenSource.of({
                fetch: Effect.sync(() => {
                  const n = (calls.get(key.audience) ?? 0) + 1
                  calls.set(key.audience, n)
                  return Token.make(`aud=${key.audience};n=${n}`, { expiresAt: Date.now() + 3_600_000 })
                })
              })
            ),
          label: () => "per-origin"
        })
        /** An API that accepts a token only for its own origin; `revokeFirst` also rejects each first token. */
        const api = (revokeFirst: boolean) =>
          Effect.gen(function* () {
            let origin = ""
            const server = yield* loopbackServer((request) => {
              const token = (request.headers["authorization"] ?? "").replace(/^Bearer /, "")
              const ok = token.startsWith(`aud=${origin};`) && !(revokeFirst && token.endsWith(";n=1"))
              return ok ? { status: 200, body: { token } } : { status: 401, body: { error: "invalid_token" } }
            })
            origin = server.url
            return server
          })
        const billing = yield* api(false)
        const search = yield* api(true)
        const client = (yield* HttpClient.HttpClient).pipe(
          BearerHttpClient.withKeyedBearer(
            keyed,
            (request) => new Audience({ audience: new URL(request.url).origin }),
            { failOnUnauthorized: true }
          )
        )
        const bodies: Array<unknown> = []
        for (const url of [billing.url, search.url, billing.url, search.url]) {
          const response = yield* client.get(`${url}/v1/me`)
          bodies.push(yield* response.json)
        }
        expect(bodies).toEqual([
          { token: `aud=${billing.url};n=1` },
          { token: `aud=${search.url};n=2` },
          { token: `aud=${billing.url};n=1` },
          { token: `aud=${search.url};n=2` }
        ])
        // Search's first token was rejected and renewed once; billing's was never touched.
        expect(Object.fromEntries(calls)).toEqual({ [billing.url]: 1, [search.url]: 2 })
        expect(yield* keyed.size).toBe(2)
      }).pipe(Effect.provide(FetchHttpClient.layer))
  )
})
