import { FetchHttpClient, FileSystem } from "@effect/platform"
import { NodeFileSystem } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Redacted, TestClock } from "effect"
import { JwtAssertion, OAuth2TokenSource, ServiceAccountKey, TokenSource } from "effect-renewable-bearer"
import * as jose from "jose"
import { keyPair } from "./utils/keys.js"
import { form, loopbackServer, type Recorded } from "../support/loopback.js"

const T0 = Date.parse("2030-01-01T00:00:00Z")

/**
 * A token endpoint that checks the signed JWT in `field` as a real one would: signature with the public key,
 * `aud`, `exp` and `iat` at the endpoint's `now` (set by the test from its TestClock), and a `jti` it has not
 * seen before. A good assertion gets a numbered access token; any other gets `400 invalid_grant` whose
 * description says why.
 */
const verifyingEndpoint = (options: {
  readonly publicKey: jose.CryptoKey
  readonly audience: string
  readonly field: "assertion" | "subject_token"
  readonly clock: { now: number }
}) => {
  const seen = new Set<string>()
  return loopbackServer(async (request) => {
    const assertion = form(request.body)[options.field] ?? ""
    try {
      const { payload } = await jose.jwtVerify(assertion, options.publicKey, {
        audience: options.audience,
        currentDate: new Date(options.clock.now),
        requiredClaims: ["iss", "sub", "iat", "exp", "jti"]
      })
      if (seen.has(payload.jti!)) {
        return { status: 400, body: { error: "invalid_grant", error_description: "jti already used" } }
      }
      seen.add(payload.jti!)
      return {
        status: 200,
        body: { access_token: `access-${seen.size}`, token_type: "Bearer", expires_in: 600 }
      }
    } catch (error) {
      return {
        status: 400,
        body: { error: "invalid_grant", error_description: (error as jose.errors.JOSEError).code }
      }
    }
  })
}

/** Posts a recorded request again, as an attacker who captured it would. */
const replay = (url: string, request: Recorded) =>
  Effect.promise(async () => {
    const response = await fetch(`${url}${request.path}`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: request.body
    })
    return { status: response.status, body: (await response.json()) as Record<string, unknown> }
  })

const fetchFrom = Effect.flatMap(TokenSource.TokenSource, (s) => s.fetch)

