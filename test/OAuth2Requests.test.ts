import { FetchHttpClient } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Exit, Fiber, Option, Redacted, TestClock } from "effect"
import { OAuth2TokenSource, Token, TokenSource } from "effect-renewable-bearer"
import * as jose from "jose"
import { keyPair } from "./utils/keys.js"
import { loopbackServer, type Reply } from "../support/loopback.js"

const SECRET = "s3cr3t-client-secret-value-long-enough"
const T0 = Date.parse("2030-01-01T00:00:00Z")

const ok: Reply = { status: 200, body: { access_token: "access-1", token_type: "Bearer", expires_in: 600 } }

/** Every value of every parameter, in order: a form may repeat a name. */
const allParams = (body: string): Array<[string, string]> => Array.from(new URLSearchParams(body).entries())

const fetchOnce = <E, R>(source: Effect.Effect<TokenSource.TokenSource["Type"], E, R>) =>
  Effect.flatMap(Effect.orDie(source), (s) => s.fetch)

describe("OAuth2TokenSource request parameters", { timeout: 20_000 }, () => {
  it.scoped("resource and audience, one or many, and extra parameters go in the form", () =>
    Effect.gen(function* () {
      const server = yield* loopbackServer(() => ok)
      yield* fetchOnce(
        OAuth2TokenSource.clientCredentials({
          tokenUrl: `${server.url}/token`,
          clientId: "svc",
          clientSecret: Redacted.make(SECRET),
          resource: ["https://api.example.com/a", "https://api.example.com/b"],
          audience: "https://api.example.com",
          extraParams: { tenant: "t-1", claims: ["x", "y"] }
        })
      )
      const [request] = yield* server.requests
      expect(allParams(request!.body)).toEqual([
        ["tenant", "t-1"],
        ["claims", "x"],
        ["claims", "y"],
        ["grant_type", "client_credentials"],
        ["audience", "https://api.example.com"],
        ["resource", "https://api.example.com/a"],
        ["resource", "https://api.example.com/b"]
      ])
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it.effect("an extra parameter the library sets itself is refused when the source is built", () =>
    Effect.gen(function* () {
      const error = yield* OAuth2TokenSource.clientCredentials({
        tokenUrl: "http://127.0.0.1:1/token",
        clientId: "svc",
        clientSecret: Redacted.make(SECRET),
        extraParams: { grant_type: "password", client_id: "other", tenant: "t-1" }
      }).pipe(Effect.flip)
      expect(error).toMatchObject({
        _tag: "InvalidOptionsError",
        module: "OAuth2TokenSource",
        option: "extraParams"
      })
      expect(error.message).toBe(
        'Invalid OAuth2TokenSource option "extraParams": grant_type, client_id are set by the library; use its own option instead'
      )
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it.effect(
    "client authentication that misses what its method needs is refused when the source is built",
    () =>
      Effect.gen(function* () {
        const base = { tokenUrl: "http://127.0.0.1:1/token", clientId: "svc" }
        const cases = [
          [{ ...base, authMethod: "private_key_jwt" as const }, "privateKey"],
          [{ ...base, authMethod: "client_secret_basic" as const }, "clientSecret"],
          [{ ...base, authMethod: "client_secret_jwt" as const }, "clientSecret"],
          [
            { ...base, clientSecret: Redacted.make(SECRET), issuer: "https://issuer.example.com" },
            "tokenUrl"
          ],
          [{ clientId: "svc", clientSecret: Redacted.make(SECRET) }, "tokenUrl"],
          [{ ...base, authMethod: "client_secret_jvt" as OAuth2TokenSource.ClientAuthMethod }, "authMethod"]
        ] as const
        for (const [options, option] of cases) {
          const error = yield* OAuth2TokenSource.clientCredentials(options).pipe(Effect.flip)
          expect(error).toMatchObject({ _tag: "InvalidOptionsError", option })
        }
        const noClient = yield* OAuth2TokenSource.tokenExchange({
          tokenUrl: "http://127.0.0.1:1/token",
          clientSecret: Redacted.make(SECRET)
        }).pipe(
          Effect.provideService(TokenSource.TokenSource, TokenSource.fromToken(Token.make("subject"))),
          Effect.flip
        )
        expect(noClient).toMatchObject({ _tag: "InvalidOptionsError", option: "clientId" })
      }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it("the auth method is a closed union: a typo does not compile", () => {
    const options: OAuth2TokenSource.ClientCredentialsOptions = {
      tokenUrl: "https://auth.example.com/token",
      clientId: "svc",
      clientSecret: Redacted.make(SECRET),
      // @ts-expect-error "client_secret_jvt" is not a ClientAuthMethod
      authMethod: "client_secret_jvt"
    }
    expect(options.clientId).toBe("svc")
  })

  it.scoped(
    "client_secret_jwt signs an HS256 client assertion for each request: iss, sub, aud, exp, a fresh jti",
    () =>
      Effect.gen(function* () {
        const server = yield* loopbackServer(() => ok)
        yield* TestClock.setTime(T0)
        const source = yield* Effect.orDie(
          OAuth2TokenSource.clientCredentials({
            tokenUrl: `${server.url}/token`,
            clientId: "svc",
            clientSecret: Redacted.make(SECRET),
            authMethod: "client_secret_jwt"
          })
        )
        yield* source.fetch
        yield* TestClock.adjust("30 seconds")
        yield* source.fetch
        const requests = yield* server.requests
        const [a, b] = requests.map((r) => Object.fromEntries(new URLSearchParams(r.body)))
        expect(requests[0]!.headers.authorization).toBeUndefined()
        expect(a).toMatchObject({
          grant_type: "client_credentials",
          client_id: "svc",
          client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        })
        expect(a!.client_secret).toBeUndefined()
        const verified = yield* Effect.promise(() =>
          jose.jwtVerify(a!.client_assertion!, new TextEncoder().encode(SECRET), {
            audience: `${server.url}/token`,
            currentDate: new Date(T0)
          })
        )
        expect(verified.protectedHeader.alg).toBe("HS256")
        expect(verified.payload).toMatchObject({
          iss: "svc",
          sub: "svc",
          iat: T0 / 1000,
          exp: T0 / 1000 + 60
        })
        const second = jose.decodeJwt(b!.client_assertion!)
        expect(second.iat).toBe(T0 / 1000 + 30)
        expect(second.jti).not.toBe(verified.payload.jti)
      }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it.scoped("a server that echoes the signed client assertion does not get it into the error", () =>
    Effect.gen(function* () {
      const server = yield* loopbackServer((request) => {
        const assertion = new URLSearchParams(request.body).get("client_assertion") ?? ""
        return {
          status: 401,
          body: { error: "invalid_client", error_description: `bad assertion ${assertion}` }
        }
      })
      const error = yield* fetchOnce(
        OAuth2TokenSource.clientCredentials({
          tokenUrl: `${server.url}/token`,
          clientId: "svc",
          clientSecret: Redacted.make(SECRET),
          authMethod: "client_secret_jwt"
        })
      ).pipe(Effect.flip)
      const [request] = yield* server.requests
      const assertion = new URLSearchParams(request!.body).get("client_assertion")!
      expect([error.status, error.code, error.isRetryable]).toEqual([401, "invalid_client", false])
      expect(error.message).toContain("bad assertion <redacted>")
      for (const rendering of [error.message, String(error), JSON.stringify(error)]) {
        expect(rendering).not.toContain(assertion)
        expect(rendering).not.toContain(SECRET)
      }
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it.scoped("private_key_jwt: the assertion is signed with the private key and names its key id", () =>
    Effect.gen(function* () {
      const pair = yield* Effect.promise(() => keyPair("PS256"))
      const server = yield* loopbackServer(() => ok)
      yield* TestClock.setTime(T0)
      yield* fetchOnce(
        OAuth2TokenSource.clientCredentials({
          tokenUrl: `${server.url}/token`,
          clientId: "svc",
          privateKey: { alg: "PS256", pem: pair.redactedPem, keyId: "k-2030" }
        })
      )
      const [request] = yield* server.requests
      const params = Object.fromEntries(new URLSearchParams(request!.body))
      const verified = yield* Effect.promise(() =>
        jose.jwtVerify(params.client_assertion!, pair.publicKey, {
          audience: `${server.url}/token`,
          issuer: "svc",
          subject: "svc",
          currentDate: new Date(T0)
        })
      )
      expect(verified.protectedHeader).toMatchObject({ alg: "PS256", kid: "k-2030" })
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )
})

describe("OAuth2TokenSource discovery", { timeout: 20_000 }, () => {
  /** An authorization server whose metadata lives at the RFC 8414 path for an issuer with a path. */
  const metadataServer = (document: (url: string) => Record<string, unknown> | undefined) => {
    const holder = { url: "" }
    return Effect.map(
      loopbackServer((request) => {
        if (request.path === "/.well-known/oauth-authorization-server/tenant-a") {
          const body = document(holder.url)
          return body === undefined ? { status: 404, body: "not found" } : { status: 200, body }
        }
        if (request.path === "/token") return ok
        return { status: 404, body: "not found" }
      }),
      (server) => {
        holder.url = server.url
        return server
      }
    )
  }

  it.scoped("RFC 8414 metadata for an issuer with a path gives the token endpoint and the auth method", () =>
    Effect.gen(function* () {
      const server = yield* metadataServer((url) => ({
        issuer: `${url}/tenant-a`,
        token_endpoint: `${url}/token`,
        token_endpoint_auth_methods_supported: ["private_key_jwt", "client_secret_post"]
      }))
      const token = yield* fetchOnce(
        OAuth2TokenSource.clientCredentials({
          issuer: `${server.url}/tenant-a`,
          clientId: "svc",
          clientSecret: Redacted.make(SECRET)
        })
      )
      expect(Redacted.value(token.value)).toBe("access-1")
      const requests = yield* server.requests
      expect(requests.map((r) => r.path)).toEqual([
        "/.well-known/oauth-authorization-server/tenant-a",
        "/token"
      ])
      // client_secret_basic is not supported: the secret goes in the body.
      expect(requests[1]!.headers.authorization).toBeUndefined()
      expect(Object.fromEntries(new URLSearchParams(requests[1]!.body)).client_secret).toBe(SECRET)
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it.scoped("a document for another issuer, without a token endpoint, or missing fails the build", () =>
    Effect.gen(function* () {
      const build = (issuer: string) =>
        OAuth2TokenSource.clientCredentials({
          issuer,
          clientId: "svc",
          clientSecret: Redacted.make(SECRET)
        }).pipe(Effect.flip)
      const other = yield* metadataServer(() => ({ issuer: "https://evil.example.com", token_endpoint: "x" }))
      const mismatch = yield* build(`${other.url}/tenant-a`)
      expect(mismatch).toMatchObject({ _tag: "DiscoveryError", reason: "IssuerMismatch" })
      expect(mismatch.message).toContain('names the issuer "https://evil.example.com"')

      const partial = yield* metadataServer((url) => ({ issuer: `${url}/tenant-a` }))
      expect(yield* build(`${partial.url}/tenant-a`)).toMatchObject({ reason: "InvalidDocument" })

      const none = yield* metadataServer(() => undefined)
      const missing = yield* build(`${none.url}/tenant-a`)
      expect(missing).toMatchObject({ _tag: "DiscoveryError", reason: "Unreachable" })
      expect(missing.message).toContain("answered 404")
      expect(yield* none.count("/token")).toBe(0)
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it.scoped("the client's auth method must be one the server lists", () =>
    Effect.gen(function* () {
      const server = yield* metadataServer((url) => ({
        issuer: `${url}/tenant-a`,
        token_endpoint: `${url}/token`,
        token_endpoint_auth_methods_supported: ["private_key_jwt"]
      }))
      const error = yield* OAuth2TokenSource.clientCredentials({
        issuer: `${server.url}/tenant-a`,
        clientId: "svc",
        clientSecret: Redacted.make(SECRET),
        authMethod: "client_secret_basic"
      }).pipe(Effect.flip)
      expect(error).toMatchObject({ _tag: "DiscoveryError", reason: "UnsupportedAuthMethod" })
      expect(error.message).toContain("the client authenticates with client_secret_basic")
      expect(error.message).not.toContain(SECRET)
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it.scoped("discovery is bounded by discoveryTimeout", () =>
    Effect.gen(function* () {
      // The server never answers; it tells the test when the discovery request is in.
      const arrived = yield* Deferred.make<void>()
      const server = yield* loopbackServer(() => {
        Deferred.unsafeDone(arrived, Exit.void)
        return new Promise<Reply>(() => {})
      })
      const fiber = yield* OAuth2TokenSource.clientCredentials({
        issuer: server.url,
        clientId: "svc",
        clientSecret: Redacted.make(SECRET),
        discoveryTimeout: "3 seconds"
      }).pipe(Effect.flip, Effect.fork)
      // Once the request is in, the test clock runs to the timeout: not a millisecond before it fails.
      yield* Deferred.await(arrived)
      yield* TestClock.adjust(Duration.millis(2_999))
      expect(yield* Fiber.poll(fiber)).toEqual(Option.none())
      yield* TestClock.adjust("1 millis")
      const error = yield* Fiber.join(fiber)
      expect(error).toMatchObject({ _tag: "DiscoveryError", reason: "Timeout", issuer: server.url })
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )
})
