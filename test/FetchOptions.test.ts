import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Logger, LogLevel } from "effect"
import { FetchOptions } from "effect-renewable-bearer"

describe("FetchOptions", () => {
  it("keeps the original string keys", () => {
    expect(FetchOptions.OPTION_RENEW_REQUIRED).toBe("token_renew_required")
    expect(FetchOptions.OPTION_RENEW_SYNCHRONOUS).toBe("token_renew_synchronous")
    expect(FetchOptions.OPTION_REPORT_ERROR).toBe("token_renew_report_error")
    expect(FetchOptions.OPTION_RENEW_REQUEST_TIMEOUT).toBe("token_renew_request_timeout")
    expect(FetchOptions.OPTION_MAX_RETRIES).toBe("max_fetch_token_retries")
    expect(Duration.toMillis(FetchOptions.VeryLongTimeout)).toBe(10 * 365 * 24 * 3_600_000)
  })

  it.effect("parses metadata: a non-empty value turns a flag on", () =>
    Effect.gen(function* () {
      const options = yield* FetchOptions.fromMetadata({
        token_renew_required: "1",
        token_renew_synchronous: "yes",
        token_renew_report_error: "",
        token_renew_request_timeout: "2.5",
        max_fetch_token_retries: "4",
        unrelated: "x"
      })
      expect(options).toEqual({
        renewRequired: true,
        synchronous: true,
        reportError: false,
        renewRequestTimeout: Duration.seconds(2.5),
        maxRetries: 4
      })
      expect(yield* FetchOptions.fromMetadata({})).toEqual({})
    })
  )

  it.effect("logs a malformed number as a warning and ignores it", () =>
    Effect.gen(function* () {
      const lines: Array<string> = []
      const logger = Logger.make(({ logLevel, message }) => {
        lines.push(`${logLevel.label} ${String(message)}`)
      })
      const options = yield* FetchOptions.fromMetadata({
        token_renew_request_timeout: "soon",
        max_fetch_token_retries: "2.5"
      }).pipe(
        Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
        Logger.withMinimumLogLevel(LogLevel.All)
      )
      expect(options).toEqual({})
      expect(lines).toEqual([
        "WARN Ignoring malformed fetch option token_renew_request_timeout",
        "WARN Ignoring malformed fetch option max_fetch_token_retries"
      ])
    })
  )
})
