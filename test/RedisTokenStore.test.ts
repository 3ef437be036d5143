import { describe, expect, it } from "@effect/vitest"
import { Config, ConfigProvider, Context, Duration, Effect, Layer, Logger, Option, Redacted } from "effect"
import { Redis } from "ioredis"
import * as ChildProcess from "node:child_process"
import { RenewableBearer, TestTokenSource, Token } from "effect-renewable-bearer"
import * as RedisTokenStore from "effect-renewable-bearer/RedisTokenStore"
import * as TokenStore from "effect-renewable-bearer/TokenStore"
import {
  generationBounds,
  killedHolderRun,
  redisAnswers,
  spawnWorker,
  tokenServer,
  type WorkerResult
} from "../support/processes.js"
import { closedPort } from "../support/loopback.js"

const REDIS_URL = process.env.REDIS_URL

const answers = redisAnswers

const reachable = REDIS_URL !== undefined && (await answers(REDIS_URL))
const redisServerBinary = ChildProcess.spawnSync("redis-server", ["--version"]).status === 0
if (!reachable) {
  console.warn(
    `RedisTokenStore: tests against a real Redis are SKIPPED: REDIS_URL is ${
      REDIS_URL === undefined ? "not set" : `${REDIS_URL} but no Redis answers there`
    }. Set REDIS_URL (e.g. redis://127.0.0.1:6379) to run them.`
  )
}

/** A key prefix unique to this test run. */
const runPrefix = `effect-renewable-bearer:test:${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}:`
let prefixCounter = 0
const uniquePrefix = () => `${runPrefix}${++prefixCounter}:`

/** A raw ioredis client for looking behind the store's back; closed with the scope. */
const rawClient = (url: string) =>
  Effect.acquireRelease(
    Effect.sync(() => new Redis(url, { lazyConnect: false, maxRetriesPerRequest: 1 })),
    (client) => Effect.promise(() => client.quit().catch(() => undefined))
  )

const stored = (value: string, expiresInMillis = 60_000) => ({
  token: Token.make(value, { expiresAt: Date.now() + expiresInMillis }),
  writtenAt: Date.now()
})
const valueOf = (s: Option.Option<TokenStore.StoredToken>) =>
  Option.map(s, (x) => Redacted.value(x.token.value))

/** Captures log lines as `LEVEL message`. */
const captureLogs = () => {
  const lines: Array<string> = []
  const logger = Logger.make(({ logLevel, message }) => {
    lines.push(`${logLevel.label} ${Array.isArray(message) ? message.join(" ") : String(message)}`)
  })
  return { lines, layer: Logger.replace(Logger.defaultLogger, logger) }
}

