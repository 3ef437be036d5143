import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import type * as Token from "../Token.js"
import { isTokenSourceError, RenewalError } from "./errors.js"
import { decodeMillis } from "./options.js"
import type { TokenSource } from "./tags.js"
import { invalidReason } from "./token.js"

/**
 * One call of the token source, as the bearer's state machine runs it: bounded by `timeoutMillis`, the token
 * checked, every failure a `RenewalError`, in a root span of its own. Interruption (an abandoned or stopped
 * attempt) stays interruption.
 *
 * @internal
 */
export const attemptOnce = (
  source: TokenSource["Type"],
  input: { readonly timeoutMillis: number; readonly attempt: number; readonly name: string }
): Effect.Effect<Exit.Exit<Token.Token, RenewalError>> =>
  source.fetch.pipe(
    Effect.timeoutFail({
      duration: input.timeoutMillis,
      onTimeout: () =>
        new RenewalError({ reason: "SourceTimeout", detail: `no answer within ${input.timeoutMillis} ms` })
    }),
    Effect.flatMap((token) =>
      Effect.clockWith((clock) => {
        const reason = invalidReason(token, clock.unsafeCurrentTimeMillis())
        return reason === undefined
          ? Effect.succeed(token)
          : Effect.fail(new RenewalError({ reason: "InvalidToken", detail: reason }))
      })
    ),
    Effect.catchAllCause((cause) =>
      Cause.isInterruptedOnly(cause)
        ? Effect.failCause(cause as Cause.Cause<never>)
        : Effect.fail(toRenewalError(cause))
    ),
    Effect.tapBoth({
      onFailure: (error) =>
        Effect.annotateCurrentSpan({ "bearer.outcome": "failure", "bearer.reason": error.reason }),
      onSuccess: () => Effect.annotateCurrentSpan("bearer.outcome", "success")
    }),
    // No stack trace: it would show the bearer's own fiber, never a caller, and cost an Error per attempt.
    Effect.withSpan("RenewableBearer.refresh", {
      attributes: { "bearer.name": input.name, "bearer.attempt": input.attempt },
      root: true,
      captureStackTrace: false
    }),
    Effect.exit
  ) as Effect.Effect<Exit.Exit<Token.Token, RenewalError>>

/** A source's failure (or defect) as the `RenewalError` callers see. @internal */
export const toRenewalError = (cause: Cause.Cause<unknown>): RenewalError => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) {
    const error = failure.value
    if (error instanceof RenewalError) return error
    return new RenewalError({
      reason: "SourceError",
      detail: isTokenSourceError(error) ? error.message : undefined,
      cause: error
    })
  }
  return new RenewalError({ reason: "SourceDefect", cause: Cause.squash(cause) })
}

/** Whether the source said retrying will not help (a `TokenSourceError` with `retryable: false`). @internal */
export const isPermanent = (error: RenewalError): boolean =>
  isTokenSourceError(error.cause) && !error.cause.isRetryable

/** The `retryAfter` a source error asked for, in millis; 0 when there is none or it is malformed. @internal */
export const retryAfterMillis = (error: RenewalError): number => {
  const cause = error.cause
  if (!isTokenSourceError(cause) || cause.retryAfter === undefined) return 0
  const millis = decodeMillis(cause.retryAfter)
  return Either.isRight(millis) ? millis.right : 0
}
