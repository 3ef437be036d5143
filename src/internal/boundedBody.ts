/**
 * Reading a response body that may be hostile: at most a given number of bytes, counted as they arrive
 * from the client (after any decompression it does), then the stream is closed, which aborts the request
 * and drops the connection. An endless or huge body, or a compression bomb, costs at most the limit plus
 * one chunk of memory.
 */
import type * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"

/**
 * The default limit of a token response body: 64 KiB, far above any real token response.
 *
 * @internal
 */
export const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024

/** @internal */
export type BoundedBody =
  { readonly _tag: "Complete"; readonly text: string } | { readonly _tag: "TooLarge"; readonly read: number }

interface Accumulated {
  readonly chunks: Array<Uint8Array>
  size: number
}

/**
 * Reads the body as UTF-8 text if it has at most `maxBytes` bytes; stops reading as soon as it has more
 * (`TooLarge`), without waiting for the rest. A `Content-Length` beyond the limit fails after the first
 * chunk.
 *
 * @internal
 */
export const readBounded = (
  response: HttpClientResponse.HttpClientResponse,
  maxBytes: number
): Effect.Effect<BoundedBody, HttpClientError.ResponseError> => {
  const declared = Number(response.headers["content-length"])
  if (Number.isFinite(declared) && declared > maxBytes) {
    // Ends the body's stream after its first chunk: its end aborts the request.
    return Effect.map(Stream.runHead(response.stream), (first) => ({
      _tag: "TooLarge",
      read: first._tag === "Some" ? first.value.length : 0
    }))
  }
  return Effect.map(
    Stream.runFoldWhile(
      response.stream,
      { chunks: [], size: 0 } as Accumulated,
      (acc) => acc.size <= maxBytes,
      (acc, chunk) => {
        acc.chunks.push(chunk)
        acc.size += chunk.length
        return acc
      }
    ),
    (acc): BoundedBody => {
      if (acc.size > maxBytes) return { _tag: "TooLarge", read: acc.size }
      const bytes = new Uint8Array(acc.size)
      let at = 0
      for (const chunk of acc.chunks) {
        bytes.set(chunk, at)
        at += chunk.length
      }
      return { _tag: "Complete", text: new TextDecoder().decode(bytes) }
    }
  )
}
