import { Redacted } from "effect"
import * as jose from "jose"

/** A fresh key pair for `alg`: the private key as PKCS#8 PEM (and JWK), the public key for verifying. */
export const keyPair = async (alg: "RS256" | "ES256" | "EdDSA" | "PS256") => {
  const { privateKey, publicKey } = await jose.generateKeyPair(alg, { extractable: true })
  const pem = await jose.exportPKCS8(privateKey)
  const jwk = await jose.exportJWK(privateKey)
  const publicJwk = await jose.exportJWK(publicKey)
  const spki = await jose.exportSPKI(publicKey)
  return { alg, pem, redactedPem: Redacted.make(pem), jwk, publicKey, publicJwk, spki }
}

export type KeyPair = Awaited<ReturnType<typeof keyPair>>

/** The base64 body of a PEM: the part of the key that must never show up anywhere. */
export const pemBody = (pem: string): string =>
  pem
    .split("\n")
    .filter((line) => !line.startsWith("-----") && line.length > 0)
    .join("")

/** Pieces of a private key that a leak would show: a few 40-character stretches of its PEM body and the JWK's d. */
export const keyFragments = (pair: KeyPair): ReadonlyArray<string> => {
  const body = pemBody(pair.pem)
  const lines = pair.pem.split("\n").filter((line) => !line.startsWith("-----") && line.length > 20)
  return [body.slice(0, 40), body.slice(-40), ...lines.slice(1, 3), String(pair.jwk.d)]
}
