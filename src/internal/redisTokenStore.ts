import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import type { Redis, RedisOptions } from "ioredis"
import type * as RedisTokenStore from "../RedisTokenStore.js"
import { type TokenStore, TokenStoreError, type TokenStoreOperation } from "../TokenStore.js"
import { expiresAtMillis } from "./token.js"
import { makeCodec } from "./storeRecord.js"
import {
  booleanOption,
  durationOption,
  integerOption,
  invalidOption,
  redactedOption,
  stringOption
} from "./tokenStore.js"

/** Deletes the lock only if its value is still the caller's owner id. */
const UNLOCK_SCRIPT = `if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end`

const messageOf = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

/** Loads `ioredis` on first use: it is an optional peer dependency. */
const loadRedis = Effect.tryPromise({
  try: async () => {
    const module = (await import("ioredis")) as unknown as {
      readonly Redis?: typeof Redis
      readonly default?: typeof Redis
    }
    const RedisClass = module.Redis ?? module.default
    if (RedisClass === undefined) throw new Error("the ioredis module has no Redis export")
    return RedisClass
  },
  catch: (cause) =>
    new TokenStoreError({
      operation: "open",
      reason: "Unavailable",
      detail: `cannot load ioredis (install it: npm install ioredis): ${messageOf(cause)}`,
      cause
    })
})

/** @internal */
export const make = (
  options: RedisTokenStore.Options
): Effect.Effect<TokenStore["Type"], TokenStoreError, Scope.Scope> =>
  Effect.gen(function* () {
    const operationMillis = yield* durationOption("operationTimeout", options.operationTimeout, 500, true)
    const connectMillis = yield* durationOption("connectTimeout", options.connectTimeout, 2_000, true)
    // Every option is checked at run time: a wrong type (from JavaScript, JSON or a cast) is an error.
    if (typeof options.url !== "string")
      yield* Effect.mapError(redactedOption("url", options.url), () =>
        invalidOption("url", `expected a string or a Redacted string, got ${typeof options.url}`)
      )
    yield* stringOption("host", options.host)
    yield* integerOption("port", options.port, 0, 65_535)
    yield* integerOption("db", options.db, 0, 2 ** 31 - 1)
    yield* stringOption("username", options.username, true)
    yield* redactedOption("password", options.password)
    yield* booleanOption("tls", options.tls)
    yield* stringOption("keyPrefix", options.keyPrefix, true).pipe(
      Effect.filterOrFail(
        (prefix) => prefix !== undefined,
        () => invalidOption("keyPrefix", "expected a string, got undefined")
      )
    )
    yield* redactedOption("encryptionKey", options.encryptionKey)
    const RedisClass = yield* loadRedis
    const codec = makeCodec(options.encryptionKey)
    const prefix = options.keyPrefix
    const tokenKey = (key: string) => `${prefix}token:${key}`
    const lockKey = (key: string) => `${prefix}lock:${key}`

    const settings: RedisOptions = {
      // Fail a command at once while disconnected instead of queueing it: the bearer then calls its source.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: connectMillis,
      commandTimeout: operationMillis,
      // Keep reconnecting in the background, at most every 2 seconds, for as long as the layer lives.
      retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2_000),
      ...(options.host !== undefined ? { host: options.host } : {}),
      ...(options.port !== undefined ? { port: options.port } : {}),
      ...(options.db !== undefined ? { db: options.db } : {}),
      ...(options.username !== undefined ? { username: options.username } : {}),
      ...(options.password !== undefined ? { password: Redacted.value(options.password) } : {}),
      ...(options.tls === true ? { tls: {} } : {})
    }
    const url =
      options.url === undefined
        ? undefined
        : typeof options.url === "string"
          ? options.url
          : Redacted.value(options.url)

    const client = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const client: Redis = url === undefined ? new RedisClass(settings) : new RedisClass(url, settings)
        // Connection errors surface as failed commands; without a listener ioredis would print each one.
        client.on("error", () => {})
        return client
      }),
      (client) =>
        Effect.promise(() => client.quit().catch(() => undefined)).pipe(
          Effect.timeout(1_000),
          Effect.ignore,
          Effect.ensuring(Effect.sync(() => client.disconnect()))
        )
    )

    // Give the first connection a moment, so the first fetch finds it ready; never fail the layer for it.
    const ready = yield* Effect.async<boolean>((resume) => {
      if (client.status === "ready") return resume(Effect.succeed(true))
      const onReady = () => resume(Effect.succeed(true))
      client.once("ready", onReady)
      return Effect.sync(() => client.off("ready", onReady))
    }).pipe(Effect.timeoutTo({ duration: connectMillis, onTimeout: () => false, onSuccess: (ok) => ok }))
    if (!ready)
      yield* Effect.logWarning(
        `RedisTokenStore: Redis is not reachable yet (status ${client.status}); bearers call their sources directly until it is`
      )

    const run = <A>(operation: TokenStoreOperation, command: () => Promise<A>) =>
      Effect.tryPromise({
        try: command,
        catch: (cause) =>
          new TokenStoreError({
            operation,
            reason: client.status === "ready" ? "Failure" : "Unavailable",
            detail: messageOf(cause),
            cause
          })
      }).pipe(
        Effect.timeoutFail({
          duration: operationMillis,
          onTimeout: () =>
            new TokenStoreError({
              operation,
              reason: "Timeout",
              detail: `Redis did not answer within ${operationMillis} ms`
            })
        })
      )

    const store: TokenStore["Type"] = {
      get: (key) =>
        Effect.map(
          run("get", () => client.get(tokenKey(key))),
          (text) => (text === null ? Option.none() : codec.decode(key, text))
        ),
      put: (key, stored) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          const expires = expiresAtMillis(stored.token)
          const text = codec.encode(key, stored)
          if (expires === Infinity) return Effect.asVoid(run("put", () => client.set(tokenKey(key), text)))
          const remaining = Math.ceil(expires - now)
          if (!(remaining > 0)) return Effect.void
          return Effect.asVoid(run("put", () => client.set(tokenKey(key), text, "PX", remaining)))
        }),
      tryLock: (key, owner, ttl) =>
        Effect.map(
          run("lock", () =>
            client.set(lockKey(key), owner, "PX", Math.max(1, Math.ceil(Duration.toMillis(ttl))), "NX")
          ),
          (reply) => reply === "OK"
        ),
      unlock: (key, owner) =>
        Effect.asVoid(run("unlock", () => client.eval(UNLOCK_SCRIPT, 1, lockKey(key), owner)))
    }
    return store
  })
