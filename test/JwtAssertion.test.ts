import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Option, Redacted, TestClock } from "effect"
import { Errors, JwtAssertion, Token } from "effect-renewable-bearer"
import * as jose from "jose"
import { inspect } from "node:util"
import { keyFragments, keyPair, type KeyPair } from "./utils/keys.js"

const T0 = Date.parse("2030-01-01T00:00:00Z")

const fetchAssertion = (options: JwtAssertion.Options) =>
  Effect.flatMap(Effect.orDie(JwtAssertion.make(options)), (source) => source.fetch)

const verify = (jwt: string, pair: KeyPair, at: number, audience = "https://auth.example.com/token") =>
  Effect.promise(() =>
    jose.jwtVerify(jwt, pair.publicKey, {
      algorithms: [pair.alg],
      audience,
      issuer: "svc-42",
      currentDate: new Date(at)
    })
  )

/** Every rendering of a value that a log line or an error report could show. */
const renderings = (value: unknown): ReadonlyArray<string> => [
  String(value),
  JSON.stringify(value),
  inspect(value),
  inspect(value, { showHidden: true, depth: 10 }),
  value instanceof Error ? value.message : "",
  Cause.pretty(Cause.fail(value))
]

const expectNoKey = (value: unknown, pair: KeyPair) => {
  for (const rendering of renderings(value)) {
    for (const fragment of keyFragments(pair)) expect(rendering).not.toContain(fragment)
  }
}

