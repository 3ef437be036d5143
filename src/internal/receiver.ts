import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { FetchError } from "../Errors.js"
import type { FetchOptions } from "../FetchOptions.js"
import type * as Context from "effect/Context"
import type { Service as BearerService } from "../RenewableBearer.js"
import type * as Token from "../Token.js"
import { MAX_RETRIES_LIMIT } from "./options.js"
import { Receiver, RenewableBearer } from "./tags.js"

/** What a receiver needs from its bearer. @internal */
export interface ReceiverHost {
  readonly fetch: (options?: FetchOptions) => Effect.Effect<Token.Token, FetchError>
  readonly invalidate: (token: Token.Token) => Effect.Effect<boolean>
  readonly maxRetries: number
}

/**
 * The retry budget of one request: the fetch option when it is an integer in [0, `MAX_RETRIES_LIMIT`],
 * otherwise (a larger, negative, fractional or non-numeric one is malformed) the bearer's own.
 */
const budget = (requested: unknown, fallback: number): number =>
  Number.isSafeInteger(requested) && (requested as number) >= 0 && (requested as number) <= MAX_RETRIES_LIMIT
    ? (requested as number)
    : fallback

/**
 * The receivers made here, each with the function that counts an attempt made without it: a request that
 * fetched its first token from the bearer directly (`BearerHttpClient`) hands it over when it needs the
 * receiver, after a failed request. A receiver made elsewhere (a wrapper) is not in it.
 */
const countsElsewhere = new WeakMap<Receiver["Type"], (token: Token.Token) => void>()

/**
 * Counts, in `receiver`, a successful attempt that got `token` without it, as if `receiver.fetch` had
 * made it. Returns `false`, and does nothing, for a receiver this module did not make.
 *
 * @internal
 */
export const countAttempt = (receiver: Receiver["Type"], token: Token.Token): boolean => {
  const count = countsElsewhere.get(receiver)
  if (count === undefined) return false
  count(token)
  return true
}

/** Whether `receiver` was made by this module, so `countAttempt` works on it. @internal */
export const isOwn = (receiver: Receiver["Type"]): boolean => countsElsewhere.has(receiver)

/** @internal */
export const make = (host: ReceiverHost): Effect.Effect<Receiver["Type"]> =>
  Effect.sync(() => {
    // Plain variables, not a Ref: each update happens inside one synchronous continuation, which JavaScript
    // runs to completion, so concurrent fetches through one receiver never lose a count. A success records
    // the trial and the token together, a failure the trial.
    let trials = 0
    let latest: Token.Token | undefined
    // `Effect.succeed(latest)`, built once per token, so a fetch that hits the cache allocates nothing.
    let latestHit: Effect.Effect<Token.Token, FetchError> = Effect.never
    const onFailure = (error: FetchError): Effect.Effect<Token.Token, FetchError> => {
      trials += 1
      return Effect.fail(error)
    }
    const onSuccess = (token: Token.Token): Effect.Effect<Token.Token, FetchError> => {
      trials += 1
      if (token !== latest) {
        latest = token
        latestHit = Effect.succeed(token)
      }
      return latestHit
    }
    const run = (fetch: Effect.Effect<Token.Token, FetchError>): Effect.Effect<Token.Token, FetchError> =>
      Effect.matchEffect(fetch, { onFailure, onSuccess })
    let lastOptions: FetchOptions | undefined | null = null
    let lastFetchWith: Effect.Effect<Token.Token, FetchError> = Effect.never
    const receiver = Receiver.of({
      fetch: run(host.fetch()),
      fetchWith: (options) => {
        // One caller passes the same options object each time (BearerHttpClient does): built once.
        if (options !== lastOptions) {
          lastOptions = options
          lastFetchWith = run(host.fetch(options))
        }
        return lastFetchWith
      },
      // The one place that decides what a failed request does to the token: within the budget the last token
      // this receiver got is invalidated if it is still the cached one, whatever the fetch mode. A synchronous
      // fetch hands out a fresh cached token as it is, so without this its replay would carry the token the
      // server just refused.
      canRetry: (_error, options) =>
        Effect.suspend(() => {
          if (trials >= budget(options?.maxRetries, host.maxRetries)) return Effect.succeed(false)
          if (latest === undefined) return Effect.succeed(true)
          return Effect.as(host.invalidate(latest), true)
        }),
      trials: Effect.sync(() => trials),
      latest: Effect.sync(() => Option.fromNullable(latest))
    })
    countsElsewhere.set(receiver, onSuccess)
    return receiver
  })

/** @internal */
export const provideFreshFrom =
  <Self>(tag: Context.Tag<Self, BearerService>) =>
  <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, Exclude<R, Receiver> | Self> =>
    Effect.flatMap(tag, (bearer) => Effect.provideServiceEffect(self, Receiver, bearer.receiver))

/** @internal */
export const provideFresh: <A, E, R>(
  self: Effect.Effect<A, E, R>
) => Effect.Effect<A, E, Exclude<R, Receiver> | RenewableBearer> = provideFreshFrom(RenewableBearer)
