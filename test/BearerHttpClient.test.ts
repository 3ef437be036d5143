import { FetchHttpClient, HttpClient, HttpClientRequest, HttpClientResponse } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import {
  Cause,
  Context,
  Effect,
  Exit,
  Fiber,
  Layer,
  Logger,
  LogLevel,
  Option,
  Ref,
  Scope,
  Stream,
  TestClock
} from "effect"
import { Receiver, RenewableBearer, TestTokenSource } from "effect-renewable-bearer"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import { format, inspect } from "node:util"
import * as BearerHttpClient from "../src/BearerHttpClient.js"
import { settle, setup } from "./utils/bearer.js"
import { closedPort, loopbackServer, type Recorded, type Reply } from "../support/loopback.js"

const T1 = "bearer-token-value-one"
const T2 = "bearer-token-value-two"
const T3 = "bearer-token-value-three"
const hour = { expiresIn: "1 hour" } as const
const steps = [
  TestTokenSource.token(T1, hour),
  TestTokenSource.token(T2, hour),
  TestTokenSource.token(T3, hour)
]

/** A protected API that accepts only the tokens in `accepted` (a mutable set the test may change). */
const protectedApi = (accepted: Set<string>, other?: (request: Recorded) => Reply | undefined) =>
  loopbackServer((request) => {
    const custom = other?.(request)
    if (custom !== undefined) return custom
    const auth = request.headers["authorization"] ?? ""
    return accepted.has(auth.replace(/^Bearer /, ""))
      ? { status: 200, body: { ok: true, body: request.body } }
      : {
          status: 401,
          body: { error: "invalid_token" },
          headers: { "www-authenticate": 'Bearer error="invalid_token"' }
        }
  })

const authHeaders = (requests: ReadonlyArray<Recorded>) => requests.map((r) => r.headers["authorization"])

/** The authorized client over a real fetch client. */
const clientFor = (bearer: RenewableBearer.RenewableBearer["Type"], options?: BearerHttpClient.Options) =>
  Effect.map(HttpClient.HttpClient, (client) => client.pipe(BearerHttpClient.withBearer(bearer, options)))

/** The authorized client in failing mode. */
const failingClientFor = (bearer: RenewableBearer.RenewableBearer["Type"]) =>
  Effect.map(HttpClient.HttpClient, (client) =>
    client.pipe(BearerHttpClient.withBearer(bearer, { failOnUnauthorized: true }))
  )

/** `true` when the client's error type includes `UnauthorizedError`, `false` otherwise. */
type FailsWithUnauthorized<C> =
  C extends HttpClient.HttpClient.With<infer E, infer _R>
    ? [Extract<E, BearerHttpClient.UnauthorizedError>] extends [never]
      ? false
      : true
    : never

/** Compiles only when the client's error type is the one `expected` says (checked by `tsc`). */
const errorTypeOf = <C>(_client: C, expected: FailsWithUnauthorized<C>): boolean => expected

/**
 * Every rendering of a value a program may print or ship: `String`, `JSON.stringify`, `util.inspect` (also
 * with `showHidden`), what `console.log` prints (`util.format`, and `%o`, which shows hidden properties),
 * `Cause.pretty`, and Effect's own loggers.
 */
const renderingsOf = (value: unknown): Effect.Effect<ReadonlyArray<string>> =>
  Effect.gen(function* () {
    const logged: Array<string> = []
    const logger = Logger.make(({ cause, message }) => {
      logged.push(`${inspect(message, { depth: 20, showHidden: true })} ${Cause.pretty(cause)}`)
    })
    yield* Effect.logError("failed", value).pipe(
      Effect.zipRight(Effect.logError(Cause.fail(value))),
      Effect.provide(Logger.replace(Logger.defaultLogger, logger))
    )
    return [
      String(value),
      String(JSON.stringify(value)),
      inspect(value, { depth: 20 }),
      inspect(value, { depth: 20, showHidden: true }),
      format(value),
      format("%o", value),
      Cause.pretty(Cause.fail(value)),
      ...logged
    ]
  })

