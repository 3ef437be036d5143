/**
 * Named bearers: bearers declared with `RenewableBearer.Tag`, each with its own source and options, living
 * side by side in one context.
 */
import { FetchHttpClient, HttpClient } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Metric, MetricLabel, Option, TestClock } from "effect"
import {
  BearerHttpClient,
  Metrics,
  Receiver,
  RenewableBearer,
  TestTokenSource,
  Token,
  TokenSource
} from "effect-renewable-bearer"
import { settle, value } from "./utils/bearer.js"
import { loopbackServer } from "../support/loopback.js"

const t = TestTokenSource.token
const SECOND = 1_000

class BillingBearer extends RenewableBearer.Tag("test/BillingBearer")<BillingBearer>() {}
class SearchBearer extends RenewableBearer.Tag("test/SearchBearer")<SearchBearer>() {}

/** Two named bearers on two scripted sources: billing tokens live 1 minute, search tokens 10 minutes. */
const TwoBearers = Layer.mergeAll(
  TestTokenSource.layerFor(BillingBearer, [t("billing", { expiresIn: "1 minute" })], {
    jitter: 0,
    eager: true
  }),
  TestTokenSource.layerFor(SearchBearer, [t("search", { expiresIn: "10 minutes" })], {
    jitter: 0,
    eager: true
  })
)

