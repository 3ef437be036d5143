/**
 * A hostile token endpoint on loopback (a real `node:http` server) against a real bearer over the OAuth 2.0
 * sources and `FetchHttpClient`. Each case answers the first token request with something hostile or broken,
 * then serves good tokens, and checks:
 *
 * - the error says what happened (and has the reason it should);
 * - the bearer stays up and serves the next good token;
 * - the process grows by less than the bound the case states (peak RSS and heap, sampled every 5 ms);
 * - neither the client secret, nor the subject token, nor any token the endpoint sent, in any encoding,
 *   appears in the error's String, JSON, inspect (also with showHidden), Cause.pretty, in any log line at
 *   any level (a capturing logger at LogLevel.All), or in any span (an in-memory OpenTelemetry exporter).
 */
import { FetchHttpClient } from "@effect/platform"
import { NodeSdk } from "@effect/opentelemetry"
import { describe, expect, it } from "@effect/vitest"
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Cause, Context, Duration, Effect, Layer, Logger, LogLevel, Redacted } from "effect"
import { type Errors, OAuth2TokenSource, RenewableBearer, Token, TokenSource } from "effect-renewable-bearer"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import { inspect } from "node:util"
import * as Zlib from "node:zlib"
import { closedPort } from "../support/loopback.js"

const CLIENT_ID = "svc:hostile"
/** Characters that every encoding changes: `/ + = & "` and a space. */
const SECRET = 'S3cr3t/Client+Secret=Value&"more" here'
const SUBJECT = "subject.token-for/exchange+4242"
const GOOD = "good-access-token-0001"
const HOSTILE = "hostile-access-token-9999"

const MB = 1024 * 1024

const formEncode = (s: string) => encodeURIComponent(s).replace(/%20/g, "+")
const base64 = (s: string) => Buffer.from(s).toString("base64")

