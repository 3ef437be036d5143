import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as jose from "jose"
import type { Algorithm, HmacAlgorithm, Options, PrivateKey } from "../JwtAssertion.js"
import { InvalidOptionsError, KeyError, TokenSourceError } from "./errors.js"
import { TokenSource } from "./tags.js"
import { make as makeToken } from "./token.js"

/** The asymmetric algorithms a private key may sign with. @internal */
export const privateKeyAlgorithms: ReadonlyArray<Algorithm> = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
  "Ed25519"
]

/** The HMAC algorithms of `client_secret_jwt`. @internal */
export const hmacAlgorithms: ReadonlyArray<HmacAlgorithm> = ["HS256", "HS384", "HS512"]

/**
 * A key ready to sign: a non-extractable `CryptoKey` for a private key, the secret's bytes for HMAC. It
 * prints as `<signing key …>` without any key material.
 *
 * @internal
 */
export class SigningKey {
  readonly #key: jose.CryptoKey | Uint8Array
  constructor(
    readonly alg: string,
    readonly keyId: string | undefined,
    key: jose.CryptoKey | Uint8Array
  ) {
    this.#key = key
  }
  /** @internal */
  get material(): jose.CryptoKey | Uint8Array {
    return this.#key
  }
  toString(): string {
    return `<signing key ${this.alg}${this.keyId === undefined ? "" : ` ${this.keyId}`}>`
  }
  toJSON(): unknown {
    return { _id: "SigningKey", alg: this.alg, keyId: this.keyId }
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString()
  }
}

const pemLabel = (pem: string): string | undefined => /-----BEGIN ([A-Z0-9 ]+)-----/.exec(pem)?.[1]

/** @internal */
export const isPrivateKeyAlgorithm = (alg: string): alg is Algorithm =>
  (privateKeyAlgorithms as ReadonlyArray<string>).includes(alg)

/**
 * Imports a private key (PKCS#8 PEM or JWK) for the given algorithm. The key material is never part of an
 * error: a wrong PEM type names the PEM label, a key that does not fit the algorithm names the algorithm.
 *
 * @internal
 */
export const importPrivateKey = (key: PrivateKey, source: string): Effect.Effect<SigningKey, KeyError> =>
  Effect.suspend(() => {
    const alg: string = key.alg
    if (!isPrivateKeyAlgorithm(alg)) {
      return Effect.fail(
        new KeyError({
          reason: "UnsupportedAlgorithm",
          source,
          detail: `"${alg}" (supported: ${privateKeyAlgorithms.join(", ")})`
        })
      )
    }
    if ("pem" in key) {
      const pem = Redacted.value(key.pem).trim()
      const label = pemLabel(pem)
      if (label !== "PRIVATE KEY") {
        return Effect.fail(
          new KeyError({
            reason: "WrongKeyType",
            source,
            detail:
              label === undefined
                ? "expected a PKCS#8 PEM private key (-----BEGIN PRIVATE KEY-----), found no PEM block"
                : `expected a PKCS#8 PEM private key (-----BEGIN PRIVATE KEY-----), found -----BEGIN ${label}-----` +
                  (label.endsWith("PRIVATE KEY") ? " (convert it with `openssl pkcs8 -topk8 -nocrypt`)" : "")
          })
        )
      }
      return Effect.tryPromise({
        try: () => jose.importPKCS8(pem, alg),
        catch: () =>
          new KeyError({
            reason: "WrongKeyType",
            source,
            detail: `the PKCS#8 private key cannot be used for ${alg} (a key of another type, or a corrupt key)`
          })
      }).pipe(Effect.map((imported) => new SigningKey(alg, key.keyId, imported)))
    }
    const jwk = Redacted.value(key.jwk)
    if (jwk.d === undefined) {
      return Effect.fail(
        new KeyError({ reason: "WrongKeyType", source, detail: 'the JWK is a public key (it has no "d")' })
      )
    }
    return Effect.tryPromise({
      try: () => jose.importJWK(jwk, alg),
      catch: () =>
        new KeyError({
          reason: "WrongKeyType",
          source,
          detail: `the JWK (kty ${typeof jwk.kty === "string" ? jwk.kty : "missing"}) cannot be used for ${alg}`
        })
    }).pipe(
      Effect.map(
        (imported) =>
          new SigningKey(alg, key.keyId ?? (typeof jwk.kid === "string" ? jwk.kid : undefined), imported)
      )
    )
  })

/** An HMAC key from a client secret (`client_secret_jwt`). @internal */
export const hmacKey = (secret: Redacted.Redacted<string>, alg: HmacAlgorithm): SigningKey =>
  new SigningKey(alg, undefined, new TextEncoder().encode(Redacted.value(secret)))

