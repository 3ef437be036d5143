import type * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { DiscoveryError } from "./errors.js"
import { readBounded } from "./boundedBody.js"
import * as oauth2 from "./oauth2.js"
import { makeScrubber, sanitize } from "./sanitize.js"

/** Metadata is public: nothing to scrub but control characters and length. */
const noSecrets = makeScrubber([])

/** The fields of authorization server metadata the library uses (RFC 8414 section 2). @internal */
export const Metadata = Schema.Struct({
  issuer: Schema.NonEmptyTrimmedString,
  token_endpoint: Schema.NonEmptyTrimmedString,
  token_endpoint_auth_methods_supported: Schema.optional(Schema.Array(Schema.String))
})

/** @internal */
export type Metadata = typeof Metadata.Type

const decodeMetadata = Schema.decodeUnknownEither(Metadata)

/** A metadata document is small; a longer answer is not one. */
const maxDocumentBytes = 256 * 1024

/**
 * The well-known URLs of an issuer, in the order they are tried: RFC 8414 section 3.1 (the well-known
 * segment inserted between the host and the issuer's path), then OpenID Connect Discovery 1.0 section 4
 * (appended to the issuer).
 *
 * @internal
 */
export const wellKnownUrls = (issuer: string): ReadonlyArray<string> => {
  const url = new URL(issuer)
  const path = url.pathname === "/" ? "" : url.pathname.replace(/\/$/, "")
  return [
    `${url.origin}/.well-known/oauth-authorization-server${path}`,
    `${url.origin}${path}/.well-known/openid-configuration`
  ]
}

type Attempt =
  | { readonly _tag: "Found"; readonly url: string; readonly json: unknown }
  | { readonly _tag: "Missing"; readonly url: string; readonly detail: string }

const fetchDocument = (client: HttpClient.HttpClient, url: string): Effect.Effect<Attempt, DiscoveryError> =>
  Effect.scoped(
    Effect.gen(function* () {
      const request = HttpClientRequest.get(url).pipe(HttpClientRequest.acceptJson)
      const response = yield* oauth2.withoutRedirects(client.execute(request))
      if ((response.status >= 300 && response.status < 400) || response.request.url !== request.url) {
        const detail = `${url} answered ${response.status}: discovery never follows redirects`
        return { _tag: "Missing", url, detail } satisfies Attempt
      }
      if (response.status < 200 || response.status >= 300) {
        return { _tag: "Missing", url, detail: `${url} answered ${response.status}` } satisfies Attempt
      }
      const body = yield* readBounded(response, maxDocumentBytes)
      if (body._tag === "TooLarge") {
        const detail = `${url} answered more than ${maxDocumentBytes} bytes`
        return { _tag: "Missing", url, detail } satisfies Attempt
      }
      const json = yield* Effect.try(() => JSON.parse(body.text) as unknown)
      return { _tag: "Found", url, json } satisfies Attempt
    })
  ).pipe(
    Effect.catchAll((error) =>
      Effect.succeed<Attempt>({
        _tag: "Missing",
        url,
        detail: `${url} could not be read (${error instanceof SyntaxError ? "not JSON" : describe(error)})`
      })
    )
  )

const describe = (error: unknown): string =>
  typeof error === "object" && error !== null && "_tag" in error
    ? String((error as { _tag: unknown })._tag) +
      ("reason" in error ? ` ${String((error as { reason: unknown }).reason)}` : "")
    : "error"

/**
 * Reads the metadata of `issuer` (RFC 8414, then OpenID Connect discovery), checks that its `issuer` is
 * the one asked for, and returns it. The whole discovery is bounded by `timeout`.
 *
 * @internal
 */
export const discover = (
  client: HttpClient.HttpClient,
  issuer: string,
  timeout: Duration.Duration
): Effect.Effect<Metadata, DiscoveryError> =>
  Effect.gen(function* () {
    const urls = yield* Effect.try({
      try: () => wellKnownUrls(issuer),
      catch: () =>
        new DiscoveryError({ reason: "InvalidDocument", issuer, detail: "the issuer is not a URL" })
    })
    const misses: Array<string> = []
    for (const url of urls) {
      const attempt = yield* fetchDocument(client, url)
      if (attempt._tag === "Missing") {
        misses.push(attempt.detail)
        continue
      }
      const decoded = decodeMetadata(attempt.json)
      if (Either.isLeft(decoded)) {
        return yield* new DiscoveryError({
          reason: "InvalidDocument",
          issuer,
          detail: `${url} is not authorization server metadata (it needs "issuer" and "token_endpoint")`
        })
      }
      if (decoded.right.issuer !== issuer) {
        return yield* new DiscoveryError({
          reason: "IssuerMismatch",
          issuer,
          detail: `${url} names the issuer "${sanitize(decoded.right.issuer, noSecrets)}"`
        })
      }
      return decoded.right
    }
    return yield* new DiscoveryError({ reason: "Unreachable", issuer, detail: misses.join("; ") })
  }).pipe(
    Effect.timeoutFail({
      duration: timeout,
      onTimeout: () =>
        new DiscoveryError({ reason: "Timeout", issuer, detail: "no metadata within the timeout" })
    }),
    Effect.withSpan("OAuth2TokenSource.discover", { attributes: { "oauth2.issuer": issuer } })
  )
