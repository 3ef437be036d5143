import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type { StoredToken } from "../TokenStore.js"
import { type SealingKey, deriveKey, open, seal } from "./sealing.js"
import { expiresAtMillis, make as makeToken } from "./token.js"

/** A stored token in clear, version 1. */
const Plain = Schema.Struct({
  v: Schema.Literal(1),
  value: Schema.NonEmptyString,
  /** Epoch millis; `null` for a token that never expires. */
  expiresAt: Schema.NullOr(Schema.Finite),
  writtenAt: Schema.Finite
})

/** A stored token sealed with AES-256-GCM, version 1: `data` decrypts to a `Plain` record. */
const SealedRecord = Schema.Struct({
  v: Schema.Literal(1),
  alg: Schema.Literal("A256GCM"),
  iv: Schema.String,
  tag: Schema.String,
  data: Schema.String
})

const decodePlain = Schema.decodeUnknownEither(Schema.parseJson(Plain))
const decodeSealed = Schema.decodeUnknownEither(Schema.parseJson(SealedRecord))

/** Encodes and decodes the records of the file and Redis stores. @internal */
export interface RecordCodec {
  readonly encode: (key: string, stored: StoredToken) => string
  /** `None` for anything that is not a valid record readable with this codec's key (or lack of one). */
  readonly decode: (key: string, text: string) => Option.Option<StoredToken>
}

const plainText = (stored: StoredToken): string => {
  const expires = expiresAtMillis(stored.token)
  return JSON.stringify({
    v: 1,
    value: Redacted.value(stored.token.value),
    expiresAt: expires === Infinity ? null : expires,
    writtenAt: stored.writtenAt
  } satisfies typeof Plain.Encoded)
}

const fromPlain = (text: string): Option.Option<StoredToken> =>
  Either.match(decodePlain(text), {
    onLeft: () => Option.none(),
    onRight: (record) =>
      Option.some({
        token: makeToken(Redacted.make(record.value), {
          expiresAt: record.expiresAt === null ? undefined : record.expiresAt
        }),
        writtenAt: record.writtenAt
      })
  })

/** @internal */
export const makeCodec = (encryptionKey: Redacted.Redacted<string> | undefined): RecordCodec => {
  if (encryptionKey === undefined) {
    return {
      encode: (_key, stored) => plainText(stored),
      decode: (_key, text) => fromPlain(text)
    }
  }
  const key: SealingKey = deriveKey(encryptionKey)
  return {
    encode: (storeKey, stored) =>
      JSON.stringify({
        v: 1,
        alg: "A256GCM",
        ...seal(key, plainText(stored), storeKey)
      } satisfies typeof SealedRecord.Encoded),
    decode: (storeKey, text) =>
      Either.match(decodeSealed(text), {
        onLeft: () => Option.none(),
        onRight: (sealed) => {
          const plain = open(key, sealed, storeKey)
          return plain === undefined ? Option.none() : fromPlain(plain)
        }
      })
  }
}
