import * as Crypto from "node:crypto"
import * as Redacted from "effect/Redacted"

/** An AES-256-GCM key, derived from a secret of any length. @internal */
export interface SealingKey {
  readonly _tag: "SealingKey"
  readonly bytes: Buffer
}

const SALT = "effect-renewable-bearer/TokenStore"
const INFO = "A256GCM record key v1"

/**
 * Derives the 32-byte key with HKDF-SHA256. HKDF does not stretch a weak secret: use a random one (for
 * example `openssl rand -base64 32`).
 *
 * @internal
 */
export const deriveKey = (secret: Redacted.Redacted<string>): SealingKey => ({
  _tag: "SealingKey",
  bytes: Buffer.from(Crypto.hkdfSync("sha256", Redacted.value(secret), SALT, INFO, 32))
})

/** A sealed record: base64url nonce, tag and ciphertext. @internal */
export interface Sealed {
  readonly iv: string
  readonly tag: string
  readonly data: string
}

/** Encrypts `plaintext`, bound to `aad` (the store key), with a fresh 96-bit nonce. @internal */
export const seal = (key: SealingKey, plaintext: string, aad: string): Sealed => {
  const iv = Crypto.randomBytes(12)
  const cipher = Crypto.createCipheriv("aes-256-gcm", key.bytes, iv)
  cipher.setAAD(Buffer.from(aad, "utf8"))
  const data = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()])
  return {
    iv: iv.toString("base64url"),
    tag: cipher.getAuthTag().toString("base64url"),
    data: data.toString("base64url")
  }
}

/** Decrypts a sealed record; `undefined` for a wrong key, a different `aad` or tampered bytes. @internal */
export const open = (key: SealingKey, sealed: Sealed, aad: string): string | undefined => {
  try {
    const iv = Buffer.from(sealed.iv, "base64url")
    const tag = Buffer.from(sealed.tag, "base64url")
    if (iv.length !== 12 || tag.length !== 16) return undefined
    const decipher = Crypto.createDecipheriv("aes-256-gcm", key.bytes, iv)
    decipher.setAAD(Buffer.from(aad, "utf8"))
    decipher.setAuthTag(tag)
    return Buffer.concat([decipher.update(Buffer.from(sealed.data, "base64url")), decipher.final()]).toString(
      "utf8"
    )
  } catch {
    return undefined
  }
}
