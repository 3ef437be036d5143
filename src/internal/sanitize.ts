/**
 * What may be kept of a text a server sent: cut short, without control characters, and without any secret
 * of the request in any of the forms the library sends it or a server is likely to echo it.
 */
import * as Encoding from "effect/Encoding"
import * as Redacted from "effect/Redacted"

/**
 * The most characters of a server-sent text (an error code, an `error_description`, a `token_type`, a
 * transport error's message) kept in an error or a log line.
 *
 * @internal
 */
export const MAX_TEXT_LENGTH = 300

/** What stands in for a scrubbed secret. */
export const REDACTED = "<redacted>"

/**
 * C0 and C1 controls, DEL, the zero-width characters, the Unicode line and paragraph separators and the
 * bidi overrides: removed (not replaced), so a secret a server splits with them is whole again for the
 * scrubber.
 */
// eslint-disable-next-line no-control-regex
const controls = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]+/g

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

/** RFC 6749 appendix B: the form encoding of a value. */
export const formEncode = (s: string): string => encodeURIComponent(s).replace(/%20/g, "+")

const utf8 = new TextEncoder()

/**
 * The base64 text of `value` wherever it sits inside a longer base64 text (as the secret inside the Basic
 * credentials `base64(id:secret)`): for each of the three alignments, the characters that depend on the
 * value alone. Shorter runs than 6 characters are left out, as they would match by chance.
 */
const base64Cores = (value: string): Array<string> => {
  const bytes = utf8.encode(value)
  const cores: Array<string> = []
  for (let offset = 0; offset < 3; offset++) {
    const padded = new Uint8Array(offset + bytes.length)
    padded.set(bytes, offset)
    const encoded = Encoding.encodeBase64(padded).replace(/=+$/, "")
    const taintedHead = Math.ceil((offset * 8) / 6)
    const taintedTail = padded.length % 3 === 0 ? 0 : 1
    const core = encoded.slice(taintedHead, encoded.length - taintedTail)
    if (core.length >= 6) cores.push(core)
  }
  return cores
}

/**
 * Every form of a secret the scrubber removes: the raw value; its URL, form and `URLSearchParams`
 * encodings; its JSON string escapes (the usual one and every character as `\uXXXX`); and the base64 and
 * base64url encodings of each of these, also inside a longer base64 text such as the `Authorization: Basic`
 * credentials (base64 of the form-encoded `id:secret`).
 */
const formsOf = (value: string): Array<string> => {
  const texts = new Set<string>([
    value,
    encodeURIComponent(value),
    formEncode(value),
    new URLSearchParams({ v: value }).toString().slice(2),
    JSON.stringify(value).slice(1, -1)
  ])
  const forms = new Set<string>(texts)
  forms.add(Array.from(value, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`).join(""))
  for (const text of texts) {
    forms.add(Encoding.encodeBase64(text).replace(/=+$/, ""))
    for (const core of base64Cores(text)) {
      forms.add(core)
      forms.add(core.replace(/\+/g, "-").replace(/\//g, "_"))
    }
  }
  return Array.from(forms).filter((form) => form.length > 0)
}

/**
 * Scrubs the given secrets, in every form `formsOf` lists and case-insensitively, from a text. The longest
 * forms are tried first, so a secret inside another one leaves no piece behind.
 *
 * @internal
 */
export interface Scrubber {
  (text: string): string
}

/** @internal */
export const makeScrubber = (secrets: ReadonlyArray<Redacted.Redacted<string> | string>): Scrubber => {
  const forms = new Set<string>()
  for (const secret of secrets) {
    const value = typeof secret === "string" ? secret : Redacted.value(secret)
    if (value.length > 0) for (const form of formsOf(value)) forms.add(form)
  }
  if (forms.size === 0) return (text) => text
  const pattern = new RegExp(
    Array.from(forms)
      .sort((a, b) => b.length - a.length)
      .map(escapeRegExp)
      .join("|"),
    "gi"
  )
  return (text) => text.replace(pattern, REDACTED)
}

/**
 * A server-sent text made fit to keep: control characters removed first (so none can hide a secret from
 * the scrubber), then the secrets scrubbed, then cut to `maxLength` characters with an ellipsis.
 *
 * @internal
 */
export const sanitize = (text: string, scrub: Scrubber, maxLength: number = MAX_TEXT_LENGTH): string => {
  // A secret is found whole only in the whole text: scrub before cutting, but bound the work first.
  const bounded = text.length > 64 * 1024 ? text.slice(0, 64 * 1024) : text
  const clean = scrub(bounded.replace(controls, ""))
  return clean.length > maxLength ? `${clean.slice(0, maxLength)}…` : clean
}

/**
 * A scrubber built on first use: for the hot path, where a secret is known but rarely needed.
 *
 * @internal
 */
export const lazyScrubber = (secrets: ReadonlyArray<Redacted.Redacted<string> | string>): Scrubber => {
  let scrubber: Scrubber | undefined
  return (text) => (scrubber ??= makeScrubber(secrets))(text)
}
