/**
 * Step 3 of the demo, the client, built exactly as the README teaches: an OAuth 2.0 client credentials
 * `TokenSource`, a `RenewableBearer` that keeps its token fresh, and the authorized `HttpClient` of
 * `BearerHttpClient`. The bearer's own metrics tell the rest of the demo what it did.
 */
import { FetchHttpClient } from "@effect/platform"
import { Duration, Effect, Layer, Metric, MetricState, Redacted } from "effect"
import {
  BearerHttpClient,
  OAuth2TokenSource,
  Receiver,
  RenewableBearer,
  type Token
} from "effect-renewable-bearer"
import type { Servers } from "./servers.js"

/**
 * Tokens here live seconds, not an hour. The bearer refreshes at half-life (instead of 0.9), so that, as with
 * an hour-long token, a good part of the lifetime is left to ride out a failing endpoint; the early-expiry
 * margin is half a second (client and server share one clock); and a hung token request is abandoned
 * after 1 s instead of 5 s. Backoff and jitter keep their defaults: 1 s, 1.5 s, 2.25 s, ... ± 20 %.
 */
export const bearerOptions = {
  name: "demo",
  lifetimeSafeFraction: 0.5,
  expiryMargin: "500 millis",
  refreshRequestTimeout: "1 second"
} satisfies RenewableBearer.Options

/**
 * The authorized `HttpClient` and its `RenewableBearer`, talking to the demo's servers. Every wait of a
 * request for its token is pushed to `waits`, so the summary can report it.
 */
export const makeClientLayer = (servers: Servers, waits: Array<number>) => {
  const BearerLive = RenewableBearer.layer(bearerOptions).pipe(
    Layer.provide(
      OAuth2TokenSource.layerClientCredentials({
        tokenUrl: servers.tokenUrl,
        clientId: servers.clientId,
        clientSecret: Redacted.make(servers.clientSecret)
      })
    )
  )
  return BearerHttpClient.layer().pipe(
    Layer.provide(
      Layer.effect(
        RenewableBearer.RenewableBearer,
        Effect.map(RenewableBearer.RenewableBearer, (bearer) => timed(bearer, waits))
      )
    ),
    Layer.provideMerge(BearerLive),
    Layer.provide(FetchHttpClient.layer)
  )
}

/** The same bearer, except that its receiver measures how long each fetch of a token took. */
const timed = (bearer: RenewableBearer.RenewableBearer["Type"], waits: Array<number>) =>
  RenewableBearer.RenewableBearer.of({
    ...bearer,
    receiver: Effect.map(bearer.receiver, (receiver) => {
      const time = <E>(fetch: Effect.Effect<Token.Token, E>) =>
        Effect.map(Effect.timed(fetch), ([took, token]) => {
          waits.push(Duration.toMillis(took))
          return token
        })
      return Receiver.Receiver.of({
        ...receiver,
        fetch: time(receiver.fetch),
        fetchWith: (o) => time(receiver.fetchWith(o))
      })
    })
  })

export interface BearerCounters {
  readonly attempts: number
  readonly attemptFailures: number
  readonly hits: number
  readonly staleServes: number
  readonly misses: number
}

/** Reads the library's own counters for the bearer named `demo`. */
export const readCounters: Effect.Effect<BearerCounters> = Effect.map(Metric.snapshot, (pairs) => {
  const counters = { attempts: 0, attemptFailures: 0, hits: 0, staleServes: 0, misses: 0 }
  for (const pair of pairs) {
    const tags = pair.metricKey.tags
    if (!tags.some((t) => t.key === "bearer" && t.value === bearerOptions.name)) continue
    if (!MetricState.isCounterState(pair.metricState)) continue
    const count = Number(pair.metricState.count)
    switch (pair.metricKey.name) {
      case "renewable_bearer_refresh_attempts_total":
        counters.attempts += count
        if (tags.some((t) => t.key === "result" && t.value === "failure")) counters.attemptFailures += count
        break
      case "renewable_bearer_cache_hits_total":
        counters.hits += count
        break
      case "renewable_bearer_cache_stale_serves_total":
        counters.staleServes += count
        break
      case "renewable_bearer_cache_misses_total":
        counters.misses += count
        break
    }
  }
  return counters
})
