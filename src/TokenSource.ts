/**
 * Where tokens come from. A `TokenSource` is one attempt to get a token; the `RenewableBearer` decides when
 * to make that attempt, bounds it with a timeout, retries it and caches its result.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { isTokenSourceError, TokenSourceError } from "./Errors.js"
import type * as Token from "./Token.js"
import { TokenSource } from "./internal/tags.js"

export {
  /**
   * The token source service: `fetch` is one attempt to get a token. It may be slow, fail, or hang: the bearer
   * bounds it with `refreshRequestTimeout` and interrupts it, so it should be interruptible.
   *
   * @since 0.1.0
   * @category tags
   */
  TokenSource
} from "./internal/tags.js"

/**
 * A source that always returns the same token.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromToken = (token: Token.Token): TokenSource["Type"] =>
  TokenSource.of({ fetch: Effect.succeed(token) })

/**
 * A source from any effect. Its context is captured when the source is built; an error that is not already a
 * `TokenSourceError` is wrapped in one (with the original as `cause`).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Token, TokenSource } from "effect-renewable-bearer"
 *
 * const source = TokenSource.fromEffect(
 *   Effect.sync(() => Token.make("from-somewhere", { expiresAt: Date.now() + 60_000 }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromEffect = <E, R>(
  fetch: Effect.Effect<Token.Token, E, R>
): Effect.Effect<TokenSource["Type"], never, R> =>
  Effect.map(Effect.context<R>(), (context) =>
    TokenSource.of({
      fetch: fetch.pipe(
        Effect.mapError((error) =>
          isTokenSourceError(error)
            ? error
            : new TokenSourceError({ message: "The token source failed", cause: error })
        ),
        Effect.provide(context)
      )
    })
  )

/**
 * A layer of a source that always returns the same token.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerToken = (token: Token.Token): Layer.Layer<TokenSource> =>
  Layer.succeed(TokenSource, fromToken(token))

/**
 * A layer of a source from any effect (see `fromEffect`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFromEffect = <E, R>(
  fetch: Effect.Effect<Token.Token, E, R>
): Layer.Layer<TokenSource, never, R> => Layer.effect(TokenSource, fromEffect(fetch))
