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
export class LatencyWindow {
  private samples: Float64Array | undefined
  private first: number | undefined
  private count = 0

  record(millis: number): void {
    if (this.first === undefined) this.first = millis
    else (this.samples ??= new Float64Array(LATENCY_WINDOW))[this.count++ % LATENCY_WINDOW] = millis
  }

  estimate(): number {
    const samples = this.samples
    if (samples === undefined) return this.first ?? 0
    let max = 0
    for (let i = 0; i < Math.min(this.count, LATENCY_WINDOW); i++) if (samples[i]! > max) max = samples[i]!
    return max
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
export class Guard {
  /** The theoretical instant of the next credit: the bucket is empty while it is `GUARD_BURST - 1` paces ahead. */
  private next = -Infinity
  private rejections = 0

  constructor(private readonly options: ResolvedOptions) {}

  /** The pace: `initialRetryTimeout`, backed off while fresh tokens keep being rejected. */
  paceMillis(): number {
    return backoffMillis(this.options, this.rejections + 1, false)
  }

  /**
   * Millis until an unplanned attempt may start (0: now). The burst is counted in `initialRetryTimeout`s: a
   * backed-off pace slows the refill, not the burst.
   */
  waitMillis(now: number): number {
    return Math.max(0, this.next - (GUARD_BURST - 1) * this.options.initialRetryMillis - now)
  }

  /** Records an unplanned attempt starting at `now` (after `waitMillis` said 0). */
  spend(now: number): void {
    this.next = Math.max(this.next, now) + this.paceMillis()
  }

  /** Records an invalidation of a token received at `receivedAt`; returns the pace from now on. */
  rejected(receivedAt: number, now: number): number {
    this.rejections = now - receivedAt < this.paceMillis() ? this.rejections + 1 : 0
    return this.paceMillis()
  }
}

/**
 * Until when a token that expires at `expiresAt` (epoch millis, received at `now`) is handed out: its
 * expiration less the early-expiry margin. The margin never takes more than half of the lifetime's unsafe
 * part, so a fresh token is never counted as expired and a refresh at `lifetimeSafeFraction` still leaves a
 * window to serve it.
 *
 * @internal
 */
export const usableUntilMillis = (options: ResolvedOptions, expiresAt: number, now: number): number =>
  expiresAt === Infinity
    ? Infinity
    : expiresAt -
      Math.min(options.expiryMarginMillis, ((expiresAt - now) * (1 - options.lifetimeSafeFraction)) / 2)

/**
 * The delay after the `failures`-th consecutive failure: the backoff, spread by `jitter` (`unit` in [0, 1),
 * 0.5 without jitter), or the source's own `retryAfterMillis` if longer; never under `initialRetryTimeout`,
 * never over `maxRetryTimeout`.
 *
 * @internal
 */
export const retryDelayMillis = (
  options: ResolvedOptions,
  input: {
    readonly failures: number
    readonly permanent: boolean
    readonly retryAfterMillis: number
    readonly unit: number
  }
): number => {
  const base = backoffMillis(options, input.failures, input.permanent)
  return Math.min(
    Math.max(
      base * (1 + options.jitter * (2 * input.unit - 1)),
      options.initialRetryMillis,
      input.retryAfterMillis
    ),
    options.maxRetryMillis
  )
}
