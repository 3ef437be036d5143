import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"

/**
 * A one-shot result that many fibers wait for: `Deferred`, except that a waiter who gives up (a timeout, an
 * interruption) is removed in constant time. `Deferred` removes a leaving waiter with `indexOf` and `splice`,
 * so 100,000 callers with a short timeout against a hung token endpoint cost O(waiters²) there.
 *
 * @internal
 */
export interface Waiters<A, E> {
  /** Waits for the result; never arms a timer. */
  readonly await: Effect.Effect<A, E>
  /** Completes every waiter, present and future, with `exit`; later calls do nothing. */
  readonly done: (exit: Exit.Exit<A, E>) => void
}

/** @internal */
export const make = <A, E>(): Waiters<A, E> => {
  const waiting = new Set<(result: Effect.Effect<A, E>) => void>()
  let result: Exit.Exit<A, E> | undefined
  return {
    // The register function takes one parameter on purpose: with two, Effect makes an AbortController per call.
    await: Effect.async<A, E>((resume) => {
      if (result !== undefined) return resume(result)
      waiting.add(resume)
      return Effect.sync(() => {
        waiting.delete(resume)
      })
    }),
    done: (exit) => {
      if (result !== undefined) return
      result = exit
      for (const resume of waiting) resume(exit)
      waiting.clear()
    }
  }
}

/**
 * A wake-up that one fiber waits for and anyone may fire. `next()` arms the signal at the moment it is
 * called and returns the wait for a firing after that moment: an older firing is dropped, because the waiter
 * looks at the state it cares about just before it calls `next()` (in the same synchronous step).
 *
 * @internal
 */
export interface Signal {
  readonly fire: () => void
  readonly next: () => Effect.Effect<void>
}

/** @internal */
export const makeSignal = (): Signal => {
  let current = make<void, never>()
  let fired = false
  return {
    fire: () => {
      fired = true
      current.done(Exit.void)
    },
    next: () => {
      if (fired) {
        fired = false
        current = make()
      }
      return current.await
    }
  }
}
