import { Context, Effect, Layer, Redacted } from "effect"
import { RenewableBearer, TestTokenSource, type Token } from "effect-renewable-bearer"
import * as TokenStore from "effect-renewable-bearer/TokenStore"

/**
 * Builds a bearer over a scripted source in the test's scope, with a shared `TokenStore` when one is given.
 * Jitter is off unless the test sets it, so every instant is exact.
 */
export const setup = (
  steps: ReadonlyArray<TestTokenSource.Step>,
  options?: RenewableBearer.Options,
  store?: TokenStore.TokenStore["Type"]
) =>
  Effect.gen(function* () {
    const bearer = RenewableBearer.layer({ jitter: 0, ...options }).pipe(
      Layer.provideMerge(TestTokenSource.layer(steps))
    )
    const context = yield* Layer.build(
      store === undefined ? bearer : bearer.pipe(Layer.provide(Layer.succeed(TokenStore.TokenStore, store)))
    )
    return {
      bearer: Context.get(context, RenewableBearer.RenewableBearer),
      source: Context.get(context, TestTokenSource.TestTokenSource)
    }
  })

/** A token's value, for assertions. */
export const value = (token: Token.Token): string => Redacted.value(token.value)

/** Lets every fiber that can run do so, without moving the clock. */
export const settle = Effect.repeatN(Effect.yieldNow(), 20)
