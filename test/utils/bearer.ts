import { Context, Effect, Layer } from "effect"
import { RenewableBearer, TestTokenSource } from "effect-renewable-bearer"

/**
 * Builds a bearer over a scripted source in the test's scope. Jitter is off unless the test sets it, so every
 * instant is exact.
 */
export const setup = (steps: ReadonlyArray<TestTokenSource.Step>, options?: RenewableBearer.Options) =>
  Effect.gen(function* () {
    const context = yield* Layer.build(
      RenewableBearer.layer({ jitter: 0, ...options }).pipe(Layer.provideMerge(TestTokenSource.layer(steps)))
    )
    return {
      bearer: Context.get(context, RenewableBearer.RenewableBearer),
      source: Context.get(context, TestTokenSource.TestTokenSource)
    }
  })

/** Lets every fiber that can run do so, without moving the clock. */
export const settle = Effect.repeatN(Effect.yieldNow(), 20)