describe("signed grants against a token endpoint that verifies the assertion", { timeout: 20_000 }, () => {
  it.scoped(
    "the JWT bearer grant posts a new assertion on every fetch; a replayed assertion is refused",
    () =>
      Effect.gen(function* () {
        const pair = yield* Effect.promise(() => keyPair("ES256"))
        const clock = { now: T0 }
        const server = yield* verifyingEndpoint({
          publicKey: pair.publicKey,
          audience: "https://auth.example.com/token",
          field: "assertion",
          clock
        })
        yield* TestClock.setTime(T0)
        const context = yield* Layer.build(
          OAuth2TokenSource.layerJwtBearer({ tokenUrl: `${server.url}/token`, scope: ["reports:read"] }).pipe(
            Layer.provide(
              JwtAssertion.layer({
                key: { alg: "ES256", pem: pair.redactedPem, keyId: "k1" },
                issuer: "reporting-service",
                audience: "https://auth.example.com/token"
              })
            )
          )
        )
        const source = yield* Effect.provide(TokenSource.TokenSource, context)
        const first = yield* source.fetch
        yield* TestClock.adjust("10 seconds")
        clock.now = T0 + 10_000
        const second = yield* source.fetch
        expect([Redacted.value(first.value), Redacted.value(second.value)]).toEqual(["access-1", "access-2"])

        const requests = yield* server.requests
        expect(requests).toHaveLength(2)
        const [a, b] = requests.map((r) => form(r.body))
        expect(a).toMatchObject({ grant_type: OAuth2TokenSource.GrantTypeJwtBearer, scope: "reports:read" })
        expect(a.client_id).toBeUndefined()
        const [claimsA, claimsB] = [jose.decodeJwt(a.assertion!), jose.decodeJwt(b.assertion!)]
        expect(claimsA.jti).not.toBe(claimsB.jti)
        expect([claimsA.iat, claimsB.iat]).toEqual([T0 / 1000, T0 / 1000 + 10])

        const replayed = yield* replay(server.url, requests[0]!)
        expect(replayed).toEqual({
          status: 400,
          body: { error: "invalid_grant", error_description: "jti already used" }
        })
      }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it.scoped(
    "an assertion expires after its lifetime: the endpoint refuses it, the next fetch signs a new one",
    () =>
      Effect.gen(function* () {
        const pair = yield* Effect.promise(() => keyPair("RS256"))
        const clock = { now: T0 }
        const server = yield* verifyingEndpoint({
          publicKey: pair.publicKey,
          audience: "https://auth.example.com/token",
          field: "assertion",
          clock
        })
        yield* TestClock.setTime(T0)
        const source = yield* Effect.orDie(
          OAuth2TokenSource.jwtBearer({ tokenUrl: `${server.url}/token` }).pipe(
            Effect.provide(
              JwtAssertion.layer({
                key: { alg: "RS256", pem: pair.redactedPem },
                issuer: "reporting-service",
                audience: "https://auth.example.com/token",
                lifetime: "1 minute"
              })
            )
          )
        )
        yield* source.fetch
        const [signedAtT0] = yield* server.requests
        expect(jose.decodeJwt(form(signedAtT0!.body).assertion!).exp).toBe(T0 / 1000 + 60)

        // 61 seconds later the first assertion is expired, whatever its jti.
        yield* TestClock.adjust("61 seconds")
        clock.now = T0 + 61_000
        const stale = yield* replay(server.url, { ...signedAtT0!, body: signedAtT0!.body })
        expect(stale.body).toEqual({ error: "invalid_grant", error_description: "ERR_JWT_EXPIRED" })
        const fresh = yield* source.fetch
        expect(Redacted.value(fresh.value)).toBe("access-2")
        const last = (yield* server.requests).at(-1)!
        expect(jose.decodeJwt(form(last.body).assertion!)).toMatchObject({
          iat: T0 / 1000 + 61,
          exp: T0 / 1000 + 121
        })
      }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it.scoped(
    "a Nebius service account: the credentials file's assertion is exchanged for an access token",
    () =>
      Effect.gen(function* () {
        const pair = yield* Effect.promise(() => keyPair("RS256"))
        const fs = yield* FileSystem.FileSystem
        const dir = yield* fs.makeTempDirectoryScoped({ prefix: "erb-nebius-" })
        const path = `${dir}/credentials.json`
        yield* fs.writeFileString(
          path,
          JSON.stringify({
            "subject-credentials": {
              type: "JWT",
              alg: "RS256",
              "private-key": pair.pem,
              kid: "publickey-e00abc",
              iss: "serviceaccount-e00xyz",
              sub: "serviceaccount-e00xyz"
            }
          })
        )
        const clock = { now: T0 }
        const server = yield* verifyingEndpoint({
          publicKey: pair.publicKey,
          audience: ServiceAccountKey.NebiusAudience,
          field: "subject_token",
          clock
        })
        yield* TestClock.setTime(T0)
        const SourceLive = OAuth2TokenSource.layerTokenExchange({
          tokenUrl: `${server.url}/oauth2/token/exchange`,
          requestedTokenType: OAuth2TokenSource.TokenTypeAccessToken
        }).pipe(Layer.provide(ServiceAccountKey.layerNebiusAssertion({ path })))
        const source = yield* Effect.provide(TokenSource.TokenSource, yield* Layer.build(SourceLive))
        const token = yield* source.fetch
        yield* TestClock.adjust("5 seconds")
        clock.now = T0 + 5_000
        yield* source.fetch
        expect(Redacted.value(token.value)).toBe("access-1")
        const requests = yield* server.requests
        const [a, b] = requests.map((r) => form(r.body))
        expect(a).toMatchObject({
          grant_type: OAuth2TokenSource.GrantTypeTokenExchange,
          subject_token_type: OAuth2TokenSource.TokenTypeJwt,
          requested_token_type: OAuth2TokenSource.TokenTypeAccessToken
        })
        expect(jose.decodeProtectedHeader(a.subject_token!)).toMatchObject({
          alg: "RS256",
          kid: "publickey-e00abc"
        })
        expect(jose.decodeJwt(a.subject_token!)).toMatchObject({
          iss: "serviceaccount-e00xyz",
          sub: "serviceaccount-e00xyz",
          iat: T0 / 1000,
          exp: T0 / 1000 + 300
        })
        expect(jose.decodeJwt(a.subject_token!).jti).not.toBe(jose.decodeJwt(b.subject_token!).jti)
        const replayed = yield* replay(server.url, requests[1]!)
        expect(replayed.status).toBe(400)
      }).pipe(Effect.provide([FetchHttpClient.layer, NodeFileSystem.layer]))
  )

  it.scoped(
    "a Google service-account key and scopes are enough: the assertion goes to the key's token_uri",
    () =>
      Effect.gen(function* () {
        const pair = yield* Effect.promise(() => keyPair("RS256"))
        const clock = { now: T0 }
        const fs = yield* FileSystem.FileSystem
        const dir = yield* fs.makeTempDirectoryScoped({ prefix: "erb-google-" })
        const path = `${dir}/key.json`
        // The endpoint's URL is only known once it listens; the assertion's aud is the key's token_uri.
        const holder = { url: "" }
        const server = yield* loopbackServer(async (request) => {
          const { assertion } = form(request.body)
          const { payload } = await jose.jwtVerify(assertion!, pair.publicKey, {
            audience: holder.url,
            currentDate: new Date(clock.now)
          })
          return {
            status: 200,
            body: {
              access_token: `ya29.for-${String(payload.scope)}`,
              token_type: "Bearer",
              expires_in: 3599
            }
          }
        })
        holder.url = `${server.url}/token`
        yield* fs.writeFileString(
          path,
          JSON.stringify({
            type: "service_account",
            project_id: "demo",
            private_key_id: "abc123",
            private_key: pair.pem,
            client_email: "reporter@demo.iam.gserviceaccount.com",
            token_uri: holder.url
          })
        )
        yield* TestClock.setTime(T0)
        const token = yield* fetchFrom.pipe(
          Effect.provide(
            ServiceAccountKey.layerGoogle({
              path,
              scopes: ["https://www.googleapis.com/auth/devstorage.read_only", "openid"]
            }).pipe(Layer.orDie)
          )
        )
        expect(Redacted.value(token.value)).toBe(
          "ya29.for-https://www.googleapis.com/auth/devstorage.read_only openid"
        )
        const [request] = yield* server.requests
        const params = form(request!.body)
        expect(params.grant_type).toBe("urn:ietf:params:oauth:grant-type:jwt-bearer")
        expect(jose.decodeProtectedHeader(params.assertion!)).toMatchObject({ alg: "RS256", kid: "abc123" })
        expect(jose.decodeJwt(params.assertion!)).toMatchObject({
          iss: "reporter@demo.iam.gserviceaccount.com",
          aud: holder.url,
          iat: T0 / 1000,
          exp: T0 / 1000 + 300
        })
      }).pipe(Effect.provide([FetchHttpClient.layer, NodeFileSystem.layer]))
  )
})
