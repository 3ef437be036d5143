/** The metrics every bearer records, made here for internal code; `Metrics.ts` re-exports them with their docs. */
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"

/** See `Metrics.refreshAttempts`. @internal */
export const refreshAttempts = Metric.counter("renewable_bearer_refresh_attempts_total", {
  description: "Attempts to get a token from the token source, by result and reason"
})

/** See `Metrics.refreshDuration`. @internal */
export const refreshDuration = Metric.histogram(
  "renewable_bearer_refresh_duration_seconds",
  MetricBoundaries.exponential({ start: 0.005, factor: 2, count: 12 }),
  "Duration of each attempt to get a token from the token source"
)

/** See `Metrics.cacheHits`. @internal */
export const cacheHits = Metric.counter("renewable_bearer_cache_hits_total", {
  description: "Fetches answered at once with a fresh cached token"
})

/** See `Metrics.cacheStaleServes`. @internal */
export const cacheStaleServes = Metric.counter("renewable_bearer_cache_stale_serves_total", {
  description: "Fetches answered with a cached token past its refresh point, still valid"
})

/** See `Metrics.refreshAheadWakes`. @internal */
export const refreshAheadWakes = Metric.counter("renewable_bearer_refresh_ahead_wakes_total", {
  description: "Scheduled refreshes started by a fetch that served a token past its refresh point"
})

/** See `Metrics.cacheMisses`. @internal */
export const cacheMisses = Metric.counter("renewable_bearer_cache_misses_total", {
  description: "Fetches that had to wait for a renewal"
})

/** See `Metrics.invalidations`. @internal */
export const invalidations = Metric.counter("renewable_bearer_invalidations_total", {
  description: "Token invalidations, acted on or ignored"
})

/** See `Metrics.consecutiveFailures`. @internal */
export const consecutiveFailures = Metric.gauge("renewable_bearer_consecutive_failures", {
  description: "Failed attempts since the last successful one"
})

/** See `Metrics.tokenExpiresIn`. @internal */
export const tokenExpiresIn = Metric.gauge("renewable_bearer_token_expires_in_seconds", {
  description: "Seconds until the cached token expires, as of the last bearer event"
})

/** See `Metrics.tokenExpiryTimestamp`. @internal */
export const tokenExpiryTimestamp = Metric.gauge("renewable_bearer_token_expiry_timestamp_seconds", {
  description: "Expiration of the cached token, in seconds since the epoch"
})
