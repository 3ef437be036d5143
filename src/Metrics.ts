/**
 * The metrics every bearer records, all named under the `renewable_bearer_` prefix and tagged with the
 * bearer's `name` (option `name`, default `"default"`). They are ordinary Effect metrics: read them with
 * `Metric.value`, or export them with `@effect/opentelemetry`.
 *
 * @since 0.1.0
 */
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"

/**
 * Attempts to get a token from the source, tagged `result` (`success` or `failure`) and `reason`
 * (`renewed`, `unchanged` for a token equal to the cached one, or the `RenewalError` reason).
 *
 * @since 0.1.0
 * @category metrics
 */
export const refreshAttempts = Metric.counter("renewable_bearer_refresh_attempts_total", {
  description: "Attempts to get a token from the token source, by result and reason"
})

/**
 * How long each attempt took, in seconds, tagged `result`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const refreshDuration = Metric.histogram(
  "renewable_bearer_refresh_duration_seconds",
  MetricBoundaries.exponential({ start: 0.005, factor: 2, count: 12 }),
  "Duration of each attempt to get a token from the token source"
)

/**
 * Fetches answered at once with a fresh token.
 *
 * @since 0.1.0
 * @category metrics
 */
export const cacheHits = Metric.counter("renewable_bearer_cache_hits_total", {
  description: "Fetches answered at once with a fresh cached token"
})

/**
 * Fetches answered at once with a token past its refresh point (the refresh is late or failing) but not yet
 * expired.
 *
 * @since 0.1.0
 * @category metrics
 */
export const cacheStaleServes = Metric.counter("renewable_bearer_cache_stale_serves_total", {
  description: "Fetches answered with a cached token past its refresh point, still valid"
})

/**
 * Scheduled refreshes started by a fetch instead of the timer: the first fetch that serves a token past its
 * refresh point wakes the background fiber (once per token). A steady count means the bearer's timer fires
 * late (a busy event loop, a starved scheduler); reads then keep the refresh on time.
 *
 * @since 0.2.0
 * @category metrics
 */
export const refreshAheadWakes = Metric.counter("renewable_bearer_refresh_ahead_wakes_total", {
  description: "Scheduled refreshes started by a fetch that served a token past its refresh point"
})

/**
 * Fetches that had to wait for a renewal (no usable token, or a renewal was required).
 *
 * @since 0.1.0
 * @category metrics
 */
export const cacheMisses = Metric.counter("renewable_bearer_cache_misses_total", {
  description: "Fetches that had to wait for a renewal"
})

/**
 * Requests to invalidate a token, tagged `outcome`: `acted` (it was the cached token) or `ignored` (it had
 * already been replaced or invalidated).
 *
 * @since 0.1.0
 * @category metrics
 */
export const invalidations = Metric.counter("renewable_bearer_invalidations_total", {
  description: "Token invalidations, acted on or ignored"
})

/**
 * Failed attempts since the last success.
 *
 * @since 0.1.0
 * @category metrics
 */
export const consecutiveFailures = Metric.gauge("renewable_bearer_consecutive_failures", {
  description: "Failed attempts since the last successful one"
})

/**
 * Seconds until the cached token expires, as of the bearer's last refresh attempt (a renewal or a failure); an
 * infinite lifetime is reported as `-1`, no token as `0`. For alerts prefer the exact
 * `tokenExpiryTimestamp`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const tokenExpiresIn = Metric.gauge("renewable_bearer_token_expires_in_seconds", {
  description: "Seconds until the cached token expires, as of the last bearer event"
})

/**
 * When the cached token expires, in seconds since the epoch (`0`: no token; `-1`: never expires). Alert on
 * `renewable_bearer_token_expiry_timestamp_seconds - time()` falling low.
 *
 * @since 0.1.0
 * @category metrics
 */
export const tokenExpiryTimestamp = Metric.gauge("renewable_bearer_token_expiry_timestamp_seconds", {
  description: "Expiration of the cached token, in seconds since the epoch"
})
