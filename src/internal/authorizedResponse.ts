/**
 * What the authorized client hands out instead of the inner client's responses and errors: the same
 * response, whose `request` is the caller's request, without the `Authorization` header the token travelled
 * in. Errors of the inner client get the same treatment, so no rendering of anything the client returns or
 * fails with (`String`, `JSON.stringify`, `util.inspect` with or without `showHidden`, `Cause.pretty`) can
 * show the token.
 */
import type * as Cookies from "@effect/platform/Cookies"
import type * as Headers from "@effect/platform/Headers"
import * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as IncomingMessage from "@effect/platform/HttpIncomingMessage"
import type * as UrlParams from "@effect/platform/UrlParams"
import * as Effect from "effect/Effect"
import { format, NodeInspectSymbol } from "effect/Inspectable"
import type * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { Scrubber } from "./sanitize.js"

/**
 * A response of the inner client seen through the caller's request. The inner response is held in a private
 * field, which neither `util.inspect` (also with `showHidden`) nor `JSON.stringify` shows.
 *
 * @internal
 */
export class AuthorizedResponse implements HttpClientResponse.HttpClientResponse {
  readonly [HttpClientResponse.TypeId]: HttpClientResponse.TypeId = HttpClientResponse.TypeId
  readonly [IncomingMessage.TypeId]: IncomingMessage.TypeId = IncomingMessage.TypeId
  readonly #inner: HttpClientResponse.HttpClientResponse
  readonly #scrub: Scrubber

  constructor(
    readonly request: HttpClientRequest.HttpClientRequest,
    inner: HttpClientResponse.HttpClientResponse,
    scrub: Scrubber
  ) {
    this.#inner = inner
    this.#scrub = scrub
  }

  get status(): number {
    return this.#inner.status
  }
  get headers(): Headers.Headers {
    return this.#inner.headers
  }
  get cookies(): Cookies.Cookies {
    return this.#inner.cookies
  }
  get remoteAddress(): Option.Option<string> {
    return this.#inner.remoteAddress
  }
  get formData(): Effect.Effect<FormData, HttpClientError.ResponseError> {
    return Effect.mapError(this.#inner.formData, this.#redact)
  }
  get text(): Effect.Effect<string, HttpClientError.ResponseError> {
    return Effect.mapError(this.#inner.text, this.#redact)
  }
  get json(): Effect.Effect<unknown, HttpClientError.ResponseError> {
    return Effect.mapError(this.#inner.json, this.#redact)
  }
  get urlParamsBody(): Effect.Effect<UrlParams.UrlParams, HttpClientError.ResponseError> {
    return Effect.mapError(this.#inner.urlParamsBody, this.#redact)
  }
  get arrayBuffer(): Effect.Effect<ArrayBuffer, HttpClientError.ResponseError> {
    return Effect.mapError(this.#inner.arrayBuffer, this.#redact)
  }
  get stream(): Stream.Stream<Uint8Array, HttpClientError.ResponseError> {
    return Stream.mapError(this.#inner.stream, this.#redact)
  }

  readonly #redact = (error: HttpClientError.ResponseError): HttpClientError.ResponseError =>
    new HttpClientError.ResponseError({
      request: this.request,
      response: this,
      reason: error.reason,
      ...(error.description === undefined ? {} : { description: error.description }),
      cause: redactCause(error.cause, this.#scrub)
    })

  toJSON(): unknown {
    return IncomingMessage.inspect(this, {
      _id: "@effect/platform/HttpClientResponse",
      request: this.request.toJSON(),
      status: this.status
    })
  }
  toString(): string {
    return format(this.toJSON())
  }
  [NodeInspectSymbol](): unknown {
    return this.toJSON()
  }
}

/**
 * An error's cause with the token scrubbed from every message and stack of its chain, or the cause itself
 * when none holds the token (so `instanceof` and `code` checks keep working in the usual case).
 *
 * @internal
 */
export const redactCause = (cause: unknown, scrub: Scrubber): unknown => {
  if (!holdsSecret(cause, scrub, 0)) return cause
  return scrubbedCopy(cause, scrub, 0)
}

const holdsSecret = (value: unknown, scrub: Scrubber, depth: number): boolean => {
  if (depth > 5) return false
  if (typeof value === "string") return scrub(value) !== value
  if (!(value instanceof Error))
    return typeof value === "object" && value !== null && scrub(safeString(value)) !== safeString(value)
  return (
    scrub(value.message) !== value.message ||
    (value.stack !== undefined && scrub(value.stack) !== value.stack) ||
    holdsSecret(value.cause, scrub, depth + 1)
  )
}

const safeString = (value: object): string => {
  try {
    return JSON.stringify(value) ?? ""
  } catch {
    return ""
  }
}

const scrubbedCopy = (value: unknown, scrub: Scrubber, depth: number): unknown => {
  if (depth > 5 || value === undefined || value === null) return undefined
  if (!(value instanceof Error)) return typeof value === "string" ? scrub(value) : scrub(safeString(value))
  const copy = new Error(scrub(value.message), { cause: scrubbedCopy(value.cause, scrub, depth + 1) })
  copy.name = value.name
  if (value.stack !== undefined) copy.stack = scrub(value.stack)
  const code = (value as { readonly code?: unknown }).code
  if (typeof code === "string") Object.assign(copy, { code })
  return copy
}
