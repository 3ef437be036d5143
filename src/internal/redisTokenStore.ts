import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import type { Redis, RedisOptions } from "ioredis"
import type * as RedisTokenStore from "../RedisTokenStore.js"
import type { TokenStoreOperation } from "../Errors.js"
import type { StoredToken, TokenStore } from "../TokenStore.js"
import { TokenStoreError } from "./errors.js"
import { expiresAtMillis } from "./token.js"
import { makeCodec, type RecordCodec } from "./storeRecord.js"
import { boolean, integer, optional, positiveDuration, redacted, string, withDefault } from "./options.js"
import { invalidOption, storeOption } from "./tokenStore.js"

/** Deletes the lock only if its value is still the caller's owner id. */
const UNLOCK_SCRIPT = `if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end`

/**
 * Takes the lock (`SET NX PX`), or, in the same atomic step, breaks a stale one and takes it: a lock key
 * without a TTL (`PTTL` -1: written by hand, or by a client that forgot `PX`) or with a TTL longer than the
 * caller's would otherwise block every renewal for ever. Returns 1 when the caller holds the lock.
 */
const LOCK_SCRIPT = `
if redis.call("set", KEYS[1], ARGV[1], "PX", ARGV[2], "NX") then return 1 end
local ttl = redis.call("pttl", KEYS[1])
if ttl == -1 or ttl > tonumber(ARGV[2]) then
  redis.call("set", KEYS[1], ARGV[1], "PX", ARGV[2])
  return 1
end
return 0`

/** The record, or its size when it is larger than the limit: a larger record is never sent to the client. */
const GET_SCRIPT = `
local size = redis.call("strlen", KEYS[1])
if size > tonumber(ARGV[1]) then return size end
return redis.call("get", KEYS[1])`

/** The default bound of a record read from or written to Redis. @internal */
export const DEFAULT_MAX_RECORD_BYTES = 64 * 1024

/** Redis refused the credentials (wrong password or user, or none given where one is required). */
const isAuthError = (message: string): boolean =>
  /\b(?:WRONGPASS|NOAUTH|NOPERM)\b|invalid password|invalid username-password|Authentication required/i.test(
    message
  )

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

/** The options of `make` checked at run time (a wrong type from JavaScript, JSON or a cast is an error). */
const checkOptions = (
  options: RedisTokenStore.Options
): Effect.Effect<{ readonly operationMillis: number; readonly connectMillis: number }, TokenStoreError> =>
  Effect.gen(function* () {
    const operationMillis = yield* storeOption(
      "operationTimeout",
      withDefault(options.operationTimeout, 500, positiveDuration)
    )
    const connectMillis = yield* storeOption(
      "connectTimeout",
      withDefault(options.connectTimeout, 2_000, positiveDuration)
    )
    if (typeof options.url !== "string" && Either.isLeft(optional(options.url, redacted)))
      return yield* Effect.fail(
        invalidOption("url", `expected a string or a Redacted string, got ${typeof options.url}`)
      )
    yield* storeOption("host", optional(options.host, string()))
    yield* storeOption("port", optional(options.port, integer(0, 65_535)))
    yield* storeOption("db", optional(options.db, integer(0, 2 ** 31 - 1)))
    yield* storeOption("username", optional(options.username, string(true)))
    yield* storeOption("password", optional(options.password, redacted))
    yield* storeOption("tls", optional(options.tls, boolean))
    yield* storeOption("keyPrefix", string(true)(options.keyPrefix))
    yield* storeOption("encryptionKey", optional(options.encryptionKey, redacted))
    return { operationMillis, connectMillis }
  })

/** The client's settings: commands fail at once while disconnected, and it keeps reconnecting in the background. */
const clientSettings = (
  options: RedisTokenStore.Options,
  connectMillis: number,
  operationMillis: number
): RedisOptions => ({
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
})

