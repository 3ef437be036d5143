/**
 * A receiver is the bearer as one request sees it: it counts the request's attempts to get a token and
 * decides whether a request that failed (a `401`) may try again with a renewed token.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type { FetchError } from "./Errors.js"
import type { FetchOptions } from "./FetchOptions.js"
import * as internal from "./internal/receiver.js"
import type { RenewableBearer, Service as BearerService } from "./RenewableBearer.js"
import type * as Token from "./Token.js"
import { Receiver } from "./internal/tags.js"

export {
  /**
   * The receiver service: one per request. Make one with `RenewableBearer.receiver`, or give a whole effect a
   * fresh one with `Receiver.provideFresh`.
   *
   * @since 0.1.0
   * @category tags
   */
  Receiver
} from "./internal/tags.js"

/**
 * Counts an attempt and fetches a token, with the `Receiver` in context.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Receiver } from "effect-renewable-bearer"
 *
 * const program = Effect.gen(function* () {
 *   const token = yield* Receiver.fetch
 *   return token
 * }).pipe(Receiver.provideFresh)
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const fetch: Effect.Effect<Token.Token, FetchError, Receiver> = Effect.flatMap(
  Receiver,
  (r) => r.fetch
)

/**
 * @since 0.1.0
 * @category accessors
 */
export const fetchWith = (options: FetchOptions): Effect.Effect<Token.Token, FetchError, Receiver> =>
  Effect.flatMap(Receiver, (r) => r.fetchWith(options))

/**
 * Asks the `Receiver` in context whether the request that failed with `error` may try again. Within the
 * retry budget it says `true` and invalidates the last token the receiver got, if that token is still the
 * cached one, in every fetch mode (a `synchronous` replay then renews instead of getting the refused token
 * back); past the budget it says `false` and leaves the token alone.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Receiver } from "effect-renewable-bearer"
 *
 * // A request whose server refused the token: try once more with a renewed one, if the budget allows.
 * const retry = (error: unknown) =>
 *   Effect.flatMap(Receiver.canRetry(error, { synchronous: true }), (again) =>
 *     again ? Receiver.fetchWith({ synchronous: true }) : Effect.fail(error)
 *   )
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const canRetry = (error: unknown, options?: FetchOptions): Effect.Effect<boolean, never, Receiver> =>
  Effect.flatMap(Receiver, (r) => r.canRetry(error, options))

/**
 * @since 0.1.0
 * @category accessors
 */
export const trials: Effect.Effect<number, never, Receiver> = Effect.flatMap(Receiver, (r) => r.trials)

/**
 * @since 0.1.0
 * @category accessors
 */
export const latest: Effect.Effect<Option.Option<Token.Token>, never, Receiver> = Effect.flatMap(
  Receiver,
  (r) => r.latest
)

/**
 * Runs an effect with a fresh `Receiver` from the `RenewableBearer`: one per call of the resulting effect,
 * so each request counts its own attempts.
 *
 * @since 0.1.0
 * @category combinators
 */
export const provideFresh: <A, E, R>(
  self: Effect.Effect<A, E, R>
) => Effect.Effect<A, E, Exclude<R, Receiver> | RenewableBearer> = internal.provideFresh

/**
 * Runs an effect with a fresh `Receiver` from the bearer of `tag`, such as a named bearer declared with
 * `RenewableBearer.Tag`: one per call of the resulting effect.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Receiver, RenewableBearer } from "effect-renewable-bearer"
 *
 * class BillingBearer extends RenewableBearer.Tag("app/BillingBearer")<BillingBearer>() {}
 *
 * const program = Receiver.fetch.pipe(Receiver.provideFreshFrom(BillingBearer))
 * ```
 *
 * @since 0.2.0
 * @category combinators
 */
export const provideFreshFrom: <Self>(
  tag: Context.Tag<Self, BearerService>
) => <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, Exclude<R, Receiver> | Self> =
  internal.provideFreshFrom
