/**
 * The OAuth 2.0 sources against a real, certified OpenID provider (`oidc-provider`) on loopback: signed client
 * authentication (`private_key_jwt` with RS256 and ES256, `client_secret_jwt`), RFC 8707 resource indicators,
 * discovery from the issuer URL, and the authorized client calling a protected route with the issued token.
 */
import { FetchHttpClient, HttpClient } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import { BearerHttpClient, OAuth2TokenSource, RenewableBearer, TokenSource } from "effect-renewable-bearer"
import * as jose from "jose"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import Provider, { errors } from "oidc-provider"
import { keyPair, type KeyPair } from "./utils/keys.js"
import { loopbackServer } from "../support/loopback.js"

const RESOURCE = "https://api.example.com/invoices"
const CLIENT_SECRET = "a-client-secret-that-is-long-enough-for-hs256-0123456789"

interface Fixture {
  readonly issuer: string
  readonly rs: KeyPair
  readonly es: KeyPair
  /** The provider's own signing key, to check the access tokens it issues. */
  readonly provider: KeyPair
}

/** `oidc-provider` on 127.0.0.1, a free port, for the scope of one test. */
const openIdProvider = Effect.gen(function* () {
  const [rs, es, signing] = yield* Effect.promise(() =>
    Promise.all([keyPair("RS256"), keyPair("ES256"), keyPair("ES256")])
  )
  const server = yield* Effect.acquireRelease(
    Effect.async<Http.Server>((resume) => {
      const server = Http.createServer()
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
    }),
    (server) =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  )
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const machine = {
    grant_types: ["client_credentials"],
    response_types: [],
    redirect_uris: [],
    scope: "invoices:read",
    // The provider signs with its one ES256 key.
    id_token_signed_response_alg: "ES256" as const
  }
  const provider = new Provider(issuer, {
    clients: [
      {
        ...machine,
        client_id: "rs-client",
        token_endpoint_auth_method: "private_key_jwt",
        jwks: { keys: [rs.publicJwk] }
      },
      {
        ...machine,
        client_id: "es-client",
        token_endpoint_auth_method: "private_key_jwt",
        jwks: { keys: [es.publicJwk] }
      },
      {
        ...machine,
        client_id: "hmac-client",
        client_secret: CLIENT_SECRET,
        token_endpoint_auth_method: "client_secret_jwt"
      }
    ],
    scopes: ["openid", "invoices:read"],
    jwks: { keys: [{ ...signing.jwk, kid: "provider-key", alg: "ES256", use: "sig" }] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => undefined,
        useGrantedResource: () => false,
        getResourceServerInfo: (_ctx: unknown, resourceIndicator: string) => {
          if (resourceIndicator !== RESOURCE) throw new errors.InvalidTarget()
          return {
            scope: "invoices:read",
            audience: RESOURCE,
            accessTokenTTL: 300,
            accessTokenFormat: "jwt",
            jwt: { sign: { alg: "ES256" } }
          }
        }
      }
    }
  })
  server.on("request", provider.callback())
  return { issuer, rs, es, provider: signing } satisfies Fixture
})

const fetchOnce = <E, R>(source: Effect.Effect<TokenSource.TokenSource["Type"], E, R>) =>
  Effect.flatMap(Effect.orDie(source), (s) => s.fetch)

