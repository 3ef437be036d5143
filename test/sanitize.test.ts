/**
 * The sanitizer of server-sent text, by property: whatever the secret, whatever surrounds it, none of the
 * forms a server may echo it in survives; control characters go; the result is never longer than the cut.
 */
import { describe, expect, it } from "@effect/vitest"
import * as fc from "effect/FastCheck"
import { makeScrubber, MAX_TEXT_LENGTH, sanitize } from "../src/internal/sanitize.js"

const formEncode = (s: string) => encodeURIComponent(s).replace(/%20/g, "+")
const base64 = (s: string) => Buffer.from(s).toString("base64")

/** The forms a server may echo a secret in, computed here independently of the scrubber. */
const echoes = (secret: string, clientId: string): ReadonlyArray<string> => [
  secret,
  secret.toUpperCase(),
  secret.toLowerCase(),
  encodeURIComponent(secret),
  formEncode(secret),
  new URLSearchParams({ v: secret }).toString().slice(2),
  JSON.stringify(secret).slice(1, -1),
  base64(secret),
  Buffer.from(secret).toString("base64url"),
  base64(`${formEncode(clientId)}:${formEncode(secret)}`),
  base64(`${clientId}:${secret}`)
]

const secretArb = fc.string({ minLength: 8, maxLength: 64, unit: "grapheme-ascii" })
const idArb = fc.string({ minLength: 1, maxLength: 20, unit: "grapheme-ascii" })
/** Text around an echo that cannot merge with it into something that looks like the secret. */
const aroundArb = fc.constantFrom("", " ", "error: ", " | ", "Basic ", "client_secret=")

describe("sanitize", () => {
  it.prop(
    "no echoed form of the secret survives, wherever it sits",
    [secretArb, idArb, aroundArb, aroundArb],
    ([secret, clientId, before, after]) => {
      const scrub = makeScrubber([secret])
      for (const echo of echoes(secret, clientId)) {
        const out = sanitize(`${before}${echo}${after}`, scrub, Infinity).toLowerCase()
        for (const form of echoes(secret, clientId)) expect(out).not.toContain(form.toLowerCase())
      }
    },
    { fastCheck: { numRuns: 200 } }
  )

  it.prop(
    "a secret split by control characters is found whole",
    [secretArb, fc.nat(), fc.constantFrom("\u0000", "\r\n", "\u001b", "\u200b", "\u2028", "\u202e")],
    ([secret, at, control]) => {
      const cut = at % secret.length
      const out = sanitize(`${secret.slice(0, cut)}${control}${secret.slice(cut)}`, makeScrubber([secret]))
      expect(out.toLowerCase()).not.toContain(secret.toLowerCase())
    }
  )

  it.prop(
    "the result has no control characters and at most the cut plus an ellipsis",
    [fc.string({ maxLength: 2000 })],
    ([text]) => {
      const out = sanitize(text, makeScrubber([]))
      // eslint-disable-next-line no-control-regex
      expect(out).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/)
      expect(out.length).toBeLessThanOrEqual(MAX_TEXT_LENGTH + 1)
    }
  )
})
