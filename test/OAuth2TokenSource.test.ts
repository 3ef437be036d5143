import { FetchHttpClient, FileSystem, HttpClient } from "@effect/platform"
import { NodeFileSystem } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import {
  Cause,
  Config,
  ConfigProvider,
  Context,
  DateTime,
  Duration,
  Effect,
  Fiber,
  Layer,
  Logger,
  LogLevel,
  Option,
  Redacted,
  TestClock
} from "effect"
import { RenewableBearer, Token, TokenSource } from "effect-renewable-bearer"
import { inspect } from "node:util"
import * as FileTokenSource from "../src/FileTokenSource.js"
import * as OAuth2TokenSource from "../src/OAuth2TokenSource.js"
import { closedPort, fakeJwt, form, loopbackServer, type Recorded, type Reply } from "../support/loopback.js"

const SECRET = "s3cr3t-client-secret-value"
const ACCESS = "access-token-value-0001"

const ok = (extra?: Record<string, unknown>): Reply => ({
  status: 200,
  body: { access_token: ACCESS, token_type: "Bearer", expires_in: 3600, ...extra }
})

/** A token endpoint that plays `replies` in order (the last one repeats). */
const tokenEndpoint = (
  ...replies: ReadonlyArray<Reply | ((request: Recorded) => Reply | Promise<Reply>)>
) => {
  let n = 0
  return loopbackServer((request) => {
    const reply = replies[Math.min(n++, replies.length - 1)]
    return typeof reply === "function" ? reply(request) : reply
  })
}

const clientCredentials = (url: string, options?: Partial<OAuth2TokenSource.ClientCredentialsOptions>) =>
  OAuth2TokenSource.clientCredentials({
    tokenUrl: `${url}/token`,
    clientId: "svc:billing",
    clientSecret: Redacted.make(SECRET),
    ...options
  })

const tokenOf = (value: string) => Token.make(value)

/** Builds the source (a build failure is a defect here) and fetches once. */
const fetchOnce = <E, R>(source: Effect.Effect<TokenSource.TokenSource["Type"], E, R>) =>
  Effect.flatMap(Effect.orDie(source), (s) => s.fetch)

/** Neither the client secret nor the access token may show in any rendering of a value. */
const expectNoSecrets = (value: unknown, ...secrets: ReadonlyArray<string>) => {
  const renderings = [String(value), JSON.stringify(value), (value as Error).message ?? ""]
  for (const rendering of renderings) {
    for (const secret of [SECRET, ACCESS, ...secrets]) expect(rendering).not.toContain(secret)
  }
}