describe("JwtAssertion", { timeout: 20_000 }, () => {
  for (const alg of ["RS256", "ES256", "EdDSA"] as const) {
    it.effect(
      `signs ${alg} assertions with iss, sub, aud, iat and exp from the Clock, a fresh jti and the kid`,
      () =>
        Effect.gen(function* () {
          const pair = yield* Effect.promise(() => keyPair(alg))
          yield* TestClock.setTime(T0 + 250)
          const token = yield* fetchAssertion({
            key: { alg, pem: pair.redactedPem, keyId: "key-7" },
            issuer: "svc-42",
            audience: "https://auth.example.com/token"
          })
          const { payload, protectedHeader } = yield* verify(Redacted.value(token.value), pair, T0)
          expect(protectedHeader).toEqual({ alg, typ: "JWT", kid: "key-7" })
          expect(payload).toEqual({
            iss: "svc-42",
            sub: "svc-42",
            aud: "https://auth.example.com/token",
            iat: T0 / 1000,
            exp: T0 / 1000 + 300,
            jti: expect.stringMatching(
              /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/
            )
          })
          // The token expires with the assertion.
          expect(Option.map(token.expiresAt, (d) => d.epochMillis)).toEqual(Option.some(T0 + 300_000))
        })
    )
  }

  it.effect("accepts a private JWK; its kid is the header's kid unless keyId is given", () =>
    Effect.gen(function* () {
      const pair = yield* Effect.promise(() => keyPair("ES256"))
      yield* TestClock.setTime(T0)
      const jwk = Redacted.make({ ...pair.jwk, kid: "jwk-kid" })
      const token = yield* fetchAssertion({ key: { alg: "ES256", jwk }, issuer: "svc-42", audience: "a" })
      const { protectedHeader } = yield* verify(Redacted.value(token.value), pair, T0, "a")
      expect(protectedHeader.kid).toBe("jwk-kid")
    })
  )

  it.effect("signs a new assertion for every fetch, its iat and exp following the TestClock", () =>
    Effect.gen(function* () {
      const pair = yield* Effect.promise(() => keyPair("ES256"))
      yield* TestClock.setTime(T0)
      const source = yield* Effect.orDie(
        JwtAssertion.make({
          key: { alg: "ES256", pem: pair.redactedPem },
          issuer: "svc-42",
          subject: "user-1",
          audience: ["a", "b"],
          lifetime: "90 seconds",
          claims: { scope: "read write" }
        })
      )
      const first = yield* source.fetch
      yield* TestClock.adjust("45 seconds")
      const second = yield* source.fetch
      const a = jose.decodeJwt(Redacted.value(first.value))
      const b = jose.decodeJwt(Redacted.value(second.value))
      expect([a.iat, a.exp, b.iat, b.exp]).toEqual([
        T0 / 1000,
        T0 / 1000 + 90,
        T0 / 1000 + 45,
        T0 / 1000 + 135
      ])
      expect([a.sub, a.aud, a.scope]).toEqual(["user-1", ["a", "b"], "read write"])
      expect(a.jti).not.toBe(b.jti)
      expect(Token.isExpiredAt(first, T0 + 90_000)).toBe(true)
      expect(Token.isExpiredAt(second, T0 + 90_000)).toBe(false)
    })
  )

  it.effect("refuses claims that override the registered ones, and a lifetime under one second", () =>
    Effect.gen(function* () {
      const pair = yield* Effect.promise(() => keyPair("ES256"))
      const base = { key: { alg: "ES256", pem: pair.redactedPem }, issuer: "svc", audience: "a" } as const
      const claims = yield* Effect.flip(JwtAssertion.make({ ...base, claims: { exp: 1, jti: "fixed" } }))
      expect(claims).toMatchObject({ _tag: "InvalidOptionsError", option: "claims" })
      expect(claims.message).toBe(
        'Invalid JwtAssertion option "claims": exp, jti are set by the library and cannot be overridden'
      )
      const lifetime = yield* Effect.flip(JwtAssertion.make({ ...base, lifetime: "10 millis" }))
      expect(lifetime).toMatchObject({ _tag: "InvalidOptionsError", option: "lifetime" })
    })
  )

  describe("a key that cannot be used fails the build with a KeyError that never shows the key", () => {
    it.effect("a public key PEM", () =>
      Effect.gen(function* () {
        const pair = yield* Effect.promise(() => keyPair("RS256"))
        const error = yield* Effect.flip(
          JwtAssertion.make({
            key: { alg: "RS256", pem: Redacted.make(pair.spki) },
            issuer: "svc",
            audience: "a"
          })
        )
        expect(error).toMatchObject({ _tag: "KeyError", reason: "WrongKeyType", source: "options" })
        expect(error.message).toContain("found -----BEGIN PUBLIC KEY-----")
      })
    )

    it.effect("a PKCS#1 RSA key names the conversion", () =>
      Effect.gen(function* () {
        const pair = yield* Effect.promise(() => keyPair("RS256"))
        const pkcs1 = pair.pem.replace(/BEGIN PRIVATE KEY/, "BEGIN RSA PRIVATE KEY")
        const error = yield* Effect.flip(
          JwtAssertion.make({
            key: { alg: "RS256", pem: Redacted.make(pkcs1) },
            issuer: "svc",
            audience: "a"
          })
        )
        expect(error).toMatchObject({ _tag: "KeyError", reason: "WrongKeyType" })
        expect(error.message).toContain("openssl pkcs8 -topk8")
        expectNoKey(error, pair)
      })
    )

    it.effect("an EC key for RS256, and an RSA key for ES256", () =>
      Effect.gen(function* () {
        const ec = yield* Effect.promise(() => keyPair("ES256"))
        const rsa = yield* Effect.promise(() => keyPair("RS256"))
        const one = yield* Effect.flip(
          JwtAssertion.make({ key: { alg: "RS256", pem: ec.redactedPem }, issuer: "svc", audience: "a" })
        )
        const two = yield* Effect.flip(
          JwtAssertion.make({ key: { alg: "ES256", pem: rsa.redactedPem }, issuer: "svc", audience: "a" })
        )
        expect(one).toMatchObject({ _tag: "KeyError", reason: "WrongKeyType" })
        expect(two).toMatchObject({ _tag: "KeyError", reason: "WrongKeyType" })
        expect(one.message).toBe(
          "Key options: wrong key type: the PKCS#8 private key cannot be used for RS256 (a key of another type, or a corrupt key)"
        )
        expectNoKey(one, ec)
        expectNoKey(two, rsa)
      })
    )

    it.effect("a public JWK, and an algorithm the library does not sign with", () =>
      Effect.gen(function* () {
        const pair = yield* Effect.promise(() => keyPair("ES256"))
        const publicJwk = yield* Effect.flip(
          JwtAssertion.make({
            key: { alg: "ES256", jwk: Redacted.make(pair.publicJwk) },
            issuer: "svc",
            audience: "a"
          })
        )
        expect(publicJwk).toMatchObject({ _tag: "KeyError", reason: "WrongKeyType" })
        const unsupported = yield* Effect.exit(
          JwtAssertion.make({
            key: { alg: "HS256" as JwtAssertion.Algorithm, pem: pair.redactedPem },
            issuer: "svc",
            audience: "a"
          })
        )
        expect(Exit.isFailure(unsupported)).toBe(true)
        const error = yield* Effect.flip(unsupported)
        expect(error).toMatchObject({ _tag: "KeyError", reason: "UnsupportedAlgorithm" })
        expect(Errors.isKeyError(error)).toBe(true)
        expectNoKey(error, pair)
      })
    )
  })
})
