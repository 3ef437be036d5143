import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import { Effect, Ref } from "effect"

/** A request as the loopback server saw it. */
export interface Recorded {
  readonly method: string
  /** Path and query. */
  readonly path: string
  readonly headers: Http.IncomingHttpHeaders
  readonly body: string
}

/** What a handler answers: a JSON body (an object) or text. */
export interface Reply {
  readonly status: number
  readonly body?: unknown
  readonly headers?: Readonly<Record<string, string>>
}

export type Handler = (request: Recorded) => Reply | Promise<Reply>

export interface LoopbackServer {
  /** `http://127.0.0.1:<port>` */
  readonly url: string
  /** Every request received so far, in order. */
  readonly requests: Effect.Effect<ReadonlyArray<Recorded>>
  /** How many requests arrived on `path` (all paths when omitted). */
  readonly count: (path?: string) => Effect.Effect<number>
}

/**
 * A real HTTP server on 127.0.0.1, on a free port, that lives as long as the test's scope. It records every
 * request and answers with `handler`.
 */
export const loopbackServer = (handler: Handler) =>
  Effect.gen(function* () {
    const recorded = yield* Ref.make<ReadonlyArray<Recorded>>([])
    const server = yield* Effect.acquireRelease(
      Effect.async<Http.Server>((resume) => {
        const server = Http.createServer((req, res) => {
          const chunks: Array<Buffer> = []
          req.on("data", (chunk: Buffer) => chunks.push(chunk))
          req.on("end", () => {
            const request: Recorded = {
              method: req.method ?? "GET",
              path: req.url ?? "/",
              headers: req.headers,
              body: Buffer.concat(chunks).toString("utf8")
            }
            Effect.runSync(Ref.update(recorded, (all) => [...all, request]))
            Promise.resolve()
              .then(() => handler(request))
              .then(
                (reply) => {
                  const isText = typeof reply.body === "string"
                  const body =
                    reply.body === undefined ? "" : isText ? String(reply.body) : JSON.stringify(reply.body)
                  res.writeHead(reply.status, {
                    "content-type": isText ? "text/plain" : "application/json",
                    ...reply.headers
                  })
                  res.end(body)
                },
                (error) => {
                  res.writeHead(500, { "content-type": "text/plain" })
                  res.end(String(error))
                }
              )
          })
        })
        server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
      }),
      (server) =>
        Effect.async<void>((resume) => {
          server.closeAllConnections()
          server.close(() => resume(Effect.void))
        })
    )
    const { port } = server.address() as AddressInfo
    return {
      url: `http://127.0.0.1:${port}`,
      requests: Ref.get(recorded),
      count: (path?: string) =>
        Effect.map(
          Ref.get(recorded),
          (all) => all.filter((r) => path === undefined || r.path.split("?")[0] === path).length
        )
    } satisfies LoopbackServer
  })

/** A port on 127.0.0.1 that nothing listens on (it was free a moment ago). */
export const closedPort = Effect.async<number>((resume) => {
  const server = Http.createServer()
  server.listen(0, "127.0.0.1", () => {
    const { port } = server.address() as AddressInfo
    server.close(() => resume(Effect.succeed(port)))
  })
})

/** Parses an `application/x-www-form-urlencoded` body. */
export const form = (body: string): Record<string, string> => Object.fromEntries(new URLSearchParams(body))

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url")

/** An unsigned-looking JWT with the given claims (the signature is junk: nothing here checks it). */
export const fakeJwt = (claims: Record<string, unknown>): string =>
  `${b64({ alg: "RS256", typ: "JWT" })}.${b64(claims)}.c2lnbmF0dXJl`