describe("OAuth2TokenSource against oidc-provider on loopback", { timeout: 30_000 }, () => {
  it.live("client credentials with private_key_jwt (RS256, ES256) and client_secret_jwt are accepted", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const op = yield* openIdProvider
        const tokenUrl = `${op.issuer}/token`
        const rs = yield* fetchOnce(
          OAuth2TokenSource.clientCredentials({
            tokenUrl,
            clientId: "rs-client",
            privateKey: { alg: "RS256", pem: op.rs.redactedPem },
            scope: "invoices:read"
          })
        )
        const es = yield* fetchOnce(
          OAuth2TokenSource.clientCredentials({
            tokenUrl,
            clientId: "es-client",
            authMethod: "private_key_jwt",
            privateKey: { alg: "ES256", jwk: Redacted.make(op.es.jwk) },
            scope: "invoices:read"
          })
        )
        const hmac = yield* fetchOnce(
          OAuth2TokenSource.clientCredentials({
            tokenUrl,
            clientId: "hmac-client",
            clientSecret: Redacted.make(CLIENT_SECRET),
            authMethod: "client_secret_jwt",
            scope: "invoices:read"
          })
        )
        for (const token of [rs, es, hmac]) {
          expect(Redacted.value(token.value).length).toBeGreaterThan(20)
          expect(token.expiresAt._tag).toBe("Some")
        }
      }).pipe(Effect.provide(FetchHttpClient.layer))
    )
  )

  it.live("a wrong private key is refused with invalid_client as a permanent TokenSourceError", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const op = yield* openIdProvider
        const stranger = yield* Effect.promise(() => keyPair("ES256"))
        const error = yield* fetchOnce(
          OAuth2TokenSource.clientCredentials({
            tokenUrl: `${op.issuer}/token`,
            clientId: "es-client",
            privateKey: { alg: "ES256", pem: stranger.redactedPem }
          })
        ).pipe(Effect.flip)
        expect(error._tag).toBe("TokenSourceError")
        expect([error.status, error.code, error.isRetryable]).toEqual([401, "invalid_client", false])
        expect(error.message).not.toContain(stranger.pem.split("\n")[1]!)
      }).pipe(Effect.provide(FetchHttpClient.layer))
    )
  )

  it.live("resource is honoured: the issued JWT access token is for that resource", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const op = yield* openIdProvider
        const token = yield* fetchOnce(
          OAuth2TokenSource.clientCredentials({
            tokenUrl: `${op.issuer}/token`,
            clientId: "es-client",
            privateKey: { alg: "ES256", pem: op.es.redactedPem },
            scope: "invoices:read",
            resource: RESOURCE
          })
        )
        const { payload } = yield* Effect.promise(() =>
          jose.jwtVerify(Redacted.value(token.value), op.provider.publicKey, {
            issuer: op.issuer,
            audience: RESOURCE
          })
        )
        expect(payload).toMatchObject({ aud: RESOURCE, client_id: "es-client", scope: "invoices:read" })
        // The token's expiration is the one the provider set (accessTokenTTL 300 s).
        expect(Number(payload.exp) - Number(payload.iat)).toBe(300)
      }).pipe(Effect.provide(FetchHttpClient.layer))
    )
  )

  it.live("discovery from the issuer URL finds the token endpoint and the client's auth method", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const op = yield* openIdProvider
        const token = yield* fetchOnce(
          OAuth2TokenSource.clientCredentials({
            issuer: op.issuer,
            clientId: "rs-client",
            privateKey: { alg: "RS256", pem: op.rs.redactedPem },
            scope: "invoices:read",
            resource: RESOURCE
          })
        )
        expect(jose.decodeJwt(Redacted.value(token.value)).aud).toBe(RESOURCE)

        // A wrong issuer (a trailing slash the provider does not use) fails the build, naming the mismatch.
        const mismatch = yield* OAuth2TokenSource.clientCredentials({
          issuer: `${op.issuer}/`,
          clientId: "rs-client",
          privateKey: { alg: "RS256", pem: op.rs.redactedPem }
        }).pipe(Effect.flip)
        expect(mismatch).toMatchObject({ _tag: "DiscoveryError", reason: "IssuerMismatch" })
      }).pipe(Effect.provide(FetchHttpClient.layer))
    )
  )

  it.live("the authorized client calls a protected route with the token the provider issued", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const op = yield* openIdProvider
        const api = yield* loopbackServer(async (request) => {
          const bearer = /^Bearer (.+)$/.exec(request.headers.authorization ?? "")?.[1]
          if (bearer === undefined) return { status: 401, body: { error: "missing token" } }
          try {
            const { payload } = await jose.jwtVerify(bearer, op.provider.publicKey, {
              issuer: op.issuer,
              audience: RESOURCE
            })
            return { status: 200, body: { invoices: [], client: payload.client_id } }
          } catch {
            return { status: 401, body: { error: "invalid token" } }
          }
        })
        const SourceLive = OAuth2TokenSource.layerClientCredentials({
          issuer: op.issuer,
          clientId: "es-client",
          privateKey: { alg: "ES256", pem: op.es.redactedPem },
          scope: "invoices:read",
          resource: RESOURCE
        })
        const BearerLive = RenewableBearer.RenewableBearerLive.pipe(Layer.provide(SourceLive))
        const body = yield* Effect.gen(function* () {
          const client = yield* BearerHttpClient.authorize(yield* HttpClient.HttpClient, {
            failOnUnauthorized: true
          })
          const response = yield* client.get(`${api.url}/v1/invoices`)
          return yield* response.json
        }).pipe(Effect.provide(BearerLive), Effect.timeout("20 seconds"))
        expect(body).toEqual({ invoices: [], client: "es-client" })
      }).pipe(Effect.provide(FetchHttpClient.layer))
    )
  )
})