/** The claims the library sets itself; `claims` may not override them. @internal */
export const registeredClaims: ReadonlyArray<string> = ["iss", "sub", "aud", "iat", "exp", "jti"]

/** @internal */
export const checkExtraClaims = (
  claims: Readonly<Record<string, unknown>> | undefined,
  module: string
): Effect.Effect<void, InvalidOptionsError> => {
  const clash = Object.keys(claims ?? {}).filter((name) => registeredClaims.includes(name))
  return clash.length === 0
    ? Effect.void
    : Effect.fail(
        new InvalidOptionsError({
          module,
          option: "claims",
          detail: `${clash.join(", ")} ${clash.length === 1 ? "is" : "are"} set by the library and cannot be overridden`
        })
      )
}

/** @internal */
export interface AssertionClaims {
  readonly issuer: string
  readonly subject: string
  readonly audience: string | ReadonlyArray<string>
  readonly lifetimeMillis: number
  readonly claims?: Readonly<Record<string, unknown>> | undefined
}

/** @internal */
export interface SignedAssertion {
  readonly jwt: Redacted.Redacted<string>
  /** `exp`, in epoch milliseconds. */
  readonly expiresAt: number
  readonly jti: string
}

/**
 * Signs a fresh assertion: `iat` is now on Effect's `Clock` (whole seconds), `exp` is `iat` plus the
 * lifetime, `jti` a random UUID from the platform's CSPRNG, and the key id goes in the header as `kid`.
 *
 * @internal
 */
export const sign = (
  key: SigningKey,
  claims: AssertionClaims
): Effect.Effect<SignedAssertion, TokenSourceError> =>
  Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    const iat = Math.floor(now / 1000)
    const exp = iat + Math.max(1, Math.floor(claims.lifetimeMillis / 1000))
    const jti = globalThis.crypto.randomUUID()
    const header: jose.JWTHeaderParameters = { alg: key.alg, typ: "JWT" }
    if (key.keyId !== undefined) header.kid = key.keyId
    const jwt = yield* Effect.tryPromise({
      try: () =>
        new jose.SignJWT({ ...claims.claims })
          .setProtectedHeader(header)
          .setIssuer(claims.issuer)
          .setSubject(claims.subject)
          .setAudience(typeof claims.audience === "string" ? claims.audience : [...claims.audience])
          .setIssuedAt(iat)
          .setExpirationTime(exp)
          .setJti(jti)
          .sign(key.material),
      catch: () =>
        new TokenSourceError({
          message: `Signing a JWT assertion with ${key.alg} failed`,
          code: "assertion_signing_failed",
          retryable: false
        })
    })
    return { jwt: Redacted.make(jwt), expiresAt: exp * 1000, jti }
  })

/** @internal */
export const defaultLifetime: Duration.Duration = Duration.minutes(5)

/** Decodes an assertion lifetime: a finite duration of at least one second. @internal */
export const lifetimeMillis = (
  lifetime: Duration.DurationInput | undefined,
  module: string
): Effect.Effect<number, InvalidOptionsError> => {
  const decoded = Duration.decodeUnknown(lifetime ?? defaultLifetime)
  const millis = decoded._tag === "Some" ? Duration.toMillis(decoded.value) : Number.NaN
  return Number.isFinite(millis) && millis >= 1000
    ? Effect.succeed(millis)
    : Effect.fail(
        new InvalidOptionsError({
          module,
          option: "lifetime",
          detail: "expected a finite duration of at least 1 second"
        })
      )
}

/**
 * The assertion source: the key is imported once (a `KeyError` names `keySource`, the file it came from or
 * `"options"`), every fetch signs a new JWT whose `exp` is the token's expiration.
 *
 * @internal
 */
export const makeSource = (
  options: Options,
  keySource: string
): Effect.Effect<TokenSource["Type"], KeyError | InvalidOptionsError> =>
  Effect.gen(function* () {
    const lifetime = yield* lifetimeMillis(options.lifetime, "JwtAssertion")
    yield* checkExtraClaims(options.claims, "JwtAssertion")
    if (options.issuer.length === 0) {
      return yield* new InvalidOptionsError({
        module: "JwtAssertion",
        option: "issuer",
        detail: "must not be empty"
      })
    }
    const key = yield* importPrivateKey(options.key, keySource)
    const claims: AssertionClaims = {
      issuer: options.issuer,
      subject: options.subject ?? options.issuer,
      audience: options.audience,
      lifetimeMillis: lifetime,
      claims: options.claims
    }
    return TokenSource.of({
      fetch: Effect.map(sign(key, claims), (assertion) =>
        makeToken(assertion.jwt, { expiresAt: assertion.expiresAt })
      )
    })
  })
