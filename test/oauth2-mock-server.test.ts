import { FetchHttpClient, HttpClient } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Context, DateTime, Effect, Layer, Option, Redacted } from "effect"
import { RenewableBearer } from "effect-renewable-bearer"
import * as Crypto from "node:crypto"
import type { IncomingMessage } from "node:http"
import { OAuth2Server } from "oauth2-mock-server"
import * as BearerHttpClient from "../src/BearerHttpClient.js"
import * as OAuth2TokenSource from "../src/OAuth2TokenSource.js"
import { loopbackServer } from "../support/loopback.js"

const SECRET = "mock-server-client-secret"

interface MockIdentityProvider {
  readonly issuer: string
  readonly server: OAuth2Server
  /** How many token responses the server sent. */
  readonly tokensIssued: () => number
}

/**
 * oauth2-mock-server on a free loopback port, for the test's scope. Each token gets a counter `jti` and the
 * client id from the Basic credentials, so a renewed token differs from the last one and the test can see who
 * asked for it.
 */
const mockIdentityProvider = Effect.acquireRelease(
  Effect.promise(async (): Promise<MockIdentityProvider> => {
    const server = new OAuth2Server()
    await server.issuer.keys.generate("RS256")
    let issued = 0
    server.service.on(
      "beforeTokenSigning",
      (token: { payload: Record<string, unknown> }, req: IncomingMessage) => {
        const basic = (req.headers.authorization ?? "").replace(/^Basic /, "")
        token.payload.client_id = Buffer.from(basic, "base64").toString("utf8").split(":")[0]
        token.payload.jti = String(issued + 1)
      }
    )
    server.service.on("beforeResponse", () => {
      issued++
    })
    await server.start(0, "127.0.0.1")
    return { issuer: server.issuer.url!, server, tokensIssued: () => issued }
  }),
  ({ server }) => Effect.promise(() => server.stop())
)

const decodeClaims = (jwt: string): Record<string, unknown> =>
  JSON.parse(Buffer.from(jwt.split(".")[1], "base64url").toString("utf8"))

/** Checks an RS256 JWT against the mock server's public keys: a real signature check, with node:crypto. */
const verify = (server: OAuth2Server, jwt: string): boolean => {
  const [header, payload, signature] = jwt.split(".")
  if (signature === undefined) return false
  const { kid } = JSON.parse(Buffer.from(header, "base64url").toString("utf8")) as { kid?: string }
  const keys = server.issuer.keys.toJSON() as ReadonlyArray<Crypto.JsonWebKey & { kid?: string }>
  const jwk = keys.find((key) => key.kid === kid)
  if (jwk === undefined) return false
  const exp = decodeClaims(jwt).exp as number
  return (
    Crypto.verify(
      "RSA-SHA256",
      Buffer.from(`${header}.${payload}`),
      Crypto.createPublicKey({ key: jwk, format: "jwk" }),
      Buffer.from(signature, "base64url")
    ) && exp * 1000 > Date.now()
  )
}

describe("OAuth2TokenSource against oauth2-mock-server", { timeout: 15_000 }, () => {
  it.scopedLive("fetches a token, renews it, and uses it on a protected route", () =>
    Effect.gen(function* () {
      const idp = yield* mockIdentityProvider
      const api = yield* loopbackServer((request) => {
        const jwt = (request.headers.authorization ?? "").replace(/^Bearer /, "")
        return verify(idp.server, jwt)
          ? { status: 200, body: { jti: decodeClaims(jwt).jti } }
          : { status: 401, body: { error: "invalid_token" } }
      })
      const context = yield* Layer.build(
        RenewableBearer.RenewableBearerLive.pipe(
          Layer.provide(
            OAuth2TokenSource.layerClientCredentials({
              tokenUrl: `${idp.issuer}/token`,
              clientId: "billing-worker",
              clientSecret: Redacted.make(SECRET),
              scope: ["invoices:read"]
            })
          ),
          Layer.provide(FetchHttpClient.layer)
        )
      )
      const bearer = Context.get(context, RenewableBearer.RenewableBearer)
      const client = yield* BearerHttpClient.authorize(yield* HttpClient.HttpClient, {
        failOnUnauthorized: true
      }).pipe(Effect.provide(context))

      const before = Date.now()
      const first = yield* bearer.fetch()
      const claims = decodeClaims(Redacted.value(first.value))
      expect(claims).toMatchObject({ jti: "1", client_id: "billing-worker", scope: "invoices:read" })
      expect(verify(idp.server, Redacted.value(first.value))).toBe(true)
      // expires_in = 3600, counted from the response: within the test's window.
      const expiresAt = Option.getOrThrow(Option.map(first.expiresAt, DateTime.toEpochMillis))
      expect(expiresAt).toBeGreaterThanOrEqual(before + 3_600_000)
      expect(expiresAt).toBeLessThanOrEqual(Date.now() + 3_600_000)

      const used = yield* client.get(`${api.url}/invoices`)
      expect(yield* used.json).toEqual({ jti: "1" })

      const renewed = yield* bearer.fetch({ renewRequired: true, timeout: "5 seconds" })
      expect(decodeClaims(Redacted.value(renewed.value)).jti).toBe("2")
      const usedRenewed = yield* client.get(`${api.url}/invoices`)
      expect(yield* usedRenewed.json).toEqual({ jti: "2" })

      expect(idp.tokensIssued()).toBe(2)
      expect(yield* api.count()).toBe(2)
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it.scopedLive("an invalid_client answer is a permanent TokenSourceError with code and status", () =>
    Effect.gen(function* () {
      const idp = yield* mockIdentityProvider
      idp.server.service.once("beforeResponse", (response: { body: unknown; statusCode: number }) => {
        response.body = { error: "invalid_client", error_description: "unknown client" }
        response.statusCode = 401
      })
      const source = yield* OAuth2TokenSource.clientCredentials({
        tokenUrl: `${idp.issuer}/token`,
        clientId: "revoked",
        clientSecret: Redacted.make(SECRET),
        authMethod: "client_secret_post"
      })
      const error = yield* Effect.flip(source.fetch)
      expect([error.status, error.code, error.retryable]).toEqual([401, "invalid_client", false])
      expect(error.message).toBe(
        `OAuth 2.0 client credentials: ${idp.issuer}/token answered 401 invalid_client: unknown client`
      )
      expect(JSON.stringify(error)).not.toContain(SECRET)
      // The next request gets a token again.
      const token = yield* source.fetch
      expect(decodeClaims(Redacted.value(token.value)).scope).toBeUndefined()
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )
})