/**
 * One ioredis client and the last connection error it reported. Connection errors surface as failed commands;
 * without a listener ioredis would print each one. The last one is kept: a refused authentication is reported
 * as such, not as "not reachable".
 */
class Connection {
  lastError: string | undefined

  constructor(readonly client: Redis) {
    client.on("error", (error: unknown) => {
      this.lastError = messageOf(error)
    })
    client.on("ready", () => {
      this.lastError = undefined
    })
  }

  /** The last connection error, when it says that Redis refused the credentials. */
  authFailure(): string | undefined {
    return this.lastError !== undefined && isAuthError(this.lastError) ? this.lastError : undefined
  }

  /** Opens a client for the scope; closing the scope quits it (at most 1 second), then disconnects it. */
  static open(
    RedisClass: typeof Redis,
    options: RedisTokenStore.Options,
    settings: RedisOptions
  ): Effect.Effect<Connection, never, Scope.Scope> {
    const url =
      options.url === undefined
        ? undefined
        : typeof options.url === "string"
          ? options.url
          : Redacted.value(options.url)
    return Effect.acquireRelease(
      Effect.sync(
        () => new Connection(url === undefined ? new RedisClass(settings) : new RedisClass(url, settings))
      ),
      ({ client }) =>
        Effect.promise(() => client.quit().catch(() => undefined)).pipe(
          Effect.timeout(1_000),
          Effect.ignore,
          Effect.ensuring(Effect.sync(() => client.disconnect()))
        )
    )
  }

  /** Gives the first connection a moment, so the first fetch finds it ready; never fails for it, but warns. */
  awaitReady(connectMillis: number): Effect.Effect<void> {
    const client = this.client
    return Effect.async<boolean>((resume) => {
      if (client.status === "ready") return resume(Effect.succeed(true))
      const onReady = () => resume(Effect.succeed(true))
      client.once("ready", onReady)
      return Effect.sync(() => client.off("ready", onReady))
    }).pipe(
      Effect.timeoutTo({ duration: connectMillis, onTimeout: () => false, onSuccess: (ok) => ok }),
      Effect.flatMap((ready) => {
        if (ready) return Effect.void
        const auth = this.authFailure()
        return Effect.logWarning(
          auth !== undefined
            ? `RedisTokenStore: Redis refused the credentials (${auth}): check the username and password; bearers call their sources directly until it accepts them`
            : `RedisTokenStore: Redis is not reachable yet (status ${client.status}); bearers call their sources directly until it is`
        )
      })
    )
  }
}

/** The store over one connection: records under `<prefix>token:<key>`, locks under `<prefix>lock:<key>`. */
class RedisStore {
  constructor(
    private readonly connection: Connection,
    private readonly codec: RecordCodec,
    private readonly prefix: string,
    private readonly operationMillis: number,
    private readonly maxRecordBytes: number
  ) {}

  /** Where the record of `key` lives. */
  private tokenKey(key: string): string {
    return `${this.prefix}token:${key}`
  }

  /** Where the lock of `key` lives. */
  private lockKey(key: string): string {
    return `${this.prefix}lock:${key}`
  }

