import { FetchHttpClient, FileSystem } from "@effect/platform"
import { NodeFileSystem } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Layer, Logger, LogLevel, Redacted, TestClock } from "effect"
import { ServiceAccountKey, TokenSource } from "effect-renewable-bearer"
import * as jose from "jose"
import { inspect } from "node:util"
import { keyFragments, keyPair, type KeyPair } from "./utils/keys.js"

const T0 = Date.parse("2030-01-01T00:00:00Z")

const nebiusFile = (pair: KeyPair, overrides: Record<string, unknown> = {}) => ({
  "subject-credentials": {
    type: "JWT",
    alg: "RS256",
    "private-key": pair.pem,
    kid: "publickey-e00test",
    iss: "serviceaccount-e00test",
    sub: "serviceaccount-e00test",
    ...overrides
  }
})

const googleFile = (pair: KeyPair, overrides: Record<string, unknown> = {}) => ({
  type: "service_account",
  project_id: "demo-project",
  private_key_id: "0123456789abcdef",
  private_key: pair.pem,
  client_email: "reporter@demo-project.iam.gserviceaccount.com",
  client_id: "1234567890",
  token_uri: "https://oauth2.example.com/token",
  ...overrides
})

/** Writes `content` (JSON unless a string) to a fresh temporary file and returns its path. */
const keyFile = (content: unknown) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const dir = yield* fs.makeTempDirectoryScoped({ prefix: "erb-keys-" })
    const path = `${dir}/key.json`
    yield* fs.writeFileString(path, typeof content === "string" ? content : JSON.stringify(content))
    return path
  })

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

/** Collects every log line (message and annotations) written while `effect` runs. */
const captureLogs = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const lines: Array<string> = []
    const logger = Logger.make(({ annotations, cause, message }) => {
      lines.push(
        inspect(message, { depth: 10 }),
        inspect(annotations, { depth: 10, showHidden: true }),
        Cause.pretty(cause)
      )
    })
    const exit = yield* effect.pipe(
      Effect.tapErrorCause((cause) => Effect.logError("failed", cause)),
      Effect.exit,
      Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
      Logger.withMinimumLogLevel(LogLevel.All)
    )
    return { exit, lines }
  })

