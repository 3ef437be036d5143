/**
 * The service tags of the library, made here so that internal code reads them without loading a public
 * module; `TokenSource.ts`, `TokenStore.ts`, `RenewableBearer.ts` and `Receiver.ts` re-export them with
 * their docs.
 */
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type * as Stream from "effect/Stream"
import type { FetchError } from "../Errors.js"
import type { FetchOptions } from "../FetchOptions.js"
import type * as Token from "../Token.js"
import type { StoredToken } from "../TokenStore.js"
import type { TokenSourceError, TokenStoreError } from "./errors.js"

/** See `TokenSource.TokenSource`. @internal */
export class TokenSource extends Context.Tag("effect-renewable-bearer/TokenSource")<
  TokenSource,
  {
    readonly fetch: Effect.Effect<Token.Token, TokenSourceError>
  }
>() {}

/** See `TokenStore.TokenStore`. @internal */
export class TokenStore extends Context.Tag("effect-renewable-bearer/TokenStore")<
  TokenStore,
  {
    /** The token stored under `key`; `None` when there is none, or it cannot be decoded or decrypted. */
    readonly get: (key: string) => Effect.Effect<Option.Option<StoredToken>, TokenStoreError>
    /** Replaces the token stored under `key`, atomically: a reader sees the old record or the new one. */
    readonly put: (key: string, stored: StoredToken) => Effect.Effect<void, TokenStoreError>
    /**
     * Takes the refresh lock of `key` for `owner` until `ttl` has passed; `false` while an unexpired lock is
     * held, whoever holds it (the same `owner` included: a lock is never granted twice).
     */
    readonly tryLock: (
      key: string,
      owner: string,
      ttl: Duration.Duration
    ) => Effect.Effect<boolean, TokenStoreError>
    /** Releases the refresh lock of `key` if `owner` still holds it; otherwise does nothing. */
    readonly unlock: (key: string, owner: string) => Effect.Effect<void, TokenStoreError>
  }
>() {}

/** See `RenewableBearer.RenewableBearer`. @internal */
export class RenewableBearer extends Context.Tag("effect-renewable-bearer/RenewableBearer")<
  RenewableBearer,
  {
    /**
     * The cached token if it is fresh (no waiting, no timer); otherwise renews as the options say (see
     * `FetchOptions`). Fails with `RenewalError` or, once the bearer's scope is closed, `StoppedError`.
     */
    readonly fetch: (options?: FetchOptions) => Effect.Effect<Token.Token, FetchError>
    /** Makes a fresh per-request `Receiver`. */
    readonly receiver: Effect.Effect<Receiver["Type"]>
    /**
     * Wakes the background fiber to renew now. With `invalidate: true` the cached token is no longer handed
     * out. A no-op once stopped. During a backoff after a failure, the backoff still runs to its end.
     */
    readonly requestRenewal: (options?: { readonly invalidate?: boolean | undefined }) => Effect.Effect<void>
    /**
     * Invalidates `token` and requests a renewal, but only if `token` is still the cached token and not
     * already invalidated; returns whether it acted.
     */
    readonly invalidate: (token: Token.Token) => Effect.Effect<boolean>
    /** Whether a fetch would have to wait: no usable token is cached, or a renewal was requested. */
    readonly isRenewalRequired: Effect.Effect<boolean>
    /** The token a fetch would return now without waiting, if there is one. */
    readonly current: Effect.Effect<Option.Option<Token.Token>>
    /** Each new token, starting with the one cached now (if any); ends when the bearer stops. */
    readonly changes: Stream.Stream<Token.Token>
  }
>() {}

/** See `Receiver.Receiver`. @internal */
export class Receiver extends Context.Tag("effect-renewable-bearer/Receiver")<
  Receiver,
  {
    /** Counts an attempt, then fetches from the bearer. */
    readonly fetch: Effect.Effect<Token.Token, FetchError>
    /** Counts an attempt, then fetches from the bearer with these options. */
    readonly fetchWith: (options: FetchOptions) => Effect.Effect<Token.Token, FetchError>
    /**
     * Whether the request that failed with `error` may try again: `false` once the attempts reach the retry
     * budget (`maxRetries`, or the option of that name); otherwise `true`, and the last token this receiver
     * got is invalidated if it is still the cached one (so many concurrent 401s for one token cause one
     * renewal, and a late 401 for a replaced token renews nothing). The same for a `synchronous` request: its
     * replay then runs its own attempt instead of getting the refused token back. The one place that decides
     * what a failed request does to the token; `BearerHttpClient` leaves it to this.
     */
    readonly canRetry: (error: unknown, options?: FetchOptions) => Effect.Effect<boolean>
    /** How many attempts this receiver has counted. */
    readonly trials: Effect.Effect<number>
    /** The last token this receiver got. */
    readonly latest: Effect.Effect<Option.Option<Token.Token>>
  }
>() {}