describe("RedisTokenStore", () => {
  describe("without Redis", () => {
    it.scoped("an invalid timeout fails the build with a TokenStoreError, never silently the default", () =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(
          RedisTokenStore.make({ keyPrefix: "t:", url: "redis://127.0.0.1:1", operationTimeout: -5 })
        )
        expect([error._tag, error.operation, error.reason]).toEqual([
          "TokenStoreError",
          "open",
          "InvalidOptions"
        ])
        expect(error.message).toBe(
          "Token store open failed (InvalidOptions): operationTimeout: expected a non-negative number of milliseconds, got -5"
        )
        const zero = yield* Effect.flip(RedisTokenStore.make({ keyPrefix: "t:", connectTimeout: "0 millis" }))
        expect(zero.message).toBe(
          "Token store open failed (InvalidOptions): connectTimeout: expected a positive duration, got 0 ms"
        )
      })
    )

    it.scoped(
      "an option of the wrong type fails the build with a TokenStoreError, never silently ignored",
      () =>
        Effect.gen(function* () {
          const message = (options: Record<string, unknown>) =>
            Effect.map(
              Effect.flip(RedisTokenStore.make({ keyPrefix: "t:", ...options } as RedisTokenStore.Options)),
              (e) => `${e.operation} ${e.reason}: ${e.detail}`
            )
          expect(yield* message({ tls: "yes" })).toBe(
            'open InvalidOptions: tls: expected a boolean, got "yes"'
          )
          expect(yield* message({ port: "6379" })).toBe(
            'open InvalidOptions: port: expected an integer in [0, 65535], got "6379"'
          )
          expect(yield* message({ port: 70_000 })).toBe(
            "open InvalidOptions: port: expected an integer in [0, 65535], got 70000"
          )
          expect(yield* message({ db: -1 })).toBe(
            "open InvalidOptions: db: expected an integer in [0, 2147483647], got -1"
          )
          expect(yield* message({ password: "hunter2" })).toBe(
            'open InvalidOptions: password: expected a Redacted string, got "hunter2"'
          )
          expect(yield* message({ url: 6379 })).toBe(
            "open InvalidOptions: url: expected a string or a Redacted string, got number"
          )
          expect(yield* message({ keyPrefix: undefined })).toBe(
            "open InvalidOptions: keyPrefix: expected a string, got undefined"
          )
          expect(yield* message({ encryptionKey: "k" })).toBe(
            'open InvalidOptions: encryptionKey: expected a Redacted string, got "k"'
          )
        })
    )

    it.scopedLive("an unreachable Redis: the layer builds, operations fail fast, fetches succeed", () => {
      const logs = captureLogs()
      return Effect.gen(function* () {
        const port = yield* closedPort
        const started = Date.now()
        const context = yield* Layer.build(
          RenewableBearer.layer({ refreshRequestTimeout: "2 seconds" }).pipe(
            Layer.provideMerge(TestTokenSource.layer([TestTokenSource.token("t1", { expiresIn: "1 hour" })])),
            Layer.provideMerge(
              RedisTokenStore.layer({
                url: Redacted.make(`redis://127.0.0.1:${port}`),
                keyPrefix: uniquePrefix(),
                connectTimeout: "300 millis"
              })
            )
          )
        )
        expect(Date.now() - started).toBeLessThan(3_000)
        const store = Context.get(context, TokenStore.TokenStore)
        const before = Date.now()
        const error = yield* Effect.flip(store.get("k"))
        expect(error).toMatchObject({ _tag: "TokenStoreError", operation: "get", reason: "Unavailable" })
        expect(Date.now() - before).toBeLessThan(600)
        const bearer = Context.get(context, RenewableBearer.RenewableBearer)
        const token = yield* bearer.fetch()
        expect(Redacted.value(token.value)).toBe("t1")
        expect(Date.now() - before).toBeLessThan(1_500)
        expect(yield* Context.get(context, TestTokenSource.TestTokenSource).calls).toBe(1)
        expect(
          logs.lines.some((l) => l.startsWith("WARN") && l.includes("calling the token source directly"))
        ).toBe(true)
      }).pipe(Effect.provide(logs.layer))
    })
  })

  describe.skipIf(!reachable)(`against the Redis at REDIS_URL`, () => {
    const url = REDIS_URL ?? ""
    const make = (options?: Partial<RedisTokenStore.Options>) =>
      RedisTokenStore.make({ url: Redacted.make(url), keyPrefix: uniquePrefix(), ...options })

    it.scopedLive("a token round-trips with an expiry equal to its remaining lifetime (PX)", () =>
      Effect.gen(function* () {
        const prefix = uniquePrefix()
        const store = yield* make({ keyPrefix: prefix })
        const raw = yield* rawClient(url)
        expect(yield* store.get("k")).toEqual(Option.none())
        yield* store.put("k", stored("s3cr3t", 5_000))
        expect(valueOf(yield* store.get("k"))).toEqual(Option.some("s3cr3t"))
        const pttl = yield* Effect.promise(() => raw.pttl(`${prefix}token:k`))
        expect(pttl).toBeGreaterThan(4_000)
        expect(pttl).toBeLessThanOrEqual(5_000)
        // A token without expiration has no TTL; an expired one is not written.
        yield* store.put("forever", { token: Token.make("f"), writtenAt: Date.now() })
        expect(yield* Effect.promise(() => raw.pttl(`${prefix}token:forever`))).toBe(-1)
        yield* store.put("gone", stored("old", -1))
        expect(yield* Effect.promise(() => raw.exists(`${prefix}token:gone`))).toBe(0)
        // A value that is not a record reads as no token.
        yield* Effect.promise(() => raw.set(`${prefix}token:k`, "{garbage"))
        expect(yield* store.get("k")).toEqual(Option.none())
        yield* Effect.promise(() => raw.set(`${prefix}token:k`, JSON.stringify({ v: 9, value: "x" })))
        expect(yield* store.get("k")).toEqual(Option.none())
        yield* Effect.promise(() => raw.del(`${prefix}token:k`, `${prefix}token:forever`))
      })
    )

    it.scopedLive("the lock: SET NX PX, released only by its owner, expires by itself", () =>
      Effect.gen(function* () {
        const prefix = uniquePrefix()
        const a = yield* make({ keyPrefix: prefix })
        const b = yield* make({ keyPrefix: prefix })
        const raw = yield* rawClient(url)
        expect(yield* a.tryLock("k", "owner-a", Duration.seconds(5))).toBe(true)
        expect(yield* b.tryLock("k", "owner-b", Duration.seconds(5))).toBe(false)
        expect(yield* Effect.promise(() => raw.get(`${prefix}lock:k`))).toBe("owner-a")
        const pttl = yield* Effect.promise(() => raw.pttl(`${prefix}lock:k`))
        expect(pttl).toBeGreaterThan(4_000)
        yield* b.unlock("k", "owner-b")
        expect(yield* Effect.promise(() => raw.get(`${prefix}lock:k`))).toBe("owner-a")
        yield* a.unlock("k", "owner-a")
        expect(yield* Effect.promise(() => raw.exists(`${prefix}lock:k`))).toBe(0)
        expect(yield* a.tryLock("k", "dead", Duration.millis(100))).toBe(true)
        yield* Effect.sleep("150 millis")
        expect(yield* b.tryLock("k", "owner-b", Duration.seconds(5))).toBe(true)
        yield* b.unlock("k", "owner-b")
      })
    )

    it.scopedLive(
      "a lock key without a TTL (PTTL -1) or with a longer one is stale: broken and taken at once",
      () =>
        Effect.gen(function* () {
          const prefix = uniquePrefix()
          const store = yield* make({ keyPrefix: prefix })
          const raw = yield* rawClient(url)
          const lock = `${prefix}lock:k`
          // Written by hand, without PX: before, every renewal waited for ever behind it.
          yield* Effect.promise(() => raw.set(lock, "planted"))
          expect(yield* Effect.promise(() => raw.pttl(lock))).toBe(-1)
          expect(yield* store.tryLock("k", "me", Duration.seconds(5))).toBe(true)
          expect(yield* Effect.promise(() => raw.get(lock))).toBe("me")
          const pttl = yield* Effect.promise(() => raw.pttl(lock))
          expect(pttl).toBeGreaterThan(4_000)
          expect(pttl).toBeLessThanOrEqual(5_000)
          yield* store.unlock("k", "me")
          // A TTL of a year: stale too. A TTL within the taker's: a live lock, kept.
          yield* Effect.promise(() => raw.set(lock, "planted", "PX", 365 * 24 * 3_600_000))
          expect(yield* store.tryLock("k", "me", Duration.seconds(5))).toBe(true)
          yield* store.unlock("k", "me")
          yield* Effect.promise(() => raw.set(lock, "holder", "PX", 4_000))
          expect(yield* store.tryLock("k", "me", Duration.seconds(5))).toBe(false)
          expect(yield* Effect.promise(() => raw.get(lock))).toBe("holder")
          // Only its owner releases it.
          yield* store.unlock("k", "me")
          expect(yield* Effect.promise(() => raw.get(lock))).toBe("holder")
          yield* Effect.promise(() => raw.del(lock))
        })
    )

    it.scopedLive(
      "a record larger than maxRecordBytes: never sent by Redis, TooLarge; a larger put is refused",
      () =>
        Effect.gen(function* () {
          const prefix = uniquePrefix()
          const store = yield* make({ keyPrefix: prefix })
          const raw = yield* rawClient(url)
          expect(RedisTokenStore.DEFAULT_MAX_RECORD_BYTES).toBe(65_536)
          yield* Effect.promise(() => raw.set(`${prefix}token:k`, "x".repeat(10 * 1024 * 1024)))
          const error = yield* Effect.flip(store.get("k"))
          expect([error.operation, error.reason, error.message]).toEqual([
            "get",
            "TooLarge",
            "Token store get failed (TooLarge): the record is 10485760 bytes, more than maxRecordBytes (65536); nothing more was read"
          ])
          const small = yield* make({ keyPrefix: prefix, maxRecordBytes: 100 })
          const refused = yield* Effect.flip(small.put("other", stored("a".repeat(200))))
          expect([refused.operation, refused.reason]).toEqual(["put", "TooLarge"])
          expect(yield* Effect.promise(() => raw.exists(`${prefix}token:other`))).toBe(0)
          yield* Effect.promise(() => raw.del(`${prefix}token:k`))
        })
    )

    it.scopedLive(
      "refused credentials are reported as such (Unauthenticated), not as an unreachable Redis",
      () => {
        const logs = captureLogs()
        return Effect.gen(function* () {
          const store = yield* make({
            username: `no-such-user-${Math.random().toString(36).slice(2)}`,
            password: Redacted.make("wrong"),
            connectTimeout: "1 second"
          })
          const error = yield* Effect.flip(store.get("k"))
          expect([error.operation, error.reason]).toEqual(["get", "Unauthenticated"])
          expect(error.message).toMatch(
            /^Token store get failed \(Unauthenticated\): Redis refused the credentials: WRONGPASS/
          )
          expect(error.message).not.toContain("wrong")
          expect(logs.lines.filter((l) => l.includes("RedisTokenStore"))).toEqual([
            expect.stringMatching(/^WARN RedisTokenStore: Redis refused the credentials \(WRONGPASS/)
          ])
        }).pipe(Effect.provide(logs.layer))
      }
    )

    it.scopedLive("encryption at rest: same key reads, wrong key or no key reads nothing", () =>
      Effect.gen(function* () {
        const prefix = uniquePrefix()
        const key = Redacted.make("a shared secret of the fleet, 32+ random bytes")
        const writer = yield* make({ keyPrefix: prefix, encryptionKey: key })
        const reader = yield* make({ keyPrefix: prefix, encryptionKey: key })
        const wrong = yield* make({ keyPrefix: prefix, encryptionKey: Redacted.make("wrong") })
        const clear = yield* make({ keyPrefix: prefix })
        const raw = yield* rawClient(url)
        yield* writer.put("k", stored("s3cr3t"))
        expect(valueOf(yield* reader.get("k"))).toEqual(Option.some("s3cr3t"))
        expect(yield* wrong.get("k")).toEqual(Option.none())
        expect(yield* clear.get("k")).toEqual(Option.none())
        const text = yield* Effect.promise(() => raw.get(`${prefix}token:k`))
        expect(text).not.toContain("s3cr3t")
        expect(JSON.parse(text ?? "")).toMatchObject({ v: 1, alg: "A256GCM" })
        yield* Effect.promise(() => raw.del(`${prefix}token:k`))
      })
    )

    it.scopedLive("layerConfig reads the connection from Config", () =>
      Effect.gen(function* () {
        const context = yield* Layer.build(
          RedisTokenStore.layerConfig({
            url: Config.redacted("REDIS_URL"),
            keyPrefix: Config.string("TOKEN_STORE_PREFIX"),
            encryptionKey: Config.redacted("TOKEN_STORE_KEY")
          })
        ).pipe(
          Effect.withConfigProvider(
            ConfigProvider.fromMap(
              new Map([
                ["REDIS_URL", url],
                ["TOKEN_STORE_PREFIX", uniquePrefix()],
                ["TOKEN_STORE_KEY", "k"]
              ])
            )
          )
        )
        const store = Context.get(context, TokenStore.TokenStore)
        yield* store.put("k", stored("v"))
        expect(valueOf(yield* store.get("k"))).toEqual(Option.some("v"))
      })
    )

    describe("real processes", () => {
      const LIFETIME = 1_500

      it.scopedLive(
        "4 processes over 3+ token lifetimes: one source call per generation, never two at once",
        () =>
          Effect.gen(function* () {
            const server = yield* tokenServer({ lifetimeMillis: LIFETIME, delayMillis: 50 })
            const env = {
              TOKEN_URL: server.url,
              STORE: "redis",
              REDIS_URL: url,
              STORE_PREFIX: uniquePrefix(),
              ENCRYPTION_KEY: "fleet-key",
              RUN_MILLIS: "5000"
            }
            const workers = yield* Effect.forEach(["r1", "r2", "r3", "r4"], (id) => spawnWorker(id, env))
            const results: ReadonlyArray<WorkerResult> = yield* Effect.forEach(workers, (w) => w.result, {
              concurrency: "unbounded"
            })
            const calls = yield* server.calls
            const window = Math.max(...results.map((r) => r.startedAt + 5_000)) - calls[0].at
            const bounds = generationBounds(window, LIFETIME)
            const gaps = calls.slice(1).map((c, i) => c.at - calls[i].at)
            console.log(
              `redis store, 4 processes, ${window} ms, lifetime ${LIFETIME} ms: ${calls.length} source calls ` +
                `(allowed ${bounds.min}..${bounds.max}), gaps ${gaps.join(", ")} ms`
            )
            const stderr = yield* Effect.forEach(workers, (w) => w.stderr)
            for (const r of results) {
              expect(r.failures, r.errors.join("; ")).toBe(0)
              expect(r.expired).toBe(0)
              expect(r.warnings, stderr.join("\n")).toBe(0)
            }
            expect(calls.length).toBeGreaterThanOrEqual(bounds.min)
            expect(calls.length).toBeLessThanOrEqual(bounds.max)
            expect(yield* server.maxInFlight).toBe(1)
          }),
        25_000
      )

      it.scopedLive(
        "the lock holder killed mid-refresh delays another by at most the wait, with one more call",
        () =>
          Effect.gen(function* () {
            // Lock ttl 3 s, wait 2.25 s; two processes, so that the count is exact (see FileTokenStore).
            const { first, results, calls } = yield* killedHolderRun("redis store", ["r1", "r2"], {
              STORE: "redis",
              REDIS_URL: url,
              STORE_PREFIX: uniquePrefix(),
              RUN_MILLIS: "4500",
              REFRESH_TIMEOUT_MILLIS: "3000"
            })
            expect(calls.length).toBe(2)
            for (const r of results) {
              expect(r.failures, r.errors.join("; ")).toBe(0)
              expect(r.firstTokenAt! - r.startedAt).toBeLessThanOrEqual(2_250 + 400)
              expect(r.firstTokenAt! - first.at).toBeGreaterThanOrEqual(2_250 - 200)
            }
          }),
        25_000
      )
    })
  })

  describe.skipIf(!redisServerBinary)(
    "against a private redis-server that is stopped and started again",
    () => {
      /** Runs `redis-server` on `port` until the scope closes (or `stop`). */
      const privateRedis = (port: number) =>
        Effect.gen(function* () {
          let child: ChildProcess.ChildProcess | undefined
          const start = Effect.gen(function* () {
            child = ChildProcess.spawn(
              "redis-server",
              ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
              { stdio: "ignore" }
            )
            for (
              let i = 0;
              i < 100 && !(yield* Effect.promise(() => answers(`redis://127.0.0.1:${port}`, 100)));
              i++
            )
              yield* Effect.sleep("20 millis")
          })
          const stop = Effect.promise(
            () =>
              new Promise<void>((resolve) => {
                const c = child
                if (c === undefined || c.exitCode !== null || c.signalCode !== null) return resolve()
                c.once("exit", () => resolve())
                c.kill("SIGKILL")
              })
          )
          yield* Effect.addFinalizer(() => stop)
          yield* start
          return { start, stop, url: `redis://127.0.0.1:${port}` }
        })

      it.scopedLive(
        "Redis down for 2 s mid-run: no fetch fails, the bearers call their sources, sharing resumes",
        () =>
          Effect.gen(function* () {
            const LIFETIME = 1_500
            const redis = yield* privateRedis(yield* closedPort)
            const server = yield* tokenServer({ lifetimeMillis: LIFETIME, delayMillis: 20 })
            const prefix = uniquePrefix()
            const env = {
              TOKEN_URL: server.url,
              STORE: "redis",
              REDIS_URL: redis.url,
              STORE_PREFIX: prefix,
              RUN_MILLIS: "8000"
            }
            const workers = yield* Effect.forEach(["p1", "p2", "p3"], (id) => spawnWorker(id, env))
            yield* Effect.forEach(workers, (w) => w.ready, { concurrency: "unbounded" })
            yield* Effect.sleep("2 seconds")
            const stoppedAt = Date.now()
            yield* redis.stop
            yield* Effect.sleep("2 seconds")
            yield* redis.start
            const restartedAt = Date.now()
            const results = yield* Effect.forEach(workers, (w) => w.result, { concurrency: "unbounded" })
            const end = Math.max(...results.map((r) => r.startedAt + 8_000))
            const calls = yield* server.calls
            const phase = (from: number, to: number) => calls.filter((c) => c.at >= from && c.at < to).length
            // ioredis reconnects within about 2 s (its backoff is capped at 2 s here).
            const resumed = restartedAt + 2_500
            const counts = {
              before: phase(0, stoppedAt),
              down: phase(stoppedAt, restartedAt),
              reconnecting: phase(restartedAt, resumed),
              after: phase(resumed, Infinity)
            }
            console.log(
              `redis restart, 3 processes, lifetime ${LIFETIME} ms: source calls ${JSON.stringify(counts)}, ` +
                `warnings ${results.map((r) => r.warnings).join("/")}`
            )
            for (const r of results) {
              expect(r.failures, r.errors.join("; ")).toBe(0)
              expect(r.expired).toBe(0)
            }
            // The outage was seen, and survived: some process fell back to its own source with a warning.
            expect(results.some((r) => r.warnings > 0)).toBe(true)
            expect(counts.down).toBeGreaterThanOrEqual(1)
            // After the reconnection the fleet shares one token again.
            expect(counts.after).toBeLessThanOrEqual(generationBounds(end - resumed, LIFETIME).max)
            const raw = yield* rawClient(redis.url)
            expect(yield* Effect.promise(() => raw.exists(`${prefix}token:loopback/token`))).toBe(1)
          }),
        28_000
      )
    }
  )
})
