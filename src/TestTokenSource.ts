/**
 * A scripted token source for tests: a sequence of results, failures, defects, hangs and delays, played one
 * step per call, that counts its calls. Every delay goes through Effect's `Clock`, so under `TestClock` a test
 * decides exactly when each answer arrives. This is the way to test a program that uses the bearer.
 *
 * @example
 * ```ts
 * import { Effect, Fiber, Layer, TestClock } from "effect"
 * import { RenewableBearer, TestTokenSource } from "effect-renewable-bearer"
 *
 * const program = Effect.gen(function* () {
 *   const bearer = yield* RenewableBearer.RenewableBearer
 *   const test = yield* TestTokenSource.TestTokenSource
 *   const fiber = yield* Effect.fork(bearer.fetch())
 *   yield* TestClock.adjust("100 millis") // the source answers after 100 ms
 *   const token = yield* Fiber.join(fiber)
 *   return [token, yield* test.calls] as const // calls === 1
 * }).pipe(
 *   Effect.provide(
 *     RenewableBearer.layer().pipe(
 *       Layer.provideMerge(
 *         TestTokenSource.layer([TestTokenSource.token("t1", { expiresIn: "1 hour", delay: "100 millis" })])
 *       )
 *     )
 *   )
 * )
 * ```
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { TokenSourceError } from "./Errors.js"
import * as internal from "./internal/testTokenSource.js"
import * as RenewableBearer from "./RenewableBearer.js"
import type * as Token from "./Token.js"
import { TokenSource } from "./TokenSource.js"
import { TestTokenSource } from "./internal/testTokenSource.js"

/**
 * One scripted answer.
 *
 * @since 0.1.0
 * @category models
 */
export type Step =
  | {
      readonly _tag: "Token"
      readonly value: string
      /** Lifetime counted from the instant the answer is given (after `delay`). */
      readonly expiresIn?: Duration.DurationInput | undefined
      /** An absolute expiration instead (epoch millis, `Date` or `DateTime`): for tokens that are already bad. */
      readonly expiresAt?: Token.ExpirationInput | undefined
      readonly delay?: Duration.DurationInput | undefined
    }
  | {
      readonly _tag: "Fail"
      readonly error: TokenSourceError
      readonly delay?: Duration.DurationInput | undefined
    }
  | { readonly _tag: "Die"; readonly defect: unknown; readonly delay?: Duration.DurationInput | undefined }
  | { readonly _tag: "Hang" }

/**
 * Answer with a token.
 *
 * @since 0.1.0
 * @category constructors
 */
export const token = (
  value: string,
  options?: {
    readonly expiresIn?: Duration.DurationInput | undefined
    readonly expiresAt?: Token.ExpirationInput | undefined
    readonly delay?: Duration.DurationInput | undefined
  }
): Step => ({ _tag: "Token", value, ...options })

/**
 * Fail with a `TokenSourceError` (retryable unless `retryable: false`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const fail = (
  message = "scripted failure",
  options?: {
    readonly retryable?: boolean | undefined
    readonly delay?: Duration.DurationInput | undefined
  }
): Step => ({
  _tag: "Fail",
  error: new TokenSourceError({ message, retryable: options?.retryable }),
  delay: options?.delay
})

/**
 * Die with a defect, as a source that throws.
 *
 * @since 0.1.0
 * @category constructors
 */
export const die = (
  defect: unknown,
  options?: { readonly delay?: Duration.DurationInput | undefined }
): Step => ({
  _tag: "Die",
  defect,
  delay: options?.delay
})

/**
 * Never answer (until interrupted).
 *
 * @since 0.1.0
 * @category constructors
 */
export const hang: Step = internal.hang

export {
  /**
   * What a test reads from the scripted source.
   *
   * @since 0.1.0
   * @category tags
   */
  TestTokenSource
} from "./internal/testTokenSource.js"

/**
 * The most calls a scripted source answers from its script. A bearer that calls its source more often than
 * this in one test is caught in a refresh storm; from then on every call fails at once with a permanent
 * `TokenSourceError` ("a refresh storm"), so the bearer backs off for its longest timeout, simulated time moves
 * on and the test fails on its own assertions instead of spinning at one instant.
 *
 * @since 0.2.0
 * @category constants
 */
export const MAX_CALLS: typeof internal.MAX_CALLS = internal.MAX_CALLS

/**
 * Builds a scripted source. Each call plays the next step; once the script is used up, the last step is
 * played again (an empty script hangs). Beyond `MAX_CALLS` calls, every call fails (see `MAX_CALLS`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (
  steps: Iterable<Step>
) => Effect.Effect<{ readonly source: TokenSource["Type"]; readonly test: TestTokenSource["Type"] }> =
  internal.make

/**
 * A layer that provides both the scripted `TokenSource` and the `TestTokenSource` that reads it.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (steps: Iterable<Step>): Layer.Layer<TokenSource | TestTokenSource> =>
  Layer.effectContext(
    Effect.map(make(steps), ({ source, test }) =>
      Context.make(TokenSource, source).pipe(Context.add(TestTokenSource, test))
    )
  )

/**
 * The identifier of the `TestTokenSource` handle of the named bearer `Bearer` (see `forBearer`).
 *
 * @since 0.2.0
 * @category models
 */
export interface For<Bearer> {
  readonly _Bearer: (_: never) => Bearer
}

/**
 * The tag of the `TestTokenSource` handle that reads the scripted source of a named bearer built with
 * `layerFor`. Its key is derived from the bearer's tag, so each named bearer has its own handle.
 *
 * @since 0.2.0
 * @category tags
 */
export const forBearer = <Self>(
  bearer: Context.Tag<Self, RenewableBearer.Service>
): Context.Tag<For<Self>, TestTokenSource["Type"]> =>
  Context.GenericTag<For<Self>, TestTokenSource["Type"]>(
    `effect-renewable-bearer/TestTokenSource/${bearer.key}`
  )

/**
 * A named bearer (declared with `RenewableBearer.Tag`) on a scripted source of its own, and the handle that
 * reads the script (`forBearer(tag)`): two named bearers in one test each play their own script.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { RenewableBearer, TestTokenSource } from "effect-renewable-bearer"
 *
 * class BillingBearer extends RenewableBearer.Tag("app/BillingBearer")<BillingBearer>() {}
 *
 * const program = Effect.gen(function* () {
 *   const token = yield* (yield* BillingBearer).fetch()
 *   const calls = yield* (yield* TestTokenSource.forBearer(BillingBearer)).calls
 *   return [token, calls] as const // calls === 1
 * }).pipe(
 *   Effect.provide(TestTokenSource.layerFor(BillingBearer, [TestTokenSource.token("b1", { expiresIn: "1 hour" })]))
 * )
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layerFor = <Self>(
  bearer: Context.Tag<Self, RenewableBearer.Service>,
  steps: Iterable<Step>,
  options?: RenewableBearer.Options
): Layer.Layer<Self | For<Self>, RenewableBearer.BuildError> =>
  Layer.scopedContext(
    Effect.gen(function* () {
      const { source, test } = yield* make(steps)
      const service = yield* RenewableBearer.makeWith({ ...options, source }, bearer.key)
      return Context.make(bearer, service).pipe(Context.add(forBearer(bearer), test))
    })
  )
