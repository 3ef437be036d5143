import * as Effect from "effect/Effect"
import * as Ref from "effect/Ref"
import * as SubscriptionRef from "effect/SubscriptionRef"
import type { FetchError } from "../Errors.js"
import type * as Token from "../Token.js"
import { StoppedError } from "./errors.js"

/**
 * What the cache holds: the value of the bearer's `SubscriptionRef`, written only by its state machine
 * (`internal/bearerMachine.ts`). The hot path reads it with one `Ref` read and compares `usableUntil` with
 * the clock: `-Infinity` means there is nothing to hand out.
 *
 * @internal
 */
export type CacheState = Empty | Fresh | Invalidated | Stopped

/** No token yet. @internal */
export interface Empty {
  readonly _tag: "Empty"
  readonly token: undefined
  readonly usableUntil: number
  readonly refreshAt: number
}

/** A token handed out until `usableUntil`. @internal */
export interface Fresh {
  readonly _tag: "Fresh"
  readonly token: Token.Token
  /** Epoch millis until which `token` is handed out: its expiration less the early-expiry margin. */
  readonly usableUntil: number
  /** Epoch millis of the scheduled refresh; a token served after it is a stale serve and wakes the machine. */
  readonly refreshAt: number
  /** Epoch millis at which the source handed `token` over. */
  readonly receivedAt: number
  /** `Effect.succeed(token)`, built once per token so the hot path allocates nothing. */
  readonly hit: Effect.Effect<Token.Token, FetchError>
}

/** A token a caller reported as rejected: never handed out again; its renewal is under way. @internal */
export interface Invalidated {
  readonly _tag: "Invalidated"
  readonly token: Token.Token
  readonly usableUntil: number
  readonly refreshAt: number
}

/** The bearer's scope is closed. @internal */
export interface Stopped {
  readonly _tag: "Stopped"
  readonly token: undefined
  readonly usableUntil: number
  readonly refreshAt: number
}

/** @internal */
export const stoppedError = new StoppedError()

/** @internal */
export const failStopped: Effect.Effect<never, StoppedError> = Effect.fail(stoppedError)

/** @internal */
export const empty: CacheState = {
  _tag: "Empty",
  token: undefined,
  usableUntil: -Infinity,
  refreshAt: -Infinity
}

/** @internal */
export const stopped: CacheState = {
  _tag: "Stopped",
  token: undefined,
  usableUntil: -Infinity,
  refreshAt: -Infinity
}

/** @internal */
export const fresh = (
  token: Token.Token,
  usableUntil: number,
  refreshAt: number,
  receivedAt: number
): Fresh => ({
  _tag: "Fresh",
  token,
  usableUntil,
  refreshAt,
  receivedAt,
  hit: Effect.succeed(token)
})

/** @internal */
export const invalidated = (token: Token.Token): Invalidated => ({
  _tag: "Invalidated",
  token,
  usableUntil: -Infinity,
  refreshAt: -Infinity
})

/**
 * The cache of one bearer: the `Ref` the hot path reads, its last value (so the state machine reads it
 * without an effect), and, once somebody subscribes to `changes`, a `SubscriptionRef` that mirrors it (a
 * `SubscriptionRef` costs 2.4 KB, half of an idle bearer, for a stream most bearers never serve).
 *
 * @internal
 */
export class Cache {
  readonly ref: Ref.Ref<CacheState> = Ref.unsafeMake(empty)
  /** The last value set. */
  value: CacheState = empty
  private subscription: SubscriptionRef.SubscriptionRef<CacheState> | undefined

  /** Sets the value now; the effect writes it to the `Ref` (and the subscription). */
  set(state: CacheState): Effect.Effect<void> {
    this.value = state
    return this.publish()
  }

  /** Writes the latest value, whatever order concurrent writes run in. */
  publish(): Effect.Effect<void> {
    return Effect.suspend(() => {
      const write = Ref.set(this.ref, this.value)
      const subscription = this.subscription
      return subscription === undefined
        ? write
        : Effect.zipRight(
            write,
            SubscriptionRef.update(subscription, () => this.value)
          )
    })
  }

  /** The `SubscriptionRef` behind `changes`, made with the current value on first use. */
  subscribe(): Effect.Effect<SubscriptionRef.SubscriptionRef<CacheState>> {
    return Effect.suspend(() =>
      this.subscription !== undefined
        ? Effect.succeed(this.subscription)
        : Effect.map(SubscriptionRef.make(this.value), (made) => (this.subscription ??= made))
    )
  }
}