describe("named bearers", () => {
  it.effect("two named bearers with different sources and lifetimes renew on their own schedules", () =>
    Effect.gen(function* () {
      const billing = yield* BillingBearer
      const search = yield* SearchBearer
      const billingSource = yield* TestTokenSource.forBearer(BillingBearer)
      const searchSource = yield* TestTokenSource.forBearer(SearchBearer)
      yield* settle
      expect(value(yield* billing.fetch())).toBe("billing")
      expect(value(yield* search.fetch())).toBe("search")
      // Billing refreshes at 0.9 of its 1-minute lifetime (every 54 s), search at 0.9 of 10 minutes (540 s).
      for (let i = 0; i < 20; i++) yield* TestClock.adjust("54 seconds")
      yield* settle
      expect(yield* billingSource.callTimes).toEqual(Array.from({ length: 21 }, (_, i) => i * 54 * SECOND))
      expect(yield* searchSource.callTimes).toEqual([0, 540 * SECOND, 1_080 * SECOND])
    }).pipe(Effect.provide(TwoBearers))
  )

  it.effect("each named bearer records metrics under its own name, the tag's key by default", () =>
    Effect.gen(function* () {
      // Tags of this test only: metrics are global, and the other tests fetch from their own bearers.
      class MeteredBearer extends RenewableBearer.Tag("test/MeteredBearer")<MeteredBearer>() {}
      class RenamedBearer extends RenewableBearer.Tag("test/RenamedBearer")<RenamedBearer>() {}
      const layer = Layer.mergeAll(
        TestTokenSource.layerFor(MeteredBearer, [t("b", { expiresIn: "1 hour" })], { eager: true }),
        TestTokenSource.layerFor(RenamedBearer, [t("s", { expiresIn: "1 hour" })], {
          eager: true,
          name: "renamed-metered-bearer"
        })
      )
      const hits = (bearer: string) =>
        Metric.value(Metric.taggedWithLabels(Metrics.cacheHits, [MetricLabel.make("bearer", bearer)]))
      yield* Effect.gen(function* () {
        yield* settle
        yield* (yield* MeteredBearer).fetch()
        yield* (yield* MeteredBearer).fetch()
        yield* (yield* RenamedBearer).fetch()
      }).pipe(Effect.provide(layer))
      expect((yield* hits("test/MeteredBearer")).count).toBe(2)
      expect((yield* hits("renamed-metered-bearer")).count).toBe(1)
      expect((yield* hits("test/RenamedBearer")).count).toBe(0)
    })
  )

  it.effect("a named bearer takes its source as a service, an effect, or the TokenSource in context", () =>
    Effect.gen(function* () {
      class Direct extends RenewableBearer.Tag("test/Direct")<Direct>() {}
      class FromEffect extends RenewableBearer.Tag("test/FromEffect")<FromEffect>() {}
      class FromContext extends RenewableBearer.Tag("test/FromContext")<FromContext>() {}
      const layer = Layer.mergeAll(
        RenewableBearer.layerFor(Direct, { source: TokenSource.fromToken(Token.make("direct")) }),
        RenewableBearer.layerFor(FromEffect, {
          source: TokenSource.fromEffect(Effect.succeed(Token.make("effect")))
        }),
        RenewableBearer.layerFor(FromContext).pipe(
          Layer.provide(TokenSource.layerToken(Token.make("context")))
        )
      )
      const values = yield* Effect.gen(function* () {
        return [
          value(yield* (yield* Direct).fetch()),
          value(yield* (yield* FromEffect).fetch()),
          value(yield* (yield* FromContext).fetch())
        ]
      }).pipe(Effect.provide(layer))
      expect(values).toEqual(["direct", "effect", "context"])
    })
  )

  it.effect("a named bearer with options out of range fails to build with InvalidOptionsError", () =>
    Effect.gen(function* () {
      const exit = yield* Layer.build(
        RenewableBearer.layerFor(BillingBearer, {
          source: TokenSource.fromToken(Token.make("x")),
          lifetimeSafeFraction: 2
        })
      ).pipe(Effect.scoped, Effect.flip)
      expect(exit._tag).toBe("InvalidOptionsError")
    })
  )

  it.effect("Receiver.provideFreshFrom gives an effect a fresh receiver of the named bearer", () =>
    Effect.gen(function* () {
      const [billing, search] = yield* Effect.all([
        Receiver.fetch.pipe(Effect.zip(Receiver.trials), Receiver.provideFreshFrom(BillingBearer)),
        Receiver.fetch.pipe(Effect.zip(Receiver.trials), Receiver.provideFreshFrom(SearchBearer))
      ])
      expect([value(billing[0]), billing[1]]).toEqual(["billing", 1])
      expect([value(search[0]), search[1]]).toEqual(["search", 1])
      expect(Option.map(yield* (yield* BillingBearer).current, value)).toEqual(Option.some("billing"))
    }).pipe(Effect.provide(TwoBearers))
  )

  it.scopedLive("BearerHttpClient.layerFor and authorizeFrom send each API its own bearer's token", () =>
    Effect.gen(function* () {
      const api = yield* loopbackServer((request) => ({
        status: 200,
        body: { authorization: request.headers["authorization"] ?? null }
      }))
      const bearers = Layer.mergeAll(
        RenewableBearer.layerFor(BillingBearer, {
          source: TokenSource.fromToken(Token.make("billing-token"))
        }),
        RenewableBearer.layerFor(SearchBearer, { source: TokenSource.fromToken(Token.make("search-token")) })
      )
      const [viaLayer, viaAuthorize] = yield* Effect.gen(function* () {
        const billingClient = yield* HttpClient.HttpClient.pipe(
          Effect.provide(BearerHttpClient.layerFor(BillingBearer).pipe(Layer.provide(FetchHttpClient.layer)))
        )
        const searchClient = yield* BearerHttpClient.authorizeFrom(SearchBearer, yield* HttpClient.HttpClient)
        const a = yield* Effect.flatMap(billingClient.get(`${api.url}/billing`), (r) => r.json)
        const b = yield* Effect.flatMap(searchClient.get(`${api.url}/search`), (r) => r.json)
        return [a, b] as const
      }).pipe(Effect.provide(Layer.merge(bearers, FetchHttpClient.layer)))
      expect(viaLayer).toEqual({ authorization: "Bearer billing-token" })
      expect(viaAuthorize).toEqual({ authorization: "Bearer search-token" })
    })
  )
})