describe("OAuth2TokenSource.clientCredentials", { timeout: 10_000 }, () => {
  it.scoped("posts a client_credentials grant with HTTP Basic client authentication (RFC 6749 2.3.1)", () =>
    Effect.gen(function* () {
      const server = yield* tokenEndpoint(ok())
      const token = yield* fetchOnce(
        clientCredentials(server.url, { scope: ["invoices:read", "invoices:write"], audience: "https://api" })
      )
      expect(Redacted.value(token.value)).toBe(ACCESS)

      const [request] = yield* server.requests
      expect(yield* server.count()).toBe(1)
      expect(request.method).toBe("POST")
      expect(request.path).toBe("/token")
      expect(request.headers["content-type"]).toBe("application/x-www-form-urlencoded")
      expect(request.headers["accept"]).toBe("application/json")
      // The client id is form-encoded before the Basic encoding: "svc:billing" -> "svc%3Abilling".
      expect(request.headers["authorization"]).toBe(
        `Basic ${Buffer.from(`svc%3Abilling:${SECRET}`).toString("base64")}`
      )
      expect(form(request.body)).toEqual({
        grant_type: "client_credentials",
        scope: "invoices:read invoices:write",
        audience: "https://api"
      })
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it.scoped("client_secret_post sends the credentials in the body instead", () =>
    Effect.gen(function* () {
      const server = yield* tokenEndpoint(ok())
      yield* fetchOnce(clientCredentials(server.url, { authMethod: "client_secret_post" }))
      const [request] = yield* server.requests
      expect(request.headers["authorization"]).toBeUndefined()
      expect(form(request.body)).toEqual({
        grant_type: "client_credentials",
        client_id: "svc:billing",
        client_secret: SECRET
      })
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it.scoped("expires_in is counted from the instant the response arrived, on Effect's Clock", () =>
    Effect.gen(function* () {
      let release!: () => void
      const released = new Promise<void>((resolve) => (release = resolve))
      let arrived!: () => void
      const received = new Promise<void>((resolve) => (arrived = resolve))
      const server = yield* tokenEndpoint(async () => {
        arrived()
        await released
        return ok({ expires_in: 600 })
      })
      yield* TestClock.setTime(1_700_000_000_000)
      const fiber = yield* Effect.fork(fetchOnce(clientCredentials(server.url)))
      yield* Effect.promise(() => received)
      // The server takes 10 seconds (on the test clock) to answer.
      yield* TestClock.adjust("10 seconds")
      release()
      const token = yield* Fiber.join(fiber)
      expect(Option.map(token.expiresAt, DateTime.toEpochMillis)).toEqual(
        Option.some(1_700_000_000_000 + 10_000 + 600_000)
      )
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it.scoped(
    "a token without expires_in lives the default lifetime of 1 hour; a numeric string expires_in is accepted",
    () =>
      Effect.gen(function* () {
        const server = yield* tokenEndpoint(
          { status: 200, body: { access_token: ACCESS, token_type: "bearer" } },
          ok({ expires_in: "120" })
        )
        yield* TestClock.setTime(1_000_000)
        const source = yield* Effect.orDie(clientCredentials(server.url))
        const anHour = yield* source.fetch
        const twoMinutes = yield* source.fetch
        expect(Option.map(anHour.expiresAt, DateTime.toEpochMillis)).toEqual(
          Option.some(1_000_000 + 3_600_000)
        )
        expect(Option.map(twoMinutes.expiresAt, DateTime.toEpochMillis)).toEqual(
          Option.some(1_000_000 + 120_000)
        )
      }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it.scoped(
    "without expires_in: a JWT access token's exp is its expiration, else defaultLifetime applies",
    () =>
      Effect.gen(function* () {
        const jwtAccess = fakeJwt({ sub: "svc", exp: 1_000 + 42 })
        const server = yield* tokenEndpoint(
          { status: 200, body: { access_token: jwtAccess, token_type: "Bearer" } },
          { status: 200, body: { access_token: ACCESS, token_type: "Bearer" } }
        )
        yield* TestClock.setTime(1_000_000)
        const source = yield* Effect.orDie(clientCredentials(server.url, { defaultLifetime: "90 seconds" }))
        const fromJwt = yield* source.fetch
        const opaque = yield* source.fetch
        expect(Option.map(fromJwt.expiresAt, DateTime.toEpochMillis)).toEqual(Option.some(1_042_000))
        expect(Option.map(opaque.expiresAt, DateTime.toEpochMillis)).toEqual(Option.some(1_000_000 + 90_000))
      }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it.scoped("a token without expires_in never expires only with defaultLifetime: Duration.infinity", () =>
    Effect.gen(function* () {
      const server = yield* tokenEndpoint({
        status: 200,
        body: { access_token: ACCESS, token_type: "Bearer" }
      })
      const source = yield* Effect.orDie(
        clientCredentials(server.url, { defaultLifetime: Duration.infinity })
      )
      const token = yield* source.fetch
      expect(Option.isNone(token.expiresAt)).toBe(true)
      const invalid = yield* Effect.flip(clientCredentials(server.url, { defaultLifetime: "soon" as never }))
      expect(invalid).toMatchObject({ _tag: "InvalidOptionsError", option: "defaultLifetime" })
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it.scoped("an OAuth error response keeps its code and status; invalid_client and co. are permanent", () =>
    Effect.gen(function* () {
      const cases = [
        [401, "invalid_client", false],
        [400, "invalid_grant", false],
        [400, "unauthorized_client", false],
        [400, "invalid_scope", false],
        [429, "slow_down", true],
        [503, "temporarily_unavailable", true]
      ] as const
      for (const [status, code, retryable] of cases) {
        const server = yield* tokenEndpoint({
          status,
          body: { error: code, error_description: `described ${code}` }
        })
        const error = yield* Effect.flip(fetchOnce(clientCredentials(server.url)))
        expect(error._tag).toBe("TokenSourceError")
        expect([error.status, error.code, error.retryable, error.isRetryable]).toEqual([
          status,
          code,
          retryable,
          retryable
        ])
        expect(error.message).toBe(
          `OAuth 2.0 client credentials: ${server.url}/token answered ${status} ${code}: described ${code}`
        )
        expectNoSecrets(error)
      }
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it.scoped("a 5xx without an OAuth body is retryable and has no code", () =>
    Effect.gen(function* () {
      const server = yield* tokenEndpoint({ status: 502, body: "<html>Bad Gateway</html>" })
      const error = yield* Effect.flip(fetchOnce(clientCredentials(server.url)))
      expect([error.status, error.code, error.retryable]).toEqual([502, undefined, true])
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it.scoped("a server that echoes the secret does not get it into the error", () =>
    Effect.gen(function* () {
      const server = yield* tokenEndpoint({
        status: 401,
        body: { error: "invalid_client", error_description: `client secret ${SECRET} is wrong` }
      })
      const error = yield* Effect.flip(fetchOnce(clientCredentials(server.url)))
      expect(error.message).toContain("client secret <redacted> is wrong")
      expectNoSecrets(error)
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it.scoped("a server that echoes the secret in the error code does not get it into the error", () =>
    Effect.gen(function* () {
      const server = yield* tokenEndpoint({ status: 400, body: { error: `bad client_secret=${SECRET}` } })
      const error = yield* Effect.flip(
        fetchOnce(clientCredentials(server.url, { authMethod: "client_secret_post" }))
      )
      expect([error.status, error.code]).toEqual([400, "bad client_secret=<redacted>"])
      expect(JSON.stringify(error)).not.toContain(SECRET)
      expectNoSecrets(error)
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it.scoped("a transport error is retryable and names the URL, not the request", () =>
    Effect.gen(function* () {
      const port = yield* closedPort
      const url = `http://127.0.0.1:${port}`
      const error = yield* Effect.flip(
        fetchOnce(clientCredentials(url, { authMethod: "client_secret_post" }))
      )
      expect(error.retryable).toBe(true)
      expect(error.status).toBeUndefined()
      expect(error.message).toMatch(
        new RegExp(`^OAuth 2\\.0 client credentials: the request to ${url}/token failed \\(Transport`)
      )
      expectNoSecrets(error)
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it.scoped("maxResponseBytes bounds the body; an invalid value is a permanent error, no request sent", () =>
    Effect.gen(function* () {
      const server = yield* tokenEndpoint(ok())
      const small = yield* Effect.flip(fetchOnce(clientCredentials(server.url, { maxResponseBytes: 16 })))
      expect([small.code, small.retryable, small.status]).toEqual(["response_too_large", true, 200])
      expect(small.message).toBe(
        `OAuth 2.0 client credentials: ${server.url}/token answered 200 with a body larger than 16 bytes (maxResponseBytes); the rest was not read`
      )
      const roomy = yield* fetchOnce(clientCredentials(server.url, { maxResponseBytes: 1024 }))
      expect(Redacted.value(roomy.value)).toBe(ACCESS)
      for (const bad of [0, -1, 1.5, NaN]) {
        const error = yield* Effect.flip(fetchOnce(clientCredentials(server.url, { maxResponseBytes: bad })))
        expect([error.code, error.retryable]).toEqual(["invalid_options", false])
      }
      expect(yield* server.count()).toBe(2)
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it.scoped(
    "a client that follows redirects itself (HttpClient.followRedirects): the redirect is refused",
    () =>
      Effect.gen(function* () {
        const elsewhere = yield* tokenEndpoint(ok())
        const server = yield* tokenEndpoint({ status: 302, headers: { location: `${elsewhere.url}/token` } })
        const error = yield* Effect.flip(
          fetchOnce(clientCredentials(server.url)).pipe(
            Effect.provideServiceEffect(
              HttpClient.HttpClient,
              Effect.map(HttpClient.HttpClient, HttpClient.followRedirects())
            )
          )
        )
        expect([error.code, error.retryable]).toEqual(["redirect", false])
        // The answer is refused, but such a client did send the request (and its credentials) there first.
        expect(yield* elsewhere.count()).toBe(1)
        expect(error.message).toBe(
          `OAuth 2.0 client credentials: ${server.url}/token answered with a redirect to ${elsewhere.url}/token: a token request never follows redirects`
        )
      }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it.scoped("a malformed success body is an error that names the fields, never their values", () =>
    Effect.gen(function* () {
      const server = yield* tokenEndpoint(
        { status: 200, body: { token_type: "Bearer", expires_in: 60 } },
        { status: 200, body: { access_token: ACCESS, token_type: "Bearer", expires_in: -5 } },
        { status: 200, body: "not json" },
        { status: 200, body: { access_token: ACCESS, token_type: "mac", expires_in: 60 } }
      )
      const source = yield* clientCredentials(server.url)
      const missing = yield* Effect.flip(source.fetch)
      const negative = yield* Effect.flip(source.fetch)
      const notJson = yield* Effect.flip(source.fetch)
      const mac = yield* Effect.flip(source.fetch)
      expect([missing.code, missing.retryable]).toEqual(["invalid_token_response", true])
      expect(missing.message).toContain("(access_token)")
      expect(negative.message).toContain("(expires_in)")
      expect(notJson.message).toContain("invalid token response")
      expect([mac.code, mac.retryable]).toEqual(["unsupported_token_type", false])
      for (const error of [missing, negative, notJson, mac]) expectNoSecrets(error)
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it.scopedLive("neither the secret nor the token appears in the bearer's logs", () => {
    const lines: Array<string> = []
    const logger = Logger.make(({ annotations, cause, logLevel, message }) => {
      lines.push(
        [logLevel.label, inspect(message, { depth: 10 }), inspect(annotations), Cause.pretty(cause)].join(" ")
      )
    })
    return Effect.gen(function* () {
      const server = yield* tokenEndpoint(
        { status: 401, body: { error: "invalid_client", error_description: `bad secret ${SECRET}` } },
        ok(),
        { status: 400, body: { error: "invalid_grant", error_description: `grant for ${SECRET} revoked` } }
      )
      const bearer = yield* Layer.build(
        RenewableBearer.layer({ initialRetryTimeout: "10 millis", maxRetryTimeout: "10 millis" }).pipe(
          Layer.provide(
            OAuth2TokenSource.layerClientCredentials({
              tokenUrl: `${server.url}/token`,
              clientId: "svc",
              clientSecret: Redacted.make(SECRET)
            })
          ),
          Layer.provide(FetchHttpClient.layer)
        )
      ).pipe(Effect.map(Context.get(RenewableBearer.RenewableBearer)))
      const token = yield* bearer.fetch({ timeout: "5 seconds" })
      yield* Effect.log("fetched", token)
      yield* Effect.logDebug(token)
      const failed = yield* Effect.flip(
        OAuth2TokenSource.clientCredentials({
          tokenUrl: `${server.url}/token`,
          clientId: "svc",
          clientSecret: Redacted.make(SECRET)
        }).pipe(Effect.flatMap((s) => s.fetch))
      )
      yield* Effect.logError("token request failed", Cause.fail(failed))
      expect(Redacted.value(token.value)).toBe(ACCESS)
      expect(yield* server.count()).toBe(3)
      // The capture works: the failed renewal was logged, with the (scrubbed) description.
      expect(lines.some((line) => line.includes("bad secret <redacted>"))).toBe(true)
      expect(lines.some((line) => line.includes("fetched"))).toBe(true)
      expect(lines.some((line) => line.includes("grant for <redacted> revoked"))).toBe(true)
      for (const line of lines) {
        expect(line).not.toContain(SECRET)
        expect(line).not.toContain(ACCESS)
      }
    }).pipe(
      Effect.provide([Logger.replace(Logger.defaultLogger, logger), FetchHttpClient.layer]),
      Logger.withMinimumLogLevel(LogLevel.All)
    )
  })

  it.scoped("layerClientCredentialsConfig reads the settings from Config, the secret redacted", () =>
    Effect.gen(function* () {
      const server = yield* tokenEndpoint(ok())
      const token = yield* Effect.flatMap(TokenSource.TokenSource, (s) => s.fetch).pipe(
        Effect.provide(
          OAuth2TokenSource.layerClientCredentialsConfig({
            tokenUrl: Config.string("OAUTH_TOKEN_URL"),
            clientId: Config.string("OAUTH_CLIENT_ID"),
            clientSecret: Config.redacted("OAUTH_CLIENT_SECRET"),
            scope: Config.string("OAUTH_SCOPE").pipe(Config.withDefault(undefined)),
            authMethod: Config.literal("client_secret_basic", "client_secret_post")("OAUTH_AUTH_METHOD")
          })
        ),
        Effect.withConfigProvider(
          ConfigProvider.fromMap(
            new Map([
              ["OAUTH_TOKEN_URL", `${server.url}/token`],
              ["OAUTH_CLIENT_ID", "from-config"],
              ["OAUTH_CLIENT_SECRET", SECRET],
              ["OAUTH_AUTH_METHOD", "client_secret_post"]
            ])
          )
        )
      )
      expect(Redacted.value(token.value)).toBe(ACCESS)
      const [request] = yield* server.requests
      expect(form(request.body)).toEqual({
        grant_type: "client_credentials",
        client_id: "from-config",
        client_secret: SECRET
      })
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )
})

describe("OAuth2TokenSource.tokenExchange", { timeout: 10_000 }, () => {
  const subjectFile = Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const dir = yield* fs.makeTempDirectoryScoped()
    const subject = fakeJwt({ sub: "system:serviceaccount:prod:billing", exp: 1_900_000_000 })
    yield* fs.writeFileString(`${dir}/token`, `${subject}\n`)
    return { path: `${dir}/token`, subject }
  })

  it.scoped(
    "exchanges the subject token from another source (a projected token file) for an access token",
    () =>
      Effect.gen(function* () {
        const server = yield* tokenEndpoint(
          ok({ issued_token_type: OAuth2TokenSource.TokenTypeAccessToken, expires_in: 300 })
        )
        const { path, subject } = yield* subjectFile
        yield* TestClock.setTime(5_000)
        const token = yield* Effect.flatMap(TokenSource.TokenSource, (s) => s.fetch).pipe(
          Effect.provide(
            OAuth2TokenSource.layerTokenExchange({
              tokenUrl: `${server.url}/token`,
              audience: "//iam.example.com/pools/prod",
              scope: "cloud-platform",
              requestedTokenType: OAuth2TokenSource.TokenTypeAccessToken
            }).pipe(Layer.provide(FileTokenSource.layer(path)))
          )
        )
        expect(Redacted.value(token.value)).toBe(ACCESS)
        expect(Option.map(token.expiresAt, DateTime.toEpochMillis)).toEqual(Option.some(5_000 + 300_000))
        const [request] = yield* server.requests
        expect(request.headers["authorization"]).toBeUndefined()
        expect(form(request.body)).toEqual({
          grant_type: "urn:ietf:params:oauth:grant-type:token-exchange",
          subject_token: subject,
          subject_token_type: "urn:ietf:params:oauth:token-type:jwt",
          requested_token_type: "urn:ietf:params:oauth:token-type:access_token",
          audience: "//iam.example.com/pools/prod",
          scope: "cloud-platform"
        })
      }).pipe(Effect.provide([FetchHttpClient.layer, NodeFileSystem.layer]))
  )

  it.scoped("optional client authentication, a custom subject token type, and token_type N_A", () =>
    Effect.gen(function* () {
      const server = yield* tokenEndpoint({
        status: 200,
        body: {
          access_token: ACCESS,
          token_type: "N_A",
          issued_token_type: OAuth2TokenSource.TokenTypeIdToken
        }
      })
      const source = yield* OAuth2TokenSource.tokenExchange({
        tokenUrl: `${server.url}/token`,
        subjectTokenType: OAuth2TokenSource.TokenTypeAccessToken,
        clientId: "exchanger",
        clientSecret: Redacted.make(SECRET),
        defaultLifetime: Duration.infinity
      }).pipe(
        Effect.provideService(TokenSource.TokenSource, TokenSource.fromToken(tokenOf("upstream-access"))),
        Effect.orDie
      )
      const token = yield* source.fetch
      expect(Redacted.value(token.value)).toBe(ACCESS)
      expect(Option.isNone(token.expiresAt)).toBe(true)
      const [request] = yield* server.requests
      expect(request.headers["authorization"]).toBe(
        `Basic ${Buffer.from(`exchanger:${SECRET}`).toString("base64")}`
      )
      expect(form(request.body)).toEqual({
        grant_type: OAuth2TokenSource.GrantTypeTokenExchange,
        subject_token: "upstream-access",
        subject_token_type: OAuth2TokenSource.TokenTypeAccessToken
      })
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it.scoped("a public client sends only client_id in the body", () =>
    Effect.gen(function* () {
      const server = yield* tokenEndpoint(ok())
      yield* OAuth2TokenSource.tokenExchange({ tokenUrl: `${server.url}/token`, clientId: "public" }).pipe(
        Effect.provideService(TokenSource.TokenSource, TokenSource.fromToken(tokenOf("subject"))),
        Effect.flatMap((s) => s.fetch)
      )
      const [request] = yield* server.requests
      expect(request.headers["authorization"]).toBeUndefined()
      expect(form(request.body).client_id).toBe("public")
      expect(form(request.body).client_secret).toBeUndefined()
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it.scoped("a failing subject source keeps its code and retryable flag; the endpoint is not called", () =>
    Effect.gen(function* () {
      const server = yield* tokenEndpoint(ok())
      const error = yield* Effect.flatMap(TokenSource.TokenSource, (s) => s.fetch).pipe(
        Effect.provide(
          OAuth2TokenSource.layerTokenExchange({ tokenUrl: `${server.url}/token` }).pipe(
            Layer.provide(Layer.orDie(FileTokenSource.layer("/nonexistent/effect-renewable-bearer/token"))),
            Layer.orDie
          )
        ),
        Effect.flip
      )
      expect([error.code, error.retryable]).toEqual(["file_not_found", true])
      expect(error.message).toBe(
        "OAuth 2.0 token exchange: the subject token is not available: Token file /nonexistent/effect-renewable-bearer/token does not exist"
      )
      expect(yield* server.count()).toBe(0)
    }).pipe(Effect.provide([FetchHttpClient.layer, NodeFileSystem.layer]))
  )

  it.scoped("an error that echoes the subject token does not get it into the error", () =>
    Effect.gen(function* () {
      const server = yield* tokenEndpoint({
        status: 400,
        body: { error: "invalid_grant", error_description: "subject_token subject-token-0042 is expired" }
      })
      const error = yield* OAuth2TokenSource.tokenExchange({ tokenUrl: `${server.url}/token` }).pipe(
        Effect.provideService(TokenSource.TokenSource, TokenSource.fromToken(tokenOf("subject-token-0042"))),
        Effect.orDie,
        Effect.flatMap((s) => s.fetch),
        Effect.flip
      )
      expect([error.status, error.code, error.retryable]).toEqual([400, "invalid_grant", false])
      expect(error.message).toContain("subject_token <redacted> is expired")
      expectNoSecrets(error, "subject-token-0042")
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it.scoped(
    "an error code that echoes the client secret or the subject token does not get them into the error",
    () =>
      Effect.gen(function* () {
        const server = yield* tokenEndpoint({
          status: 400,
          body: { error: `bad client_secret=${SECRET} for subject-token-0042` }
        })
        const error = yield* OAuth2TokenSource.tokenExchange({
          tokenUrl: `${server.url}/token`,
          clientId: "exchanger",
          clientSecret: Redacted.make(SECRET),
          authMethod: "client_secret_post"
        }).pipe(
          Effect.provideService(
            TokenSource.TokenSource,
            TokenSource.fromToken(tokenOf("subject-token-0042"))
          ),
          Effect.orDie,
          Effect.flatMap((s) => s.fetch),
          Effect.flip
        )
        expect([error.status, error.code]).toEqual([400, "bad client_secret=<redacted> for <redacted>"])
        expect(JSON.stringify(error)).not.toContain(SECRET)
        expectNoSecrets(error, "subject-token-0042")
      }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it.scoped("layerTokenExchangeConfig reads the settings from Config", () =>
    Effect.gen(function* () {
      const server = yield* tokenEndpoint(ok())
      yield* Effect.flatMap(TokenSource.TokenSource, (s) => s.fetch).pipe(
        Effect.provide(
          OAuth2TokenSource.layerTokenExchangeConfig({
            tokenUrl: Config.string("STS_URL"),
            audience: Config.string("STS_AUDIENCE")
          }).pipe(Layer.provide(TokenSource.layerToken(tokenOf("subject"))))
        ),
        Effect.withConfigProvider(
          ConfigProvider.fromMap(
            new Map([
              ["STS_URL", `${server.url}/token`],
              ["STS_AUDIENCE", "aud-from-config"]
            ])
          )
        )
      )
      const [request] = yield* server.requests
      expect(form(request.body).audience).toBe("aud-from-config")
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )
})
