import { FetchHttpClient, HttpClient } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import { RenewableBearer } from "effect-renewable-bearer"
import * as Crypto from "node:crypto"
import * as BearerHttpClient from "../src/BearerHttpClient.js"
import * as OAuth2TokenSource from "../src/OAuth2TokenSource.js"
import { form, loopbackServer } from "../support/loopback.js"

/**
 * An identity provider and a protected API on one loopback server. Tokens are HMAC-signed with the server's
 * current key; `rotate()` replaces the key, and every token issued before is rejected with 401 from then on.
 */
const identityAndApi = Effect.gen(function* () {
  let key = Crypto.randomBytes(32)
  let issued = 0
  let rejected = 0
  const sign = (payload: string) => Crypto.createHmac("sha256", key).update(payload).digest("base64url")
  const server = yield* loopbackServer((request) => {
    if (request.path === "/oauth/token") {
      const params = form(request.body)
      const basic = Buffer.from(
        (request.headers.authorization ?? "").replace(/^Basic /, ""),
        "base64"
      ).toString()
      if (params.grant_type !== "client_credentials" || basic !== "orders-service:orders-secret") {
        return { status: 401, body: { error: "invalid_client" } }
      }
      const payload = `token-${++issued}`
      return {
        status: 200,
        body: { access_token: `${payload}.${sign(payload)}`, token_type: "Bearer", expires_in: 3600 }
      }
    }
    const [payload, signature] = (request.headers.authorization ?? "").replace(/^Bearer /, "").split(".")
    if (payload !== undefined && signature === sign(payload)) return { status: 200, body: { payload } }
    rejected++
    return { status: 401, body: { error: "invalid_token" } }
  })
  return {
    ...server,
    rotate: () => {
      key = Crypto.randomBytes(32)
    },
    issued: () => issued,
    rejected: () => rejected
  }
})

const HttpLive = (tokenUrl: string) =>
  BearerHttpClient.layer().pipe(
    Layer.provide(RenewableBearer.RenewableBearerLive),
    Layer.provide(
      OAuth2TokenSource.layerClientCredentials({
        tokenUrl,
        clientId: "orders-service",
        clientSecret: Redacted.make("orders-secret")
      })
    ),
    Layer.provide(FetchHttpClient.layer)
  )

const getOrders = (url: string) =>
  Effect.flatMap(HttpClient.HttpClient, (client) => client.get(`${url}/orders`)).pipe(
    Effect.flatMap((response) => Effect.map(response.json, (body) => ({ status: response.status, body })))
  )

describe(
  "end to end: client credentials, bearer, authorized client, key rotation",
  { timeout: 15_000 },
  () => {
    it.scopedLive(
      "after the server rotates its key, the client recovers with one renewal; the caller never sees 401",
      () =>
        Effect.gen(function* () {
          const server = yield* identityAndApi
          yield* Effect.gen(function* () {
            for (let i = 0; i < 3; i++) {
              expect(yield* getOrders(server.url)).toEqual({ status: 200, body: { payload: "token-1" } })
            }
            expect(server.issued()).toBe(1)

            server.rotate()
            for (let i = 0; i < 3; i++) {
              expect(yield* getOrders(server.url)).toEqual({ status: 200, body: { payload: "token-2" } })
            }
            expect(server.issued()).toBe(2)
            expect(server.rejected()).toBe(1)
            // 3 before the rotation, then 401 + replay, then 2 more.
            expect(yield* server.count("/orders")).toBe(7)
            expect(yield* server.count("/oauth/token")).toBe(2)
          }).pipe(Effect.provide(HttpLive(`${server.url}/oauth/token`)))
        })
    )

    it.scopedLive("many concurrent callers meet the rotated key: one renewal, every caller gets 200", () =>
      Effect.gen(function* () {
        const server = yield* identityAndApi
        yield* Effect.gen(function* () {
          expect((yield* getOrders(server.url)).status).toBe(200)
          server.rotate()
          const results = yield* Effect.all(
            Array.from({ length: 20 }, () => getOrders(server.url)),
            { concurrency: "unbounded" }
          )
          expect(results.every((r) => r.status === 200)).toBe(true)
          expect(server.issued()).toBe(2)
          expect(server.rejected()).toBeGreaterThanOrEqual(1)
          expect(server.rejected()).toBeLessThanOrEqual(20)
        }).pipe(Effect.provide(HttpLive(`${server.url}/oauth/token`)))
      })
    )
  }
)