/** Every form of a value that must never show: raw, cases, URL, form and JSON encodings, base64. */
const formsOf = (value: string): ReadonlyArray<string> => [
  value,
  value.toUpperCase(),
  value.toLowerCase(),
  encodeURIComponent(value),
  formEncode(value),
  new URLSearchParams({ v: value }).toString().slice(2),
  JSON.stringify(value).slice(1, -1),
  Array.from(value, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`).join(""),
  base64(value).replace(/=+$/, ""),
  Buffer.from(value).toString("base64url")
]

/** The `Authorization: Basic` credentials the client sends, and the naive ones (unencoded id and secret). */
const basicForms = [
  base64(`${formEncode(CLIENT_ID)}:${formEncode(SECRET)}`),
  base64(`${CLIENT_ID}:${SECRET}`)
]

const FORBIDDEN = [
  ...formsOf(SECRET),
  ...formsOf(SUBJECT),
  ...formsOf(GOOD),
  ...formsOf(HOSTILE),
  ...basicForms
]

const expectClean = (where: string, text: string) => {
  const lower = text.toLowerCase()
  for (const form of FORBIDDEN) {
    expect(lower.includes(form.toLowerCase()), `${where} shows ${JSON.stringify(form)}:\n${text}`).toBe(false)
  }
}

/** Every rendering of an error a program might print or ship. */
const renderings = (error: unknown): Record<string, string> => ({
  String: String(error),
  JSON: String(JSON.stringify(error)),
  inspect: inspect(error, { depth: 20 }),
  "inspect showHidden": inspect(error, { depth: 20, showHidden: true }),
  "Cause.pretty": Cause.pretty(Cause.fail(error))
})

type Handler = (req: Http.IncomingMessage, res: Http.ServerResponse, body: string) => void

const good: Handler = (_req, res) => {
  res.writeHead(200, { "content-type": "application/json" })
  res.end(JSON.stringify({ access_token: GOOD, token_type: "Bearer", expires_in: 3600 }))
}

const json =
  (status: number, body: unknown, headers?: Record<string, string>): Handler =>
  (_req, res) => {
    res.writeHead(status, { "content-type": "application/json", ...headers })
    res.end(typeof body === "string" ? body : JSON.stringify(body))
  }

const oauthError = (status: number, error: string, description?: string): Handler =>
  json(status, { error, error_description: description })

/** Writes `chunk` until the client goes away; never ends the response. */
const endless = (res: Http.ServerResponse | Zlib.Gzip, chunk: Buffer) => {
  const write = () => {
    while (!res.destroyed && !res.writableEnded && res.write(chunk)) {
      // until the socket pushes back
    }
    if (!res.destroyed) res.once("drain", write)
  }
  write()
}

/**
 * A token endpoint that answers the first request with `first` and every later one with a good token. It
 * counts the requests and the responses the client dropped before they ended.
 */
const hostileEndpoint = (first: Handler) =>
  Effect.gen(function* () {
    const state = { requests: 0, dropped: 0 }
    const server = yield* Effect.acquireRelease(
      Effect.async<Http.Server>((resume) => {
        const server = Http.createServer((req, res) => {
          const chunks: Array<Buffer> = []
          req.on("data", (chunk: Buffer) => chunks.push(chunk))
          req.on("end", () => {
            res.on("close", () => {
              if (!res.writableFinished) state.dropped++
            })
            const handler = state.requests++ === 0 ? first : good
            handler(req, res, Buffer.concat(chunks).toString("utf8"))
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
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, state }
  })

/** Keeps its spans when the SDK shuts down at the end of the scope. */
class KeepingExporter extends InMemorySpanExporter {
  override shutdown(): Promise<void> {
    return Promise.resolve()
  }
}

/** Peak growth of RSS and heap over the baseline while `effect` runs, sampled every 5 ms. */
const measured = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => {
      const baseline = process.memoryUsage()
      const peak = { rss: 0, heap: 0 }
      const sample = () => {
        const now = process.memoryUsage()
        peak.rss = Math.max(peak.rss, now.rss - baseline.rss)
        peak.heap = Math.max(peak.heap, now.heapUsed - baseline.heapUsed)
      }
      return { peak, sample, timer: setInterval(sample, 5) }
    }),
    ({ peak }) => Effect.map(effect, (result) => ({ result, peak })),
    ({ sample, timer }) => Effect.sync(() => (sample(), clearInterval(timer)))
  )

type Flow = "basic" | "post" | "exchange"

interface Case {
  readonly name: string
  /** The first answer; a function of the URL of a second, token-serving origin for redirects. */
  readonly reply: Handler | { readonly redirectTo: (other: string) => Handler }
  /** The reason of the `RenewalError` the first fetch fails with. */
  readonly reason: Errors.RenewalErrorReason
  /** What the error's message must say. */
  readonly says: RegExp
  readonly flow?: Flow
  /** Peak growth allowed, in bytes. Default 100 MB. */
  readonly memoryBound?: number
  /** Whether the client must have dropped the connection before the response ended. */
  readonly drops?: boolean
  readonly check?: (error: Errors.TokenSourceError | undefined) => void
}

/** The source under test: client credentials (Basic or post), or a token exchange of `SUBJECT`. */
const sourceLayer = (url: string, flow: Flow) =>
  flow === "exchange"
    ? OAuth2TokenSource.layerTokenExchange({
        tokenUrl: `${url}/token`,
        clientId: CLIENT_ID,
        clientSecret: Redacted.make(SECRET),
        authMethod: "client_secret_post"
      }).pipe(Layer.provide(TokenSource.layerToken(Token.make(SUBJECT))))
    : OAuth2TokenSource.layerClientCredentials({
        tokenUrl: `${url}/token`,
        clientId: CLIENT_ID,
        clientSecret: Redacted.make(SECRET),
        authMethod: flow === "post" ? "client_secret_post" : "client_secret_basic"
      })

const runCase = (c: Case) =>
  Effect.gen(function* () {
    const lines: Array<string> = []
    const logger = Logger.make(({ annotations, cause, logLevel, message, spans }) => {
      lines.push(
        [
          logLevel.label,
          inspect(message, { depth: 20 }),
          inspect(annotations, { depth: 20 }),
          inspect(spans, { depth: 5 }),
          Cause.pretty(cause)
        ].join(" ")
      )
    })
    const exporter = new KeepingExporter()
    const other = yield* hostileEndpoint(json(200, { access_token: HOSTILE, token_type: "Bearer" }))
    const server = yield* hostileEndpoint(
      typeof c.reply === "function" ? c.reply : c.reply.redirectTo(other.url)
    )
    const { peak, result } = yield* measured(
      Effect.gen(function* () {
        const context = yield* Layer.build(
          RenewableBearer.layer({
            name: "hostile",
            jitter: 0,
            initialRetryTimeout: "20 millis",
            maxRetryTimeout: "20 millis",
            refreshRequestTimeout: "2 seconds"
          }).pipe(
            Layer.provide(sourceLayer(server.url, c.flow ?? "basic")),
            Layer.provide(FetchHttpClient.layer)
          )
        )
        const bearer = Context.get(context, RenewableBearer.RenewableBearer)
        const error = yield* Effect.flip(bearer.fetch({ reportError: true, timeout: "10 seconds" }))
        const next = yield* bearer.fetch({ timeout: "10 seconds" })
        return { error, next }
      }).pipe(
        Effect.provide(Layer.merge(Logger.replace(Logger.defaultLogger, logger), otelLayer(exporter))),
        Logger.withMinimumLogLevel(LogLevel.All),
        Effect.scoped
      )
    )
    const { error, next } = result
    yield* Effect.promise(() => exporter.forceFlush())

    // The error says what happened.
    expect(error._tag).toBe("RenewalError")
    if (error._tag !== "RenewalError") return
    expect(error.reason).toBe(c.reason)
    expect(error.message).toMatch(c.says)
    const cause = error.cause as Errors.TokenSourceError | undefined
    c.check?.(cause)
    // The bearer stays up and serves the next good token.
    expect(Redacted.value(next.value)).toBe(GOOD)
    expect(other.state.requests).toBe(0)
    // Memory within the bound.
    const bound = c.memoryBound ?? 100 * MB
    expect(peak.rss, `peak RSS growth ${(peak.rss / MB).toFixed(1)} MB`).toBeLessThan(bound)
    expect(peak.heap, `peak heap growth ${(peak.heap / MB).toFixed(1)} MB`).toBeLessThan(bound)
    if (c.drops === true) expect(server.state.dropped).toBeGreaterThanOrEqual(1)
    // No secret, in any form, anywhere.
    for (const [how, text] of Object.entries({ ...renderings(error), ...renderings(cause) })) {
      expectClean(`the error's ${how}`, text)
    }
    expect(lines.some((line) => line.includes("RenewableBearer:"))).toBe(true)
    for (const line of lines) expectClean("a log line", line)
    const spans = exporter.getFinishedSpans()
    expect(spans.some((span) => span.name.startsWith("OAuth2TokenSource."))).toBe(true)
    for (const span of spans) {
      expectClean(
        `span ${span.name}`,
        JSON.stringify({ attributes: span.attributes, events: span.events, status: span.status })
      )
    }
  })