const expectNoToken = (renderings: ReadonlyArray<string>, ...tokens: ReadonlyArray<string>) => {
  for (const rendering of renderings) {
    for (const token of tokens) expect(rendering).not.toContain(token)
  }
}

/** A server that sends the headers and part of the body, then resets the connection. */
const resettingApi = Effect.acquireRelease(
  Effect.async<Http.Server>((resume) => {
    const server = Http.createServer((req, res) => {
      res.writeHead(200, { "content-type": "text/plain", "content-length": "1000" })
      res.write("partial", () => req.socket.destroy())
    })
    server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
  }),
  (server) =>
    Effect.async<void>((resume) => {
      server.closeAllConnections()
      server.close(() => resume(Effect.void))
    })
).pipe(Effect.map((server) => `http://127.0.0.1:${(server.address() as AddressInfo).port}`))

describe("BearerHttpClient: no error or response it hands out carries the token", { timeout: 10_000 }, () => {
  it.scopedLive("a transport RequestError (connection refused): the request has no Authorization", () =>
    Effect.gen(function* () {
      const { bearer } = yield* setup(steps)
      const client = yield* clientFor(bearer)
      const port = yield* closedPort
      const error = yield* Effect.flip(client.get(`http://127.0.0.1:${port}/x`))
      if (error._tag !== "RequestError") throw new Error(`expected RequestError, got ${error._tag}`)
      expect(error.reason).toBe("Transport")
      expect(error.request.headers["authorization"]).toBeUndefined()
      expectNoToken(yield* renderingsOf(error), T1)
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it.scopedLive("a ResponseError of the inner client (filterStatusOk): neither request shows the token", () =>
    Effect.gen(function* () {
      const { bearer } = yield* setup(steps)
      const api = yield* protectedApi(new Set([T1]), () => ({ status: 500, body: "down" }))
      const inner = HttpClient.filterStatusOk(yield* HttpClient.HttpClient)
      const client = inner.pipe(BearerHttpClient.withBearer(bearer))
      const error = yield* Effect.flip(client.get(`${api.url}/x`))
      if (error._tag !== "ResponseError") throw new Error(`expected ResponseError, got ${error._tag}`)
      expect([error.reason, error.response.status]).toEqual(["StatusCode", 500])
      expect(error.request.headers["authorization"]).toBeUndefined()
      expect(error.response.request.headers["authorization"]).toBeUndefined()
      // The body can still be read through the response the error holds.
      expect(yield* error.response.text).toBe("down")
      expectNoToken(yield* renderingsOf(error), T1)
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it.scopedLive("a body that fails half-way: the ResponseError of the read shows no token", () =>
    Effect.gen(function* () {
      const { bearer } = yield* setup(steps)
      const url = yield* resettingApi
      const client = yield* clientFor(bearer)
      const response = yield* client.get(`${url}/x`)
      expect(response.request.headers["authorization"]).toBeUndefined()
      const error = yield* Effect.flip(response.text)
      expect([error._tag, error.reason]).toEqual(["ResponseError", "Decode"])
      expect(error.request.headers["authorization"]).toBeUndefined()
      expect(error.response.request.headers["authorization"]).toBeUndefined()
      expectNoToken(yield* renderingsOf(error), T1)
      expectNoToken(yield* renderingsOf(response), T1)
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it.scopedLive("UnauthorizedError, also under inspect with showHidden and %o", () =>
    Effect.gen(function* () {
      const { bearer } = yield* setup(steps)
      const api = yield* protectedApi(new Set())
      const client = yield* failingClientFor(bearer)
      const error = yield* Effect.flip(client.get(`${api.url}/secret`))
      if (error._tag !== "UnauthorizedError") throw new Error(`expected UnauthorizedError, got ${error._tag}`)
      expect(error.response.request.headers["authorization"]).toBeUndefined()
      expect(error.response.status).toBe(401)
      expectNoToken(yield* renderingsOf(error), T1, T2)
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it.scopedLive("layer(): a response and a transport error show no token", () =>
    Effect.gen(function* () {
      const api = yield* protectedApi(new Set([T1]))
      const bearer = RenewableBearer.layer().pipe(Layer.provide(TestTokenSource.layer(steps)))
      const run = <A, E>(effect: Effect.Effect<A, E, HttpClient.HttpClient>) =>
        effect.pipe(
          Effect.provide(
            BearerHttpClient.layer({ failOnUnauthorized: true }).pipe(
              Layer.provide([bearer, FetchHttpClient.layer])
            )
          )
        )
      const ok = yield* run(Effect.flatMap(HttpClient.HttpClient, (client) => client.get(`${api.url}/ok`)))
      expect(ok.status).toBe(200)
      expect(ok.request.headers["authorization"]).toBeUndefined()
      expectNoToken(yield* renderingsOf(ok), T1)
      const port = yield* closedPort
      const refused = yield* run(
        Effect.flatMap(HttpClient.HttpClient, (client) => client.get(`http://127.0.0.1:${port}/x`))
      ).pipe(Effect.flip)
      expect(refused._tag).toBe("RequestError")
      expectNoToken(yield* renderingsOf(refused), T1)
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )
})

describe("BearerHttpClient", { timeout: 10_000 }, () => {
  it.scopedLive(
    "withBearer data-first and data-last: both send the bearer's token; both fail on a 401 when asked",
    () =>
      Effect.gen(function* () {
        const { bearer } = yield* setup(steps)
        const accepted = new Set([T1])
        const api = yield* protectedApi(accepted)
        const inner = yield* HttpClient.HttpClient
        const first = BearerHttpClient.withBearer(inner, bearer)
        const last = inner.pipe(BearerHttpClient.withBearer(bearer))
        const statuses = [(yield* first.get(`${api.url}/a`)).status, (yield* last.get(`${api.url}/b`)).status]
        expect(statuses).toEqual([200, 200])
        expect(authHeaders(yield* api.requests)).toEqual([`Bearer ${T1}`, `Bearer ${T1}`])
        accepted.clear()
        const options = { failOnUnauthorized: true } as const
        const failures = [
          yield* Effect.flip(BearerHttpClient.withBearer(inner, bearer, options).get(`${api.url}/c`)),
          yield* Effect.flip(inner.pipe(BearerHttpClient.withBearer(bearer, options)).get(`${api.url}/d`))
        ]
        expect(failures.map((error) => error._tag)).toEqual(["UnauthorizedError", "UnauthorizedError"])
      }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it.scopedLive("a 401 with an endless body: dropped after 64 KiB, the replay succeeds, under 100 MB", () =>
    Effect.gen(function* () {
      const { bearer } = yield* setup(steps)
      let requests = 0
      let dropped = false
      const url = yield* Effect.acquireRelease(
        Effect.async<Http.Server>((resume) => {
          const server = Http.createServer((req, res) => {
            requests++
            if (req.headers["authorization"] === `Bearer ${T2}`) {
              res.writeHead(200, { "content-type": "text/plain" })
              res.end("ok")
              return
            }
            res.writeHead(401, { "content-type": "text/plain" })
            res.on("close", () => (dropped = !res.writableFinished))
            const chunk = Buffer.alloc(64 * 1024, "x")
            const write = () => {
              while (!res.destroyed && res.write(chunk)) {
                // until the socket pushes back
              }
              if (!res.destroyed) res.once("drain", write)
            }
            write()
          })
          server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
        }),
        (server) =>
          Effect.async<void>((resume) => {
            server.closeAllConnections()
            server.close(() => resume(Effect.void))
          })
      ).pipe(Effect.map((server) => `http://127.0.0.1:${(server.address() as AddressInfo).port}`))
      const client = yield* clientFor(bearer)
      const baseline = process.memoryUsage().rss
      let peak = 0
      const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss - baseline)), 5)
      const response = yield* client
        .get(`${url}/x`)
        .pipe(Effect.ensuring(Effect.sync(() => clearInterval(timer))))
      expect(response.status).toBe(200)
      expect(yield* response.text).toBe("ok")
      expect(requests).toBe(2)
      expect(dropped).toBe(true)
      expect(peak, `peak RSS growth ${(peak / 1024 / 1024).toFixed(1)} MB`).toBeLessThan(100 * 1024 * 1024)
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it.scopedLive("adds Authorization: Bearer <token> to every request; 2xx passes through", () =>
    Effect.gen(function* () {
      const { bearer, source } = yield* setup(steps)
      const api = yield* protectedApi(new Set([T1]))
      const client = yield* clientFor(bearer)
      const first = yield* client.get(`${api.url}/a`)
      const second = yield* client.get(`${api.url}/b`)
      expect([first.status, second.status]).toEqual([200, 200])
      expect(authHeaders(yield* api.requests)).toEqual([`Bearer ${T1}`, `Bearer ${T1}`])
      expect(yield* source.calls).toBe(1)
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it.scopedLive("other statuses (403, 404, 500) pass through untouched, without a renewal", () =>
    Effect.gen(function* () {
      const { bearer, source } = yield* setup(steps)
      const statuses = [403, 404, 500]
      const api = yield* protectedApi(new Set([T1]), (r) =>
        r.path.startsWith("/status/") ? { status: Number(r.path.slice(8)), body: "nope" } : undefined
      )
      const client = yield* clientFor(bearer)
      for (const status of statuses) {
        const response = yield* client.get(`${api.url}/status/${status}`)
        expect(response.status).toBe(status)
        expect(yield* response.text).toBe("nope")
      }
      expect(yield* api.count()).toBe(3)
      expect(yield* source.calls).toBe(1)
      expect(Option.isSome(yield* bearer.current)).toBe(true)
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it.scopedLive("on 401 it renews the token and replays the request once; the caller sees the 200", () =>
    Effect.gen(function* () {
      const { bearer, source } = yield* setup(steps)
      const api = yield* protectedApi(new Set([T2]))
      const client = yield* clientFor(bearer)
      const response = yield* client.execute(
        HttpClientRequest.post(`${api.url}/items`).pipe(HttpClientRequest.bodyUrlParams({ name: "x" }))
      )
      expect(response.status).toBe(200)
      const requests = yield* api.requests
      expect(authHeaders(requests)).toEqual([`Bearer ${T1}`, `Bearer ${T2}`])
      // The body was sent both times.
      expect(requests.map((r) => r.body)).toEqual(["name=x", "name=x"])
      expect(yield* source.calls).toBe(2)
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it.scopedLive(
    "synchronous fetchOptions: a 401 is replayed with a renewed token, not the rejected one",
    () =>
      Effect.gen(function* () {
        const { bearer, source } = yield* setup(steps)
        const api = yield* protectedApi(new Set([T2]))
        const client = yield* clientFor(bearer, { fetchOptions: { synchronous: true } })
        const response = yield* client.get(`${api.url}/items`)
        expect(response.status).toBe(200)
        expect(authHeaders(yield* api.requests)).toEqual([`Bearer ${T1}`, `Bearer ${T2}`])
        expect(yield* source.calls).toBe(2)
      }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it.scopedLive("after the retry budget the caller gets the 401 response, never a loop", () =>
    Effect.gen(function* () {
      const { bearer, source } = yield* setup(steps)
      const api = yield* protectedApi(new Set())
      const client = yield* clientFor(bearer)
      const response = yield* client.get(`${api.url}/secret`)
      expect(response.status).toBe(401)
      expect(yield* response.json).toEqual({ error: "invalid_token" })
      // maxRetries = 2 (the default): two attempts, one renewal.
      expect(authHeaders(yield* api.requests)).toEqual([`Bearer ${T1}`, `Bearer ${T2}`])
      expect(yield* source.calls).toBe(2)
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it.scopedLive("the budget follows maxRetries (from the bearer, or from fetchOptions)", () =>
    Effect.gen(function* () {
      const { bearer } = yield* setup(steps, { maxRetries: 3 })
      const api = yield* protectedApi(new Set())
      const three = yield* clientFor(bearer)
      const one = yield* clientFor(bearer, { fetchOptions: { maxRetries: 1 } })
      expect((yield* three.get(`${api.url}/x`)).status).toBe(401)
      expect(yield* api.count()).toBe(3)
      expect((yield* one.get(`${api.url}/y`)).status).toBe(401)
      expect(yield* api.count()).toBe(4)
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it.scopedLive("failOnUnauthorized: a typed UnauthorizedError after the budget", () =>
    Effect.gen(function* () {
      const { bearer } = yield* setup(steps)
      const api = yield* protectedApi(new Set())
      const client = yield* failingClientFor(bearer)
      const error = yield* Effect.flip(client.get(`${api.url}/secret`))
      if (error._tag !== "UnauthorizedError") throw new Error(`expected UnauthorizedError, got ${error._tag}`)
      expect([error.attempts, error.replayable, error.response.status]).toEqual([2, true, 401])
      expect(error.message).toBe(`GET ${api.url}/secret was answered 401 Unauthorized after 2 attempts`)
      expect(error.request.headers["authorization"]).toBeUndefined()
      expect(yield* api.count()).toBe(2)
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it.scoped("failOnUnauthorized given as a plain boolean keeps UnauthorizedError in the error type", () =>
    Effect.gen(function* () {
      const { bearer } = yield* setup(steps)
      const client = yield* HttpClient.HttpClient
      const flag = Math.random() < 2
      const provided = Effect.provideService(RenewableBearer.RenewableBearer, bearer)
      // A `boolean` may be `true`: the error type must include UnauthorizedError, as with a literal `true`.
      expect(
        errorTypeOf(client.pipe(BearerHttpClient.withBearer(bearer, { failOnUnauthorized: flag })), true)
      ).toBe(true)
      expect(
        errorTypeOf(yield* provided(BearerHttpClient.authorize(client, { failOnUnauthorized: flag })), true)
      ).toBe(true)
      expect(
        errorTypeOf(client.pipe(BearerHttpClient.withBearer(bearer, { failOnUnauthorized: true })), true)
      ).toBe(true)
      // `false`, `undefined` or no options: a 401 is returned as a response, never an UnauthorizedError.
      expect(
        errorTypeOf(client.pipe(BearerHttpClient.withBearer(bearer, { failOnUnauthorized: false })), false)
      ).toBe(false)
      expect(errorTypeOf(client.pipe(BearerHttpClient.withBearer(bearer)), false)).toBe(false)
      expect(errorTypeOf(yield* provided(BearerHttpClient.authorize(client, {})), false)).toBe(false)
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it.scopedLive("a stream body is not replayed, but the token is still renewed for the next request", () =>
    Effect.gen(function* () {
      const { bearer, source } = yield* setup(steps)
      const api = yield* protectedApi(new Set([T2]))
      const client = yield* failingClientFor(bearer)
      const body = Stream.make(new TextEncoder().encode("streamed"))
      const error = yield* Effect.flip(
        client.execute(HttpClientRequest.post(`${api.url}/upload`).pipe(HttpClientRequest.bodyStream(body)))
      )
      if (error._tag !== "UnauthorizedError") throw new Error(`expected UnauthorizedError, got ${error._tag}`)
      expect([error.attempts, error.replayable]).toEqual([1, false])
      expect(error.message).toContain("(its body cannot be replayed)")
      expect(yield* api.count()).toBe(1)

      const next = yield* client.get(`${api.url}/next`)
      expect(next.status).toBe(200)
      expect(authHeaders(yield* api.requests)).toEqual([`Bearer ${T1}`, `Bearer ${T2}`])
      expect(yield* source.calls).toBe(2)
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it.scopedLive("concurrent 401s for the same token cause exactly one renewal", () =>
    Effect.gen(function* () {
      const n = 8
      const { bearer, source } = yield* setup(steps)
      const accepted = new Set([T1])
      // The API holds every rejection until all n requests were rejected, so all of them used the old token.
      let rejected = 0
      let releaseAll!: () => void
      const allRejected = new Promise<void>((resolve) => (releaseAll = resolve))
      const api = yield* loopbackServer(async (request) => {
        if (accepted.has((request.headers["authorization"] ?? "").replace(/^Bearer /, ""))) {
          return { status: 200, body: "ok" }
        }
        if (++rejected === n) releaseAll()
        await allRejected
        return { status: 401, body: "expired" }
      })
      const client = yield* clientFor(bearer)
      expect((yield* client.get(`${api.url}/warm`)).status).toBe(200)

      // The server rotates its key: T1 is rejected from now on.
      accepted.clear()
      accepted.add(T2)
      const responses = yield* Effect.all(
        Array.from({ length: n }, (_, i) => client.get(`${api.url}/r${i}`)),
        { concurrency: "unbounded" }
      )
      expect(responses.map((r) => r.status)).toEqual(Array.from({ length: n }, () => 200))
      expect(yield* source.calls).toBe(2)
      const headers = authHeaders(yield* api.requests)
      expect(headers.filter((h) => h === `Bearer ${T1}`).length).toBe(1 + n)
      expect(headers.filter((h) => h === `Bearer ${T2}`).length).toBe(n)
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it.scopedLive(
    "a token that cannot be had fails the request with RenewalError, typed; nothing is sent",
    () =>
      Effect.gen(function* () {
        const { bearer } = yield* setup([TestTokenSource.fail("identity provider is down")])
        const api = yield* protectedApi(new Set())
        const client = yield* clientFor(bearer, { fetchOptions: { reportError: true } })
        const error = yield* Effect.flip(client.get(`${api.url}/x`))
        expect(error._tag).toBe("RenewalError")
        if (error._tag === "RenewalError") expect(error.reason).toBe("SourceError")
        expect(yield* api.count()).toBe(0)
      }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it.scoped("by default a request waits 30 seconds for a token, then fails with RenewalError Timeout", () =>
    Effect.gen(function* () {
      const { bearer, source } = yield* setup([TestTokenSource.fail("down", { retryable: false })])
      let sent = 0
      const transport = HttpClient.make((request) =>
        Effect.sync(() => {
          sent++
          return HttpClientResponse.fromWeb(request, new Response("ok"))
        })
      )
      const client = transport.pipe(BearerHttpClient.withBearer(bearer))
      const fiber = yield* Effect.fork(client.get("http://api.test/x"))
      yield* TestClock.adjust("29999 millis")
      yield* settle
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      yield* TestClock.adjust("1 millis")
      yield* settle
      const exit = yield* Fiber.poll(fiber)
      const error = Option.flatMap(exit, (e) =>
        Exit.isFailure(e) ? Cause.failureOption(e.cause) : Option.none()
      )
      expect(Option.map(error, (e) => [e._tag, e._tag === "RenewalError" ? e.reason : undefined])).toEqual(
        Option.some(["RenewalError", "Timeout"])
      )
      expect(sent).toBe(0)
      expect(yield* source.calls).toBe(1)
    })
  )

  it.scopedLive("a stopped bearer fails the request with StoppedError, typed", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(
        RenewableBearer.layer().pipe(Layer.provide(TestTokenSource.layer(steps))),
        scope
      )
      const bearer = Context.get(context, RenewableBearer.RenewableBearer)
      const api = yield* protectedApi(new Set([T1]))
      const client = yield* clientFor(bearer)
      expect((yield* client.get(`${api.url}/x`)).status).toBe(200)
      yield* Scope.close(scope, Exit.void)
      const error = yield* Effect.flip(client.get(`${api.url}/y`))
      expect(error._tag).toBe("StoppedError")
      expect(yield* api.count()).toBe(1)
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it.scopedLive("the current span carries bearer.retried and bearer.attempts", () =>
    Effect.gen(function* () {
      const { bearer } = yield* setup(steps)
      const api = yield* protectedApi(new Set([T2]))
      const client = yield* clientFor(bearer)
      const attributes = (path: string) =>
        Effect.gen(function* () {
          yield* client.get(`${api.url}${path}`)
          const span = yield* Effect.currentSpan
          return [span.attributes.get("bearer.retried"), span.attributes.get("bearer.attempts")]
        }).pipe(Effect.withSpan("caller"))
      expect(yield* attributes("/first")).toEqual([true, 2])
      expect(yield* attributes("/second")).toEqual([false, 1])
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it.scopedLive(
    "BearerHttpClient.layer replaces HttpClient; token failures become RequestError with the cause",
    () =>
      Effect.gen(function* () {
        const api = yield* protectedApi(new Set([T2]))
        const run = <A, E>(
          effect: Effect.Effect<A, E, HttpClient.HttpClient>,
          script: ReadonlyArray<TestTokenSource.Step>
        ) =>
          effect.pipe(
            Effect.provide(
              BearerHttpClient.layer({ fetchOptions: { reportError: true } }).pipe(
                Layer.provide(RenewableBearer.layer({ jitter: 0 }).pipe(Layer.orDie)),
                Layer.provide(TestTokenSource.layer(script)),
                Layer.provide(FetchHttpClient.layer)
              )
            )
          )
        const response = yield* run(
          Effect.flatMap(HttpClient.HttpClient, (client) => client.get(`${api.url}/x`)),
          steps
        )
        expect(response.status).toBe(200)
        expect(authHeaders(yield* api.requests)).toEqual([`Bearer ${T1}`, `Bearer ${T2}`])

        const error = yield* run(
          Effect.flatMap(HttpClient.HttpClient, (client) => client.get(`${api.url}/y`)),
          [TestTokenSource.fail("down")]
        ).pipe(Effect.flip)
        expect(error._tag).toBe("RequestError")
        expect(error.reason).toBe("Transport")
        expect((error.cause as { _tag: string })._tag).toBe("RenewalError")
        expect(error.request.headers["authorization"]).toBeUndefined()
      })
  )

  it.scopedLive("BearerHttpClient.layer in failing mode: a ResponseError (StatusCode) with the cause", () =>
    Effect.gen(function* () {
      const api = yield* protectedApi(new Set())
      const error = yield* Effect.flatMap(HttpClient.HttpClient, (client) => client.get(`${api.url}/z`)).pipe(
        Effect.provide(
          BearerHttpClient.layer({ failOnUnauthorized: true }).pipe(
            Layer.provide(RenewableBearer.layer({ jitter: 0 }).pipe(Layer.orDie)),
            Layer.provide(TestTokenSource.layer(steps)),
            Layer.provide(FetchHttpClient.layer)
          )
        ),
        Effect.flip
      )
      if (error._tag !== "ResponseError") throw new Error(`expected ResponseError, got ${error._tag}`)
      expect([error.reason, error.response.status]).toEqual(["StatusCode", 401])
      expect((error.cause as BearerHttpClient.UnauthorizedError).attempts).toBe(2)
      expect(yield* api.count()).toBe(2)
    })
  )

  it.scopedLive("the token never appears in logs, errors, or their renderings", () =>
    Effect.gen(function* () {
      const logs = yield* Ref.make<ReadonlyArray<string>>([])
      const logger = Logger.make(({ annotations, cause, logLevel, message }) => {
        const line = [
          logLevel.label,
          inspect(message, { depth: 10 }),
          inspect(annotations, { depth: 10 }),
          Cause.pretty(cause)
        ].join(" ")
        Effect.runSync(Ref.update(logs, (all) => [...all, line]))
      })
      const program = Effect.gen(function* () {
        const { bearer } = yield* setup(steps)
        const api = yield* protectedApi(new Set())
        const client = yield* failingClientFor(bearer)
        const error = yield* Effect.flip(client.get(`${api.url}/secret`))
        yield* Effect.logError("request failed", error)
        yield* Effect.logError(Cause.fail(error))
        return error
      })
      const error = yield* program.pipe(
        Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
        Logger.withMinimumLogLevel(LogLevel.All)
      )
      const all = yield* Ref.get(logs)
      // The capture works: the replay was logged at debug level.
      expect(all.some((line) => line.includes("replaying the request with a renewed token"))).toBe(true)
      const renderings = [
        ...all,
        String(error),
        JSON.stringify(error),
        inspect(error, { depth: 10 }),
        Cause.pretty(Cause.fail(error))
      ]
      for (const rendering of renderings) {
        for (const token of [T1, T2]) expect(rendering).not.toContain(token)
      }
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )
})

/** An API in memory: answers 200 to a token in `accepted`, 401 to any other; records the tokens it saw. */
const memoryApi = (accepted: Set<string>) => {
  const seen: Array<string> = []
  const client = HttpClient.make((request) =>
    Effect.sync(() => {
      const token = (request.headers["authorization"] ?? "").replace(/^Bearer /, "")
      seen.push(token)
      return HttpClientResponse.fromWeb(
        request,
        new Response(null, { status: accepted.has(token) ? 200 : 401 })
      )
    })
  )
  return { client, seen }
}

describe("BearerHttpClient: receivers on the request path", () => {
  it.scoped(
    "a request that finds a fresh token makes no receiver; after a 401 the receiver counts the first attempt",
    () =>
      Effect.gen(function* () {
        const { bearer, source } = yield* setup(steps)
        let made = 0
        const counted = RenewableBearer.RenewableBearer.of({
          ...bearer,
          receiver: Effect.tap(bearer.receiver, () => {
            made++
          })
        })
        const accepted = new Set([T1])
        const api = memoryApi(accepted)
        const client = api.client.pipe(BearerHttpClient.withBearer(counted))
        for (let i = 0; i < 5; i++) expect((yield* client.get("http://api.test/items")).status).toBe(200)
        // The first request learns that the bearer's receivers are the library's own; the others need none.
        expect(made).toBe(1)
        accepted.clear()
        const refused = yield* client.get("http://api.test/items")
        // The default budget of 2 attempts: the first (made without the receiver, counted by it) and one
        // replay with the renewed token. Uncounted, the replay would carry T1 again and a third attempt follow.
        expect(refused.status).toBe(401)
        expect(api.seen.slice(5)).toEqual([T1, T2])
        expect(made).toBe(2)
        expect(yield* source.calls).toBe(2)
      })
  )

  it.scoped(
    "synchronous fetchOptions: the receiver's canRetry invalidates the refused token, the client never does; the replay carries the renewed one",
    () =>
      Effect.gen(function* () {
        const { bearer, source } = yield* setup(steps)
        let invalidatedByClient = 0
        const watched = RenewableBearer.RenewableBearer.of({
          ...bearer,
          invalidate: (token) => {
            invalidatedByClient++
            return bearer.invalidate(token)
          }
        })
        const accepted = new Set([T1])
        const api = memoryApi(accepted)
        const client = api.client.pipe(
          BearerHttpClient.withBearer(watched, { fetchOptions: { synchronous: true } })
        )
        expect((yield* client.get("http://api.test/items")).status).toBe(200)
        yield* TestClock.adjust("1 minute")
        accepted.clear()
        accepted.add(T2)
        accepted.add(T3)
        const second = yield* client.get("http://api.test/items")
        expect(second.status).toBe(200)
        // The replay never carries the refused token. Whether the replay's own synchronous attempt is the only
        // renewal (T2) or follows the one the invalidation asked for (T3) depends on whether the request's
        // fiber yields between canRetry and the fetch; either way every renewal starts at once, at 60 s.
        expect(api.seen.slice(0, 2)).toEqual([T1, T1])
        expect([T2, T3]).toContain(api.seen[2])
        expect(invalidatedByClient).toBe(0)
        const times = yield* source.callTimes
        expect(times[0]).toBe(0)
        expect(times.slice(1)).toEqual(times.slice(1).map(() => 60_000))
        expect(times.length).toBe(api.seen[2] === T2 ? 2 : 3)
      })
  )

  it.scoped(
    "a bearer whose receivers are wrapped gets a receiver for every request, which sees every attempt",
    () =>
      Effect.gen(function* () {
        const { bearer } = yield* setup(steps)
        let fetches = 0
        const wrapped = RenewableBearer.RenewableBearer.of({
          ...bearer,
          receiver: Effect.map(bearer.receiver, (receiver) =>
            Receiver.Receiver.of({
              ...receiver,
              fetchWith: (options) => {
                fetches++
                return receiver.fetchWith(options)
              }
            })
          )
        })
        const api = memoryApi(new Set([T1]))
        const client = api.client.pipe(BearerHttpClient.withBearer(wrapped))
        for (let i = 0; i < 3; i++) expect((yield* client.get("http://api.test/items")).status).toBe(200)
        expect(fetches).toBe(3)
      })
  )
})