describe("ServiceAccountKey", { timeout: 20_000 }, () => {
  it.scoped("reads a Nebius CLI credentials file: service account id, key id, and the key as Redacted", () =>
    Effect.gen(function* () {
      const pair = yield* Effect.promise(() => keyPair("RS256"))
      const path = yield* keyFile(nebiusFile(pair))
      const credentials = yield* ServiceAccountKey.readNebiusCredentials(path)
      expect(credentials.serviceAccountId).toBe("serviceaccount-e00test")
      expect(credentials.keyId).toBe("publickey-e00test")
      expect(credentials.key.alg).toBe("RS256")
      expect("pem" in credentials.key && Redacted.value(credentials.key.pem)).toBe(pair.pem)
      expectNoKey(credentials, pair)
    }).pipe(Effect.provide(NodeFileSystem.layer))
  )

  it.scoped("a Nebius credentials file gives signed assertions for the token service, with the key id", () =>
    Effect.gen(function* () {
      const pair = yield* Effect.promise(() => keyPair("RS256"))
      const path = yield* keyFile(nebiusFile(pair))
      yield* TestClock.setTime(T0)
      const token = yield* Effect.flatMap(TokenSource.TokenSource, (s) => s.fetch).pipe(
        Effect.provide(ServiceAccountKey.layerNebiusAssertion({ path, lifetime: "1 minute" }))
      )
      const { payload, protectedHeader } = yield* Effect.promise(() =>
        jose.jwtVerify(Redacted.value(token.value), pair.publicKey, {
          audience: ServiceAccountKey.NebiusAudience,
          currentDate: new Date(T0)
        })
      )
      expect(protectedHeader).toMatchObject({ alg: "RS256", kid: "publickey-e00test" })
      expect(payload).toMatchObject({
        iss: "serviceaccount-e00test",
        sub: "serviceaccount-e00test",
        iat: T0 / 1000,
        exp: T0 / 1000 + 60
      })
    }).pipe(Effect.provide(NodeFileSystem.layer))
  )

  it.scoped("reads a Google service-account key: e-mail, key id, token_uri and the key as Redacted", () =>
    Effect.gen(function* () {
      const pair = yield* Effect.promise(() => keyPair("RS256"))
      const key = yield* ServiceAccountKey.readGoogleKey(yield* keyFile(googleFile(pair)))
      expect([key.clientEmail, key.keyId, key.tokenUri, key.projectId]).toEqual([
        "reporter@demo-project.iam.gserviceaccount.com",
        "0123456789abcdef",
        "https://oauth2.example.com/token",
        "demo-project"
      ])
      expect(key.key).toMatchObject({ alg: "RS256", keyId: "0123456789abcdef" })
      expectNoKey(key, pair)
      const withoutUri = yield* ServiceAccountKey.readGoogleKey(
        yield* keyFile(googleFile(pair, { token_uri: undefined }))
      )
      expect(withoutUri.tokenUri).toBe("https://oauth2.googleapis.com/token")
    }).pipe(Effect.provide(NodeFileSystem.layer))
  )

  describe("a bad key file fails with a KeyError that names the file and never shows the key", () => {
    it.scoped("a missing file, and one that is not JSON", () =>
      Effect.gen(function* () {
        const missing = yield* Effect.flip(
          ServiceAccountKey.readNebiusCredentials("/nonexistent/erb/key.json")
        )
        expect(missing).toMatchObject({
          _tag: "KeyError",
          reason: "NotFound",
          source: "/nonexistent/erb/key.json"
        })
        const pair = yield* Effect.promise(() => keyPair("RS256"))
        // Broken JSON right after the key: JSON.parse's own message would quote the text around it.
        const path = yield* keyFile(JSON.stringify(nebiusFile(pair)).replace(/"kid"/, "kid"))
        const notJson = yield* Effect.flip(ServiceAccountKey.readNebiusCredentials(path))
        expect(notJson.message).toBe(`Key ${path}: malformed key file: the file is not valid JSON`)
        expectNoKey(notJson, pair)
      }).pipe(Effect.provide(NodeFileSystem.layer))
    )

    it.scoped("fields missing or of the wrong type are named by path, not by value", () =>
      Effect.gen(function* () {
        const pair = yield* Effect.promise(() => keyPair("RS256"))
        const nebius = yield* Effect.flip(
          ServiceAccountKey.readNebiusCredentials(
            yield* keyFile(nebiusFile(pair, { kid: undefined, iss: 42 }))
          )
        )
        expect(nebius.reason).toBe("Malformed")
        expect(nebius.detail).toBe("subject-credentials.kid is missing, subject-credentials.iss is invalid")
        const google = yield* Effect.flip(
          ServiceAccountKey.readGoogleKey(
            yield* keyFile(googleFile(pair, { type: "authorized_user", client_email: undefined }))
          )
        )
        expect(google.detail).toBe("type is invalid, client_email is missing")
        // The key in a field of the wrong type still does not show.
        const keyAsNumberField = yield* Effect.flip(
          ServiceAccountKey.readGoogleKey(
            yield* keyFile(googleFile(pair, { client_email: { pem: pair.pem } }))
          )
        )
        expect(keyAsNumberField.detail).toBe("client_email is invalid")
        for (const error of [nebius, google, keyAsNumberField]) expectNoKey(error, pair)
      }).pipe(Effect.provide(NodeFileSystem.layer))
    )

    it.scoped("a PEM of the wrong type fails the layer at build", () =>
      Effect.gen(function* () {
        const pair = yield* Effect.promise(() => keyPair("RS256"))
        const ec = yield* Effect.promise(() => keyPair("ES256"))
        const publicKey = yield* keyFile(nebiusFile(pair, { "private-key": pair.spki }))
        const wrongCurve = yield* keyFile(nebiusFile(ec))
        const one = yield* Layer.build(ServiceAccountKey.layerNebiusAssertion({ path: publicKey })).pipe(
          Effect.flip
        )
        const two = yield* Layer.build(ServiceAccountKey.layerNebiusAssertion({ path: wrongCurve })).pipe(
          Effect.flip
        )
        expect(one).toMatchObject({ _tag: "KeyError", reason: "WrongKeyType", source: publicKey })
        expect(one.message).toContain("found -----BEGIN PUBLIC KEY-----")
        expect(two).toMatchObject({ _tag: "KeyError", reason: "WrongKeyType", source: wrongCurve })
        expectNoKey(two, ec)
        const google = yield* keyFile(googleFile(ec))
        const three = yield* Layer.build(
          ServiceAccountKey.layerGoogle({
            path: google,
            scopes: ["https://www.googleapis.com/auth/cloud-platform"]
          })
        ).pipe(Effect.flip)
        expect(three).toMatchObject({ _tag: "KeyError", reason: "WrongKeyType", source: google })
        expectNoKey(three, ec)
      }).pipe(Effect.provide([NodeFileSystem.layer, FetchHttpClient.layer]))
    )

    it.scoped("an unsupported alg, a type other than JWT, and iss different from sub", () =>
      Effect.gen(function* () {
        const pair = yield* Effect.promise(() => keyPair("RS256"))
        const alg = yield* Effect.flip(
          ServiceAccountKey.readNebiusCredentials(yield* keyFile(nebiusFile(pair, { alg: "HS256" })))
        )
        expect(alg).toMatchObject({ _tag: "KeyError", reason: "UnsupportedAlgorithm" })
        expect(alg.detail).toContain('subject-credentials.alg is "HS256"')
        const type = yield* Effect.flip(
          ServiceAccountKey.readNebiusCredentials(yield* keyFile(nebiusFile(pair, { type: "X509" })))
        )
        expect(type.reason).toBe("Malformed")
        const iss = yield* Effect.flip(
          ServiceAccountKey.readNebiusCredentials(
            yield* keyFile(nebiusFile(pair, { iss: "serviceaccount-other" }))
          )
        )
        expect(iss.reason).toBe("Malformed")
        for (const error of [alg, type, iss]) expectNoKey(error, pair)
      }).pipe(Effect.provide(NodeFileSystem.layer))
    )

    it.scoped("a failed build, logged with its cause, shows no key in any log line", () =>
      Effect.gen(function* () {
        const pair = yield* Effect.promise(() => keyPair("ES256"))
        const path = yield* keyFile(nebiusFile(pair))
        const { exit, lines } = yield* captureLogs(
          Layer.build(ServiceAccountKey.layerNebiusAssertion({ path })).pipe(
            Effect.tap((context) => Effect.log("built", context))
          )
        )
        expect(exit._tag).toBe("Failure")
        expect(lines.join("\n")).toContain("wrong key type")
        for (const fragment of keyFragments(pair)) expect(lines.join("\n")).not.toContain(fragment)
      }).pipe(Effect.provide(NodeFileSystem.layer))
    )
  })
})
