import { backoffMillis, type ResolvedOptions, veryLongMillis } from "./options.js"

/**
 * When the background fiber attempts, as pure functions of the bearer's options and what it has seen: the
 * refresh point of a token, and the storm guard that every unplanned attempt passes.
 *
 * @internal
 */

/** Successful source calls whose latency the lead time is computed from. @internal */
export const LATENCY_WINDOW = 8

/** Unplanned attempts the guard lets through back to back before it paces them. @internal */
export const GUARD_BURST = 3

/**
 * The shortest delay from a token's arrival to its scheduled refresh, as a fraction of
 * `initialRetryTimeout` (50 ms by default): it bounds the calls a source of ever shorter tokens can cause.
 *
 * @internal
 */
export const MIN_REFRESH_FRACTION = 1 / 20

/**
 * The latency of the last `LATENCY_WINDOW` successful source calls; the estimate is their maximum, so one fast
 * answer does not shrink the lead time. The first call counts only until there is a second: it pays for
 * connections, module loading and a competing cold start (a shared store's lock), and would otherwise pull
 * the next eight refreshes forward.
 *
 * @internal
 */
export interface LatencyWindow {
  readonly record: (millis: number) => void
  readonly estimate: () => number
}

/** @internal */
export const makeLatencyWindow = (): LatencyWindow => {
  const samples = new Float64Array(LATENCY_WINDOW)
  let first: number | undefined
  let count = 0
  return {
    record: (millis) => {
      if (first === undefined) first = millis
      else samples[count++ % LATENCY_WINDOW] = millis
    },
    estimate: () => {
      if (count === 0) return first ?? 0
      let max = 0
      for (let i = 0; i < Math.min(count, LATENCY_WINDOW); i++) if (samples[i]! > max) max = samples[i]!
      return max
    }
  }
}

/**
 * The delay from a token's arrival (`now`) to its refresh:
 *
 * 1. `lifetimeSafeFraction` of the remaining lifetime, up to `jitter` earlier (`unit` in [0, 1));
 * 2. never later than `usableUntil` less twice the estimated source latency, so the renewed token arrives
 *    while the current one is still handed out, but for that never earlier than half of step 1 (a source
 *    slower than a quarter of the lifetime cannot make the bearer refresh all the time);
 * 3. when the source handed back the token it already had (`unchanged` times in a row), at least the backoff
 *    for that many repeats; the second repeat onwards shows that asking again before the token ends brings
 *    nothing new, so from then on the backoff is not cut at `usableUntil`;
 * 4. never sooner than `MIN_REFRESH_FRACTION` of `initialRetryTimeout`.
 *
 * @internal
 */
export const refreshDelayMillis = (
  options: ResolvedOptions,
  input: {
    readonly now: number
    readonly expiresAt: number
    readonly usableUntil: number
    readonly latencyMillis: number
    readonly unchanged: number
    readonly unit: number
  }
): number => {
  if (input.expiresAt === Infinity) return veryLongMillis
  const { now, unchanged } = input
  const planned = (input.expiresAt - now) * options.lifetimeSafeFraction * (1 - options.jitter * input.unit)
  const latest = Math.max(input.usableUntil - now - 2 * input.latencyMillis, planned / 2)
  let delay = planned
  if (unchanged > 0) delay = Math.max(delay, backoffMillis(options, unchanged, false))
  if (unchanged < 2) delay = Math.min(delay, latest)
  return Math.min(Math.max(delay, options.initialRetryMillis * MIN_REFRESH_FRACTION), veryLongMillis)
}

/**
 * The storm guard: every attempt that is not a scheduled refresh or a retry on the failure backoff (an
 * invalidation after a 401, `renewRequired`, `requestRenewal`, a synchronous fetch, a fetch that finds no
 * usable token) spends a credit. The bucket holds `GUARD_BURST` credits and gains one per pace, the pace being
 * `initialRetryTimeout`, backed off like failures while freshly renewed tokens keep being rejected (a 401
 * within one pace of their arrival). It is kept as one instant, that of the next credit (a generic cell rate
 * algorithm), so every instant it yields is exact.
 *
 * @internal
 */
export interface Guard {
  /** Millis until an unplanned attempt may start (0: now). */
  readonly waitMillis: (now: number) => number
  /** Records an unplanned attempt starting at `now` (after `waitMillis` said 0). */
  readonly spend: (now: number) => void
  /** Records an invalidation of a token received at `receivedAt`; returns the pace from now on. */
  readonly rejected: (receivedAt: number, now: number) => number
  readonly paceMillis: () => number
}

/** @internal */
export const makeGuard = (options: ResolvedOptions): Guard => {
  // The theoretical instant of the next credit: the bucket is empty while it is `GUARD_BURST - 1` paces ahead.
  let next = -Infinity
  let rejections = 0
  const paceMillis = () => backoffMillis(options, rejections + 1, false)
  return {
    // The burst is counted in `initialRetryTimeout`s: a backed-off pace slows the refill, not the burst.
    waitMillis: (now) => Math.max(0, next - (GUARD_BURST - 1) * options.initialRetryMillis - now),
    spend: (now) => {
      next = Math.max(next, now) + paceMillis()
    },
    rejected: (receivedAt, now) => {
      rejections = now - receivedAt < paceMillis() ? rejections + 1 : 0
      return paceMillis()
    },
    paceMillis
  }
}
