/**
 * The demo's two loopback servers, plain `node:http` on 127.0.0.1 and a free port:
 *
 * - an OAuth 2.0 token endpoint (client credentials grant, HTTP Basic client authentication) that issues
 *   short-lived opaque tokens, and that can be told to fail or hang for its next requests;
 * - a protected API that answers `200` to a currently valid token and `401` to anything else (a missing,
 *   unknown, expired or revoked token).
 *
 * Both are in-process: no account, no network. The servers keep the tokens they issued; nothing here ever
 * prints one.
 */
import { Effect } from "effect"
import { randomBytes } from "node:crypto"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"

/** Something the servers did that the timeline may show. */
export type ServerEvent =
  | { readonly _tag: "Issued"; readonly lifetimeMillis: number }
  | { readonly _tag: "Failed"; readonly status: number; readonly left: number }
  | { readonly _tag: "Held" }
  | { readonly _tag: "Revoked"; readonly revoked: boolean }
  | { readonly _tag: "Unauthorized" }

/** A scripted misbehaviour of the token endpoint, played one request at a time. */
export type EndpointFault = { readonly _tag: "Fail"; readonly status: number } | { readonly _tag: "Hang" }

export interface Servers {
  readonly tokenUrl: string
  readonly apiUrl: string
  readonly clientId: string
  readonly clientSecret: string
  /** Queues misbehaviours: each of the next token requests plays one of them, in order. */
  readonly script: (...faults: ReadonlyArray<EndpointFault>) => void
  /** How many scripted misbehaviours are still waiting for a request. */
  readonly pending: () => number
  /** Revokes the token issued last; the API answers 401 to it from now on. */
  readonly revokeCurrent: () => boolean
  readonly stats: () => ServerStats
}

export interface ServerStats {
  readonly tokenRequests: number
  readonly tokensIssued: number
  readonly tokenFailures: number
  readonly tokenHangs: number
  readonly apiOk: number
  readonly apiUnauthorized: number
}

const listen = (handler: Http.RequestListener) =>
  Effect.acquireRelease(
    Effect.async<Http.Server>((resume) => {
      const server = Http.createServer(handler)
      server.keepAliveTimeout = 30_000
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
    }),
    (server) =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  )

const urlOf = (server: Http.Server, path: string) =>
  `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`

const json = (
  res: Http.ServerResponse,
  status: number,
  body: unknown,
  headers?: Http.OutgoingHttpHeaders
) => {
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store", ...headers })
  res.end(JSON.stringify(body))
}

const readBody = (req: Http.IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    req.on("data", (chunk: Buffer) => chunks.push(chunk))
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
    req.on("error", reject)
  })

/**
 * Starts both servers in the current scope. `ttlMillis` is the lifetime of every issued token; `onEvent`
 * hears what happens.
 */
export const makeServers = (options: {
  readonly ttlMillis: number
  readonly onEvent: (event: ServerEvent) => void
}) =>
  Effect.gen(function* () {
    const clientId = "demo-client"
    const clientSecret = randomBytes(18).toString("base64url")
    const expected = `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString("base64")}`
    /** token value -> expiry (epoch millis). */
    const valid = new Map<string, number>()
    let latest: string | undefined
    const faults: Array<EndpointFault> = []
    const held = new Set<Http.ServerResponse>()
    const stats = {
      tokenRequests: 0,
      tokensIssued: 0,
      tokenFailures: 0,
      tokenHangs: 0,
      apiOk: 0,
      apiUnauthorized: 0
    }

    const tokenServer = yield* listen((req, res) => {
      void readBody(req).then((body) => {
        if (req.method !== "POST" || req.url !== "/oauth/token") return json(res, 404, { error: "not_found" })
        stats.tokenRequests++
        const fault = faults.shift()
        if (fault?._tag === "Hang") {
          // Hold the request without answering; the client gives up (its request timeout) and closes it.
          stats.tokenHangs++
          held.add(res)
          res.on("close", () => held.delete(res))
          return options.onEvent({ _tag: "Held" })
        }
        if (fault?._tag === "Fail") {
          stats.tokenFailures++
          options.onEvent({ _tag: "Failed", status: fault.status, left: faults.length })
          return json(res, fault.status, {
            error: "temporarily_unavailable",
            error_description: "injected fault"
          })
        }
        if (req.headers["authorization"] !== expected) {
          return json(res, 401, { error: "invalid_client" }, { "www-authenticate": 'Basic realm="demo"' })
        }
        if (new URLSearchParams(body).get("grant_type") !== "client_credentials") {
          return json(res, 400, { error: "unsupported_grant_type" })
        }
        const token = randomBytes(24).toString("base64url")
        const now = Date.now()
        for (const [value, expiry] of valid) if (expiry <= now) valid.delete(value)
        valid.set(token, now + options.ttlMillis)
        latest = token
        stats.tokensIssued++
        options.onEvent({ _tag: "Issued", lifetimeMillis: options.ttlMillis })
        json(res, 200, { access_token: token, token_type: "Bearer", expires_in: options.ttlMillis / 1000 })
      })
    })

    const apiServer = yield* listen((req, res) => {
      req.resume()
      const auth = req.headers["authorization"] ?? ""
      const token = auth.startsWith("Bearer ") ? auth.slice("Bearer ".length) : undefined
      const expiry = token === undefined ? undefined : valid.get(token)
      if (expiry !== undefined && Date.now() < expiry) {
        stats.apiOk++
        return json(res, 200, { ok: true, servedAt: new Date().toISOString() })
      }
      stats.apiUnauthorized++
      options.onEvent({ _tag: "Unauthorized" })
      json(res, 401, { error: "invalid_token" }, { "www-authenticate": 'Bearer error="invalid_token"' })
    })

    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        for (const res of held) res.destroy()
      })
    )

    return {
      tokenUrl: urlOf(tokenServer, "/oauth/token"),
      apiUrl: urlOf(apiServer, "/v1/reports"),
      clientId,
      clientSecret,
      script: (...more) => {
        faults.push(...more)
      },
      pending: () => faults.length,
      revokeCurrent: () => {
        const revoked = latest !== undefined && valid.delete(latest)
        options.onEvent({ _tag: "Revoked", revoked })
        return revoked
      },
      stats: () => ({ ...stats })
    } satisfies Servers
  })
