import { Clock, Effect, Exit, Ref } from "effect"
import { Errors, Token, TokenSource } from "effect-renewable-bearer"

/** What one call of the model source does. */
export type Kind =
  | "good" // a new token with the step's lifetime
  | "forever" // a new token that never expires
  | "same" // the last good token produced again (value and expiration)
  | "expired" // a token that expired a second ago
  | "zero" // a token whose lifetime is zero
  | "nan" // a NaN expiration
  | "far" // an expiration beyond year 275760
  | "empty" // an empty token string
  | "fail" // a retryable TokenSourceError
  | "permanent" // a TokenSourceError with retryable: false
  | "die" // a defect
  | "hang" // never answers

export interface Step {
  readonly kind: Kind
  readonly delay: number
  readonly lifetime: number
}

/** The test's phase when a call ended: it tells a timeout (only time moves) from an abandonment or a close. */
export type Phase = "advance" | "fetch" | "other" | "close"

export interface Call {
  readonly index: number
  readonly start: number
  /** Set once the call has ended. */
  end?: number
  outcome?: "token" | "fail" | "permanent" | "die" | "interrupted"
  phase?: Phase
  value?: string
  expiresAt?: number
}

/**
 * A scripted source that records every call (start, end, outcome, the token it produced) and the test's
 * phase at the end, for the model check. `recover` switches it to answer a good one-hour token at once.
 */
export const make = (steps: ReadonlyArray<Step>) =>
  Effect.gen(function* () {
    const calls: Array<Call> = []
    let inFlight = 0
    let maxInFlight = 0
    let phase: Phase = "other"
    let recovering = false
    let lastGood: { value: string; expiresAt: number } | undefined
    const counter = yield* Ref.make(0)

    const produce = (
      call: Call,
      step: Step,
      now: number
    ): Effect.Effect<Token.Token, Errors.TokenSourceError> => {
      const token = (value: string, expiresAt: number) => {
        call.value = value
        call.expiresAt = expiresAt
        return Effect.succeed(
          Token.make(value, { expiresAt: expiresAt === Infinity ? undefined : expiresAt })
        )
      }
      switch (step.kind) {
        // Whole milliseconds: `Token.expiresAt` is a `DateTime`, which keeps no fraction of a millisecond.
        case "good":
          lastGood = { value: `tok-${call.index}`, expiresAt: Math.ceil(now + step.lifetime) }
          return token(lastGood.value, lastGood.expiresAt)
        case "forever":
          lastGood = { value: `tok-${call.index}`, expiresAt: Infinity }
          return token(lastGood.value, lastGood.expiresAt)
        case "same":
          if (lastGood === undefined)
            lastGood = { value: `tok-${call.index}`, expiresAt: now + step.lifetime }
          return token(lastGood.value, lastGood.expiresAt)
        case "expired":
          return token(`bad-${call.index}`, now - 1000)
        case "zero":
          return token(`bad-${call.index}`, now)
        case "nan":
          return token(`bad-${call.index}`, NaN)
        case "far":
          return token(`bad-${call.index}`, 8.64e15 + 1)
        case "empty":
          return token("", now + step.lifetime)
        case "fail":
          return Effect.fail(new Errors.TokenSourceError({ message: "model failure" }))
        case "permanent":
          return Effect.fail(new Errors.TokenSourceError({ message: "model permanent", retryable: false }))
        case "die":
          return Effect.die("model defect")
        case "hang":
          return Effect.never
      }
    }

    const fetch: Effect.Effect<Token.Token, Errors.TokenSourceError> = Effect.uninterruptibleMask((restore) =>
      Effect.gen(function* () {
        const index = yield* Ref.getAndUpdate(counter, (n) => n + 1)
        const start = yield* Clock.currentTimeMillis
        const call: Call = { index, start }
        calls.push(call)
        inFlight += 1
        maxInFlight = Math.max(maxInFlight, inFlight)
        const step: Step = recovering
          ? { kind: "good", delay: 0, lifetime: 3_600_000 }
          : (steps[Math.min(index, steps.length - 1)] ?? { kind: "hang", delay: 0, lifetime: 0 })
        const body = Effect.flatMap(Clock.currentTimeMillis, (now) => produce(call, step, now))
        return yield* restore(step.delay > 0 ? Effect.zipRight(Effect.sleep(step.delay), body) : body).pipe(
          Effect.onExit((exit) =>
            Effect.map(Clock.currentTimeMillis, (end) => {
              inFlight -= 1
              call.end = end
              call.phase = phase
              call.outcome = Exit.isSuccess(exit)
                ? "token"
                : Exit.isInterrupted(exit)
                  ? "interrupted"
                  : step.kind === "die"
                    ? "die"
                    : step.kind === "permanent"
                      ? "permanent"
                      : "fail"
            })
          )
        )
      })
    )

    return {
      source: TokenSource.TokenSource.of({ fetch }),
      calls: calls as ReadonlyArray<Call>,
      inFlight: () => inFlight,
      maxInFlight: () => maxInFlight,
      setPhase: (next: Phase) => {
        phase = next
      },
      recover: () => {
        recovering = true
      }
    }
  })
