/**
 * The machinery of `TestTokenSource`: the handle's tag, the script played one step per call (each delay
 * through Effect's `Clock`), the call counts, and the permanent failure past `MAX_CALLS`.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Ref from "effect/Ref"
import type { Step } from "../TestTokenSource.js"
import type * as Token from "../Token.js"
import { TokenSourceError } from "./errors.js"
import { TokenSource } from "./tags.js"
import { make as makeToken } from "./token.js"

/** See `TestTokenSource.hang`. @internal */
export const hang: Step = { _tag: "Hang" }

/** See `TestTokenSource.TestTokenSource`. @internal */
export class TestTokenSource extends Context.Tag("effect-renewable-bearer/TestTokenSource")<
  TestTokenSource,
  {
    /** How many calls have started. */
    readonly calls: Effect.Effect<number>
    /** The clock instant (epoch millis) at which each call started. */
    readonly callTimes: Effect.Effect<ReadonlyArray<number>>
    /** How many calls are running now. */
    readonly inFlight: Effect.Effect<number>
    /** The most calls that were ever running at once. */
    readonly maxInFlight: Effect.Effect<number>
    /** Appends steps to the script. */
    readonly push: (...steps: ReadonlyArray<Step>) => Effect.Effect<void>
  }
>() {}

interface State {
  readonly script: ReadonlyArray<Step>
  /** Appended in place (a copy per call would make a runaway loop quadratic); read as a copy. */
  readonly callTimes: Array<number>
  readonly inFlight: number
  readonly maxInFlight: number
}

/** See `TestTokenSource.MAX_CALLS`. @internal */
export const MAX_CALLS = 10_000

const storm = new TokenSourceError({
  message: `TestTokenSource: more than ${MAX_CALLS.toLocaleString("en-US")} calls, a refresh storm`,
  retryable: false
})

const play = (step: Step): Effect.Effect<Token.Token, TokenSourceError> => {
  switch (step._tag) {
    case "Hang":
      return Effect.never
    case "Token": {
      const answer = Effect.map(Clock.currentTimeMillis, (now) =>
        makeToken(step.value, {
          expiresAt:
            step.expiresAt !== undefined
              ? step.expiresAt
              : step.expiresIn !== undefined
                ? now + Duration.toMillis(step.expiresIn)
                : undefined
        })
      )
      return step.delay === undefined ? answer : Effect.zipRight(Effect.sleep(step.delay), answer)
    }
    case "Fail":
      return step.delay === undefined
        ? Effect.fail(step.error)
        : Effect.zipRight(Effect.sleep(step.delay), Effect.fail(step.error))
    case "Die":
      return step.delay === undefined
        ? Effect.die(step.defect)
        : Effect.zipRight(Effect.sleep(step.delay), Effect.die(step.defect))
  }
}

/** See `TestTokenSource.make`. @internal */
export const make = (
  steps: Iterable<Step>
): Effect.Effect<{ readonly source: TokenSource["Type"]; readonly test: TestTokenSource["Type"] }> =>
  Effect.map(
    Ref.make<State>({ script: Array.from(steps), callTimes: [], inFlight: 0, maxInFlight: 0 }),
    (state) => {
      const start = Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Ref.modify(state, (s): [Step | undefined, State] => {
          const index = s.callTimes.length
          const step =
            index >= MAX_CALLS ? undefined : (s.script[Math.min(index, s.script.length - 1)] ?? hang)
          const inFlight = s.inFlight + 1
          s.callTimes.push(now)
          return [step, { ...s, inFlight, maxInFlight: Math.max(s.maxInFlight, inFlight) }]
        })
      )
      const end = Ref.update(state, (s) => ({ ...s, inFlight: s.inFlight - 1 }))
      return {
        source: TokenSource.of({
          fetch: Effect.uninterruptibleMask((restore) =>
            Effect.flatMap(start, (step) =>
              Effect.ensuring(step === undefined ? Effect.fail(storm) : restore(play(step)), end)
            )
          )
        }),
        test: TestTokenSource.of({
          calls: Effect.map(Ref.get(state), (s) => s.callTimes.length),
          callTimes: Effect.map(Ref.get(state), (s) => s.callTimes.slice()),
          inFlight: Effect.map(Ref.get(state), (s) => s.inFlight),
          maxInFlight: Effect.map(Ref.get(state), (s) => s.maxInFlight),
          push: (...more) => Ref.update(state, (s) => ({ ...s, script: [...s.script, ...more] }))
        })
      }
    }
  )