const otelLayer = (exporter: InMemorySpanExporter) =>
  NodeSdk.layer(() => ({
    resource: { serviceName: "hostile-endpoint-test" },
    spanProcessor: new SimpleSpanProcessor(exporter)
  }))

const zeros = Buffer.alloc(64 * 1024)
const echoAll = (value: string) => formsOf(value).join(" | ")

/** When the endpoint sent its HTTP-date `Retry-After`, and the date (one minute later, whole seconds). */
const retryAt = { sentAt: 0, date: "" }

const cases: ReadonlyArray<Case> = [
  // Bounded reads.
  {
    name: "an endless chunked body: cut at 64 KiB, the connection dropped, under 100 MB above the baseline",
    reply: (_req, res) => {
      res.writeHead(200, { "content-type": "application/json" })
      endless(res, Buffer.from(`{"access_token":"${"a".repeat(64 * 1024 - 20)}`))
    },
    reason: "SourceError",
    says: /answered 200 with a body larger than 65536 bytes \(maxResponseBytes\); the rest was not read/,
    drops: true,
    check: (error) => expect([error?.code, error?.retryable]).toEqual(["response_too_large", true])
  },
  {
    name: "a 100 MB body with its Content-Length: refused after the first chunk, under 100 MB",
    reply: (_req, res) => {
      res.writeHead(200, { "content-type": "application/json", "content-length": String(100 * MB) })
      endless(res, zeros)
    },
    reason: "SourceError",
    says: /with a body larger than 65536 bytes/,
    drops: true
  },
  {
    name: "an endless gzip bomb: the decompressed bytes count, cut at 64 KiB, under 100 MB",
    reply: (_req, res) => {
      res.writeHead(200, { "content-type": "application/json", "content-encoding": "gzip" })
      const gzip = Zlib.createGzip()
      gzip.pipe(res)
      res.on("close", () => gzip.destroy())
      endless(gzip, zeros)
    },
    reason: "SourceError",
    says: /with a body larger than 65536 bytes/,
    drops: true
  },
  {
    name: "a 60,000-character error_description: cut to 300 characters",
    reply: oauthError(400, "invalid_request", "x".repeat(60_000)),
    reason: "SourceError",
    says: /answered 400 invalid_request: x{300}…$/,
    check: (error) => expect(error?.message.length).toBeLessThan(400)
  },
  {
    name: "a 60,000-character error code: cut to 300 characters",
    reply: oauthError(400, "e".repeat(60_000)),
    reason: "SourceError",
    says: /answered 400 e{300}…$/,
    check: (error) => expect(error?.code).toBe(`${"e".repeat(300)}…`)
  },
  {
    name: "control characters and terminal escapes in the description: removed",
    reply: oauthError(
      400,
      "invalid_grant\r\nX-Forged: 1",
      "line one\nline two\u0000\u001b[31mred\u001b[0m\u2028end"
    ),
    reason: "SourceError",
    says: /answered 400 invalid_grantX-Forged: 1: line oneline two\[31mred\[0mend$/,
    check: (error) => {
      // eslint-disable-next-line no-control-regex
      expect(error?.message).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/)
    }
  },
  // Secrets in every form.
  {
    name: "echoes the Authorization: Basic header",
    reply: (req, res, body) =>
      oauthError(401, "invalid_client", `you sent ${req.headers.authorization}`)(req, res, body),
    reason: "SourceError",
    says: /answered 401 invalid_client: you sent Basic /
  },
  {
    name: "echoes the client_secret_post form body",
    flow: "post",
    reply: (_req, res, body) => oauthError(400, "invalid_client", `body was ${body}`)(_req, res, body),
    reason: "SourceError",
    says: /answered 400 invalid_client: body was .*client_secret=<redacted>/
  },
  {
    name: "echoes the secret raw, in upper case, URL- and form-encoded, JSON-escaped and in base64",
    reply: oauthError(400, "invalid_client", echoAll(SECRET)),
    reason: "SourceError",
    says: /answered 400 invalid_client: <redacted> \| <redacted> \| <redacted>/
  },
  {
    name: "echoes the secret in the error code",
    reply: oauthError(400, `bad_secret_${SECRET}`),
    reason: "SourceError",
    says: /answered 400 bad_secret_<redacted>/,
    check: (error) => expect(error?.code).toBe("bad_secret_<redacted>")
  },
  {
    name: "splits the secret with control and zero-width characters",
    reply: oauthError(400, "invalid_client", `${SECRET.slice(0, 5)}\u0000\u200b${SECRET.slice(5)}`),
    reason: "SourceError",
    says: /answered 400 invalid_client: <redacted>$/
  },
  {
    name: "echoes the subject token of a token exchange in every form",
    flow: "exchange",
    reply: (_req, res, body) =>
      oauthError(400, "invalid_grant", `${echoAll(SUBJECT)} from ${body}`)(_req, res, body),
    reason: "SourceError",
    says: /answered 400 invalid_grant: <redacted> \| /
  },
  {
    name: "echoes the token it issues in token_type",
    reply: json(200, { access_token: HOSTILE, token_type: `mac ${HOSTILE}` }),
    reason: "SourceError",
    says: /issued a token of type "mac <redacted>", which cannot be used as a bearer token/
  },
  // Redirects.
  {
    name: "a 302 to another origin that would serve a token: never followed",
    reply: {
      redirectTo: (other) => (_req, res) => {
        res.writeHead(302, { location: `${other}/token` })
        res.end()
      }
    },
    reason: "SourceError",
    says: /answered 302 to http:\/\/127\.0\.0\.1:\d+\/token: a token request never follows redirects/,
    check: (error) => expect([error?.status, error?.code, error?.retryable]).toEqual([302, "redirect", false])
  },
  {
    name: "a 307 to another origin: never followed",
    reply: {
      redirectTo: (other) => (_req, res) => {
        res.writeHead(307, { location: `${other}/token` })
        res.end()
      }
    },
    reason: "SourceError",
    says: /answered 307 to .*: a token request never follows redirects/
  },
  // Unsendable tokens.
  {
    name: "a token with CR LF (header injection)",
    reply: json(200, { access_token: `${HOSTILE}\r\nX-Injected: 1`, token_type: "Bearer" }),
    reason: "InvalidToken",
    says: /cannot be sent in a header .* at index 25$/
  },
  {
    name: "a token with a NUL",
    reply: json(200, { access_token: `${HOSTILE}\u0000`, token_type: "Bearer" }),
    reason: "InvalidToken",
    says: /cannot be sent in a header/
  },
  {
    name: "a whitespace-only token",
    reply: json(200, { access_token: "   ", token_type: "Bearer" }),
    reason: "SourceError",
    says: /invalid token response \(access_token\)/
  },
  {
    name: "a 20 KiB token",
    reply: json(200, { access_token: "h".repeat(20 * 1024), token_type: "Bearer" }),
    reason: "InvalidToken",
    says: /the token value is longer than 16384 characters \(20480\)/
  },
  {
    name: "a 50 MB token: refused at the body limit, under 100 MB",
    reply: (_req, res) => {
      res.writeHead(200, { "content-type": "application/json" })
      res.write('{"token_type":"Bearer","access_token":"')
      endless(res, Buffer.from("h".repeat(64 * 1024)))
    },
    reason: "SourceError",
    says: /with a body larger than 65536 bytes/,
    drops: true
  },
  // Retry-After.
  {
    name: "429 with Retry-After in seconds: retryAfter is set",
    reply: json(429, { error: "slow_down" }, { "retry-after": "120" }),
    reason: "SourceError",
    says: /answered 429 slow_down/,
    check: (error) => {
      expect(error?.retryable).toBe(true)
      expect(Duration.toMillis(error?.retryAfter ?? 0)).toBe(120_000)
    }
  },
  {
    name: "503 with Retry-After as an HTTP date: retryAfter counts to it",
    reply: (req, res, body) => {
      retryAt.sentAt = Date.now()
      retryAt.date = new Date(retryAt.sentAt + 60_000).toUTCString()
      json(503, "down", { "retry-after": retryAt.date })(req, res, body)
    },
    reason: "SourceError",
    says: /answered 503$/,
    check: (error) => {
      // Counted from the instant the answer arrived: after it was sent, before the test sees the error.
      const until = Date.parse(retryAt.date)
      const millis = Duration.toMillis(error?.retryAfter ?? 0)
      expect(millis).toBeLessThanOrEqual(until - retryAt.sentAt)
      expect(millis).toBeGreaterThanOrEqual(until - Date.now())
      expect(until - retryAt.sentAt).toBeGreaterThan(59_000)
    }
  },
  // What already held, kept as regression tests.
  {
    name: "malformed JSON",
    reply: json(200, `{"access_token": "${HOSTILE}", token_type`),
    reason: "SourceError",
    says: /answered 200 with an invalid token response \(\(body\)\)/
  },
  {
    name: "a negative expires_in",
    reply: json(200, { access_token: HOSTILE, token_type: "Bearer", expires_in: -5 }),
    reason: "SourceError",
    says: /invalid token response \(expires_in\)/
  },
  {
    name: "a non-numeric expires_in",
    reply: json(200, { access_token: HOSTILE, token_type: "Bearer", expires_in: "soon" }),
    reason: "SourceError",
    says: /invalid token response \(expires_in\)/
  },
  {
    name: "slow-loris: a byte every 50 ms, cut by refreshRequestTimeout",
    reply: (_req, res) => {
      res.writeHead(200, { "content-type": "application/json" })
      const timer = setInterval(() => res.write(" "), 50)
      res.on("close", () => clearInterval(timer))
    },
    reason: "SourceTimeout",
    says: /did not answer in time/,
    drops: true
  },
  {
    name: "a connection reset before the answer: the error names the cause",
    reply: (req) => req.socket.destroy(),
    reason: "SourceError",
    says: /the request to .* failed \(Transport: fetch failed: other side closed/
  },
  {
    name: "a connection reset in the middle of the body",
    reply: (req, res) => {
      res.writeHead(200, { "content-type": "application/json", "content-length": "1000" })
      res.write(`{"access_token":"${HOSTILE}`, () => req.socket.destroy())
    },
    reason: "SourceError",
    says: /the request to .* failed \(Decode: .*terminated/
  }
]

describe("a hostile token endpoint", { timeout: 30_000 }, () => {
  for (const c of cases) {
    it.scopedLive(c.name, () => runCase(c))
  }

  it.scopedLive("a refused connection: the log line names ECONNREFUSED and the address, no secret", () =>
    Effect.gen(function* () {
      const port = yield* closedPort
      const lines: Array<string> = []
      const logger = Logger.make(({ cause, message }) => {
        lines.push(`${inspect(message)} ${Cause.pretty(cause)}`)
      })
      const context = yield* Layer.build(
        RenewableBearer.layer({
          name: "refused",
          initialRetryTimeout: "1 hour",
          maxRetryTimeout: "1 hour"
        }).pipe(
          Layer.provide(sourceLayer(`http://127.0.0.1:${port}`, "basic")),
          Layer.provide(FetchHttpClient.layer)
        )
      ).pipe(
        Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
        Logger.withMinimumLogLevel(LogLevel.All)
      )
      const bearer = Context.get(context, RenewableBearer.RenewableBearer)
      const error = yield* Effect.flip(bearer.fetch({ reportError: true }))
      expect(error.message).toMatch(new RegExp(`ECONNREFUSED 127\\.0\\.0\\.1:${port}`))
      const warning = lines.find((line) => line.includes("RenewableBearer:"))
      expect(warning).toMatch(
        new RegExp(`failed \\(Transport: fetch failed: connect ECONNREFUSED 127\\.0\\.0\\.1:${port}\\)`)
      )
      for (const line of lines) expectClean("a log line", line)
      for (const text of Object.values(renderings(error))) expectClean("the error", text)
    })
  )
})
