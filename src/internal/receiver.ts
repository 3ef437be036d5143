import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import type { FetchError } from "../Errors.js"
import type { FetchOptions } from "../FetchOptions.js"
import { Receiver } from "../Receiver.js"
import { RenewableBearer } from "../RenewableBearer.js"
import type * as Token from "../Token.js"

/** What a receiver needs from its bearer. @internal */
export interface ReceiverHost {
  readonly fetch: (options?: FetchOptions) => Effect.Effect<Token.Token, FetchError>
  readonly invalidate: (token: Token.Token) => Effect.Effect<boolean>
  readonly maxRetries: number
}

interface ReceiverState {
  readonly trials: number
  readonly latest: Token.Token | undefined
}

const initial: ReceiverState = { trials: 0, latest: undefined }

/** @internal */
export const make = (host: ReceiverHost): Effect.Effect<Receiver["Type"]> =>
  Effect.map(Ref.make(initial), (state) => {
    // One Ref update per fetch: a success records the trial and the token together, a failure the trial.
    const countFailure = Ref.update(state, (s): ReceiverState => ({ trials: s.trials + 1, latest: s.latest }))
    const run = (fetch: Effect.Effect<Token.Token, FetchError>): Effect.Effect<Token.Token, FetchError> =>
      Effect.matchEffect(fetch, {
        onFailure: (error) => Effect.zipRight(countFailure, Effect.fail(error)),
        onSuccess: (token) =>
          Ref.modify(state, (s): [Token.Token, ReceiverState] => [
            token,
            { trials: s.trials + 1, latest: token }
          ])
      })
    return Receiver.of({
      fetch: run(host.fetch()),
      fetchWith: (options) => run(host.fetch(options)),
      canRetry: (_error, options) =>
        Effect.flatMap(Ref.get(state), (s) => {
          if (s.trials >= (options?.maxRetries ?? host.maxRetries)) return Effect.succeed(false)
          if (options?.synchronous === true || s.latest === undefined) return Effect.succeed(true)
          return Effect.as(host.invalidate(s.latest), true)
        }),
      trials: Effect.map(Ref.get(state), (s) => s.trials),
      latest: Effect.map(Ref.get(state), (s) => Option.fromNullable(s.latest))
    })
  })

/** @internal */
export const provideFresh = <A, E, R>(
  self: Effect.Effect<A, E, R>
): Effect.Effect<A, E, Exclude<R, Receiver> | RenewableBearer> =>
  Effect.flatMap(RenewableBearer, (bearer) => Effect.provideServiceEffect(self, Receiver, bearer.receiver))
