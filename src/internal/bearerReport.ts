import * as Effect from "effect/Effect"
import * as MetricLabel from "effect/MetricLabel"
import type * as Token from "../Token.js"
import type { RenewalError } from "./errors.js"
import * as Metrics from "./metrics.js"
import { expiresAtMillis } from "./token.js"

/**
 * Label arrays by bearer name and extra labels, shared by every bearer of that name (the keyed bearers of one
 * label share theirs). Bounded by the names users give, as the metrics themselves are.
 */
const labelCache = new Map<string, ReadonlyArray<MetricLabel.MetricLabel>>()

const labelsOf = (
  name: string,
  key?: string,
  value?: string,
  key2?: string,
  value2?: string
): ReadonlyArray<MetricLabel.MetricLabel> => {
  const id = JSON.stringify([name, key, value, key2, value2])
  let cached = labelCache.get(id)
  if (cached === undefined) {
    cached = [MetricLabel.make("bearer", name)]
    if (key !== undefined && value !== undefined) cached = [...cached, MetricLabel.make(key, value)]
    if (key2 !== undefined && value2 !== undefined) cached = [...cached, MetricLabel.make(key2, value2)]
    labelCache.set(id, cached)
  }
  return cached
}

/**
 * What a bearer tells the world about itself: its metrics (labelled with its name) and its logs. The state
 * machine decides; this only reports, so each outcome's metrics and log lines are in one place.
 *
 * @internal
 */
export class BearerReport {
  /** `bearer=<name>`: Effect caches a metric's hook per label array, so each is built once. */
  readonly labels: ReadonlyArray<MetricLabel.MetricLabel>

  constructor(readonly name: string) {
    this.labels = labelsOf(name)
  }

  /** The bearer's labels and one or two more. */
  labelsWith(
    key: string,
    value: string,
    key2?: string,
    value2?: string
  ): ReadonlyArray<MetricLabel.MetricLabel> {
    return labelsOf(this.name, key, value, key2, value2)
  }

  hit(): void {
    Metrics.cacheHits.unsafeUpdate(1, this.labels)
  }

  staleServe(): void {
    Metrics.cacheStaleServes.unsafeUpdate(1, this.labels)
  }

  refreshAheadWake(): void {
    Metrics.refreshAheadWakes.unsafeUpdate(1, this.labels)
  }

  miss(): void {
    Metrics.cacheMisses.unsafeUpdate(1, this.labels)
  }

  invalidation(acted: boolean): void {
    Metrics.invalidations.unsafeUpdate(1, this.labelsWith("outcome", acted ? "acted" : "ignored"))
  }

  /** A token arrived (`unchanged` times in a row the same one); its refresh is `delayMillis` away. */
  renewed(
    token: Token.Token,
    input: {
      readonly now: number
      readonly latencyMillis: number
      readonly delayMillis: number
      readonly unchanged: number
    }
  ): Effect.Effect<void> {
    Metrics.refreshAttempts.unsafeUpdate(
      1,
      this.labelsWith("result", "success", "reason", input.unchanged > 0 ? "unchanged" : "renewed")
    )
    Metrics.refreshDuration.unsafeUpdate(input.latencyMillis / 1000, this.labelsWith("result", "success"))
    Metrics.consecutiveFailures.unsafeUpdate(0, this.labels)
    this.expiry(token, input.now)
    const expires = expiresAtMillis(token)
    return Effect.logDebug("RenewableBearer: token renewed").pipe(
      Effect.annotateLogs({
        "bearer.expiresInMillis": expires === Infinity ? "never" : Math.round(expires - input.now),
        "bearer.nextRefreshInMillis": Math.round(input.delayMillis),
        "bearer.name": this.name,
        "bearer.unchanged": input.unchanged
      })
    )
  }

  /** An attempt failed (`failures` in a row); the next comes in `delayMillis`; `token` is what is cached. */
  failed(
    error: RenewalError,
    input: {
      readonly now: number
      readonly latencyMillis: number
      readonly delayMillis: number
      readonly failures: number
      readonly permanent: boolean
      readonly token: Token.Token | undefined
    }
  ): Effect.Effect<void> {
    Metrics.refreshAttempts.unsafeUpdate(1, this.labelsWith("result", "failure", "reason", error.reason))
    Metrics.refreshDuration.unsafeUpdate(input.latencyMillis / 1000, this.labelsWith("result", "failure"))
    Metrics.consecutiveFailures.unsafeUpdate(input.failures, this.labels)
    this.expiry(input.token, input.now)
    const annotations = {
      "bearer.reason": error.reason,
      "bearer.name": this.name,
      "bearer.consecutiveFailures": input.failures,
      "bearer.retryInMillis": Math.round(input.delayMillis)
    }
    // A permanent failure will not go away by itself: an Error, saying what to look at.
    return (
      input.permanent
        ? Effect.logError(
            `RenewableBearer: ${error.message} (permanent: check the source's credentials, client ` +
              "registration and scopes; retrying at the longest backoff)"
          )
        : Effect.logWarning(`RenewableBearer: ${error.message}`)
    ).pipe(Effect.annotateLogs(annotations))
  }

  /** An attempt a caller asked for waited `waitedMillis` for the storm guard. */
  paced(waitedMillis: number): Effect.Effect<void> {
    return Effect.logDebug("RenewableBearer: renewal requests paced by the storm guard").pipe(
      Effect.annotateLogs({ "bearer.name": this.name, "bearer.pacedMillis": Math.round(waitedMillis) })
    )
  }

  stopped(): Effect.Effect<void> {
    return Effect.logDebug("RenewableBearer: stopped")
  }

  private expiry(token: Token.Token | undefined, now: number): void {
    const expires = token === undefined ? 0 : expiresAtMillis(token)
    Metrics.tokenExpiryTimestamp.unsafeUpdate(expires === Infinity ? -1 : expires / 1000, this.labels)
    Metrics.tokenExpiresIn.unsafeUpdate(
      expires === Infinity ? -1 : token === undefined ? 0 : Math.max(0, (expires - now) / 1000),
      this.labels
    )
  }
}
