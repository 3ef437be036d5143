import { expect } from "@effect/vitest"
import { Clock, Effect, Option } from "effect"
import type { Errors, RenewableBearer, TestTokenSource } from "effect-renewable-bearer"
import { Token } from "effect-renewable-bearer"

/** The secret of a token, for assertions. */
import { value } from "./bearer.js"

export { value }

/** `RenewalError` reason, or the tag of any other fetch error. */
export const reasonOf = (error: Errors.FetchError): string =>
  error._tag === "RenewalError" ? error.reason : error._tag

/** Fails the test if `token` is expired at the current clock instant; returns it otherwise. */
export const expectUsable = (token: Token.Token): Effect.Effect<Token.Token> =>
  Effect.map(Clock.currentTimeMillis, (now) => {
    expect(Token.isExpiredAt(token, now), `${value(token)} served expired at ${now} ms`).toBe(false)
    return token
  })

/** A fetch that also asserts, at the instant it returns, that the token it got is not expired. */
export const fetchUsable = (
  bearer: RenewableBearer.RenewableBearer["Type"],
  options?: Parameters<RenewableBearer.RenewableBearer["Type"]["fetch"]>[0]
): Effect.Effect<Token.Token, Errors.FetchError> => Effect.flatMap(bearer.fetch(options), expectUsable)

/**
 * The invariants every fault-matrix row ends with: never more than one source call in flight, and `current`
 * is either nothing or a token that is not expired.
 */
export const expectHealthy = (
  bearer: RenewableBearer.RenewableBearer["Type"],
  source: TestTokenSource.TestTokenSource["Type"]
): Effect.Effect<void> =>
  Effect.gen(function* () {
    expect(yield* source.maxInFlight).toBeLessThanOrEqual(1)
    const current = yield* bearer.current
    if (Option.isSome(current)) yield* expectUsable(current.value)
  })

/**
 * The backoff the bearer must apply after `failures` consecutive failures with the default options and no
 * jitter: 1 s, then 1 s × 1.5^(n-1), capped at 60 s; a permanent failure waits the cap.
 */
export const defaultBackoff = (failures: number, permanent = false): number =>
  permanent ? 60_000 : failures <= 1 ? 1_000 : Math.min(1_000 * Math.pow(1.5, failures - 1), 60_000)
