/**
 * The metrics every bearer records, all named under the `renewable_bearer_` prefix and tagged with the
 * bearer's `name` (option `name`, default `"default"`). They are ordinary Effect metrics: read them with
 * `Metric.value`, or export them with `@effect/opentelemetry`.
 *
 * @since 0.1.0
 */
export {
  /**
   * Attempts to get a token from the source, tagged `result` (`success` or `failure`) and `reason`
   * (`renewed`, `unchanged` for a token equal to the cached one, or the `RenewalError` reason).
   *
   * @since 0.1.0
   * @category metrics
   */
  refreshAttempts
} from "./internal/metrics.js"

export {
  /**
   * How long each attempt took, in seconds, tagged `result`.
   *
   * @since 0.1.0
   * @category metrics
   */
  refreshDuration
} from "./internal/metrics.js"

export {
  /**
   * Fetches answered at once with a fresh token.
   *
   * @since 0.1.0
   * @category metrics
   */
  cacheHits
} from "./internal/metrics.js"

export {
  /**
   * Fetches answered at once with a token past its refresh point (the refresh is late or failing) but not yet
   * expired.
   *
   * @since 0.1.0
   * @category metrics
   */
  cacheStaleServes
} from "./internal/metrics.js"

export {
  /**
   * Scheduled refreshes started by a fetch instead of the timer: the first fetch that serves a token past its
   * refresh point wakes the background fiber (once per token). A steady count means the bearer's timer fires
   * late (a busy event loop, a starved scheduler); reads then keep the refresh on time.
   *
   * @since 0.2.0
   * @category metrics
   */
  refreshAheadWakes
} from "./internal/metrics.js"

export {
  /**
   * Fetches that had to wait for a renewal (no usable token, or a renewal was required).
   *
   * @since 0.1.0
   * @category metrics
   */
  cacheMisses
} from "./internal/metrics.js"

export {
  /**
   * Requests to invalidate a token, tagged `outcome`: `acted` (it was the cached token) or `ignored` (it had
   * already been replaced or invalidated).
   *
   * @since 0.1.0
   * @category metrics
   */
  invalidations
} from "./internal/metrics.js"

export {
  /**
   * Failed attempts since the last success.
   *
   * @since 0.1.0
   * @category metrics
   */
  consecutiveFailures
} from "./internal/metrics.js"

export {
  /**
   * Seconds until the cached token expires, as of the bearer's last refresh attempt (a renewal or a failure); an
   * infinite lifetime is reported as `-1`, no token as `0`. For alerts prefer the exact
   * `tokenExpiryTimestamp`.
   *
   * @since 0.1.0
   * @category metrics
   */
  tokenExpiresIn
} from "./internal/metrics.js"

export {
  /**
   * When the cached token expires, in seconds since the epoch (`0`: no token; `-1`: never expires). Alert on
   * `renewable_bearer_token_expiry_timestamp_seconds - time()` falling low.
   *
   * @since 0.1.0
   * @category metrics
   */
  tokenExpiryTimestamp
} from "./internal/metrics.js"