  /** Runs one command, bounded by `operationTimeout`; a failure says whether Redis refused the credentials. */
  private run<A>(
    operation: TokenStoreOperation,
    command: () => Promise<A>
  ): Effect.Effect<A, TokenStoreError> {
    const { client } = this.connection
    const operationMillis = this.operationMillis
    return Effect.tryPromise({
      try: command,
      catch: (cause) => {
        const message = messageOf(cause)
        const auth = isAuthError(message)
          ? message
          : client.status === "ready"
            ? undefined
            : this.connection.authFailure()
        return new TokenStoreError({
          operation,
          reason:
            auth !== undefined ? "Unauthenticated" : client.status === "ready" ? "Failure" : "Unavailable",
          detail: auth !== undefined ? `Redis refused the credentials: ${auth}` : message,
          cause
        })
      }
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
  }

  /** The error of a record over `maxRecordBytes`. */
  private tooLarge(operation: TokenStoreOperation, size: number): TokenStoreError {
    return new TokenStoreError({
      operation,
      reason: "TooLarge",
      detail: `the record is ${size} bytes, more than maxRecordBytes (${this.maxRecordBytes}); nothing more was read`
    })
  }

  /** The record, unless it is larger than `maxRecordBytes` (then nothing more than its size is read). */
  get(key: string): Effect.Effect<Option.Option<StoredToken>, TokenStoreError> {
    return Effect.flatMap(
      this.run(
        "get",
        () =>
          this.connection.client.eval(
            GET_SCRIPT,
            1,
            this.tokenKey(key),
            this.maxRecordBytes
          ) as Promise<unknown>
      ),
      (reply) =>
        typeof reply === "number"
          ? Effect.fail(this.tooLarge("get", reply))
          : Effect.succeed(typeof reply === "string" ? this.codec.decode(key, reply) : Option.none())
    )
  }

  /** Writes the record to expire with its token; a record nobody could read back is refused. */
  put(key: string, stored: StoredToken): Effect.Effect<void, TokenStoreError> {
    const { client } = this.connection
    return Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const expires = expiresAtMillis(stored.token)
      const text = this.codec.encode(key, stored)
      const size = Buffer.byteLength(text, "utf8")
      // Nobody could read a larger record back: refuse it rather than write it.
      if (size > this.maxRecordBytes) return Effect.fail(this.tooLarge("put", size))
      if (expires === Infinity)
        return Effect.asVoid(this.run("put", () => client.set(this.tokenKey(key), text)))
      const remaining = Math.ceil(expires - now)
      if (!(remaining > 0)) return Effect.void
      return Effect.asVoid(this.run("put", () => client.set(this.tokenKey(key), text, "PX", remaining)))
    })
  }

  /** Takes the lock for `owner` for `ttl`, breaking a stale one (`LOCK_SCRIPT`); `true` when it holds it. */
  tryLock(key: string, owner: string, ttl: Duration.Duration): Effect.Effect<boolean, TokenStoreError> {
    const { client } = this.connection
    return Effect.map(
      this.run("lock", () =>
        client.eval(LOCK_SCRIPT, 1, this.lockKey(key), owner, Math.max(1, Math.ceil(Duration.toMillis(ttl))))
      ),
      (reply) => reply === 1
    )
  }

  /** Releases the lock if `owner` still holds it (`UNLOCK_SCRIPT`). */
  unlock(key: string, owner: string): Effect.Effect<void, TokenStoreError> {
    return Effect.asVoid(
      this.run("unlock", () => this.connection.client.eval(UNLOCK_SCRIPT, 1, this.lockKey(key), owner))
    )
  }

  /** The store as the `TokenStore` service: a plain object of its four operations. */
  toStore(): TokenStore["Type"] {
    return {
      get: (key) => this.get(key),
      put: (key, stored) => this.put(key, stored),
      tryLock: (key, owner, ttl) => this.tryLock(key, owner, ttl),
      unlock: (key, owner) => this.unlock(key, owner)
    }
  }
}

/** @internal */
export const make = (
  options: RedisTokenStore.Options
): Effect.Effect<TokenStore["Type"], TokenStoreError, Scope.Scope> =>
  Effect.gen(function* () {
    const { connectMillis, operationMillis } = yield* checkOptions(options)
    const RedisClass = yield* loadRedis
    const maxRecordBytes = yield* storeOption(
      "maxRecordBytes",
      withDefault(options.maxRecordBytes, DEFAULT_MAX_RECORD_BYTES, integer(1, 2 ** 29))
    )
    const codec = makeCodec(options.encryptionKey)
    const connection = yield* Connection.open(
      RedisClass,
      options,
      clientSettings(options, connectMillis, operationMillis)
    )
    yield* connection.awaitReady(connectMillis)
    return new RedisStore(connection, codec, options.keyPrefix, operationMillis, maxRecordBytes).toStore()
  })
