/**
 * The bearer's schedule as pure functions of their inputs, without a fiber or a clock: the refresh delay, the
 * usable window, the failure backoff, the storm guard and the latency estimate, with the default options.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as fc from "effect/FastCheck"
import { resolve } from "../src/internal/options.js"
import {
  Guard,
  LatencyWindow,
  refreshDelayMillis,
  retryDelayMillis,
  usableUntilMillis
} from "../src/internal/schedule.js"

const defaults = Effect.runSync(resolve(undefined))
const noJitter = Effect.runSync(resolve({ jitter: 0 }))
const HOUR = 3_600_000

const delay = (lifetime: number, latencyMillis = 0, unchanged = 0, unit = 0) =>
  refreshDelayMillis(noJitter, {
    now: 0,
    expiresAt: lifetime,
    usableUntil: usableUntilMillis(noJitter, lifetime, 0),
    latencyMillis,
    unchanged,
    unit
  })

describe("schedule", () => {
  it("a one-hour token is handed out until 10 s before it expires and refreshed at 90 % of its lifetime", () => {
    expect(usableUntilMillis(defaults, HOUR, 0)).toBe(HOUR - 10_000)
    expect(delay(HOUR)).toBe(0.9 * HOUR)
  })

  it("a 200 ms token keeps a 10 ms margin and is refreshed at 180 ms, or earlier by twice the source's latency", () => {
    expect(usableUntilMillis(noJitter, 200, 0)).toBe(190)
    expect(delay(200)).toBe(180)
    expect(delay(200, 20)).toBe(150)
    // Never before half of the 90 % point, however slow the source.
    expect(delay(200, 500)).toBe(90)
  })

  it("a token that never expires is refreshed only after the longest delay, ten years", () => {
    expect(delay(Infinity)).toBe(3_650 * 24 * HOUR)
  })

  it("the same token handed back waits at least the backoff: cut at its usable end once, not from the second time", () => {
    expect(delay(100_000, 0, 1)).toBe(90_000)
    expect(delay(1_000, 0, 1)).toBe(950)
    expect(delay(1_000, 0, 2)).toBe(1_500)
  })

  it("no refresh comes sooner than initialRetryTimeout / 20 (50 ms)", () => {
    expect(delay(20)).toBe(50)
  })

  it("jitter moves a refresh earlier, never later", () =>
    fc.assert(
      fc.property(
        fc.integer({ min: 1_000, max: 10 * HOUR }),
        fc.double({ min: 0, max: 0.999, noNaN: true }),
        (lifetime, unit) => {
          const input = {
            now: 0,
            expiresAt: lifetime,
            usableUntil: usableUntilMillis(defaults, lifetime, 0),
            latencyMillis: 0,
            unchanged: 0
          }
          const jittered = refreshDelayMillis(defaults, { ...input, unit })
          const planned = refreshDelayMillis(defaults, { ...input, unit: 0 })
          return jittered <= planned && jittered >= planned * (1 - defaults.jitter) - 1e-6
        }
      )
    ))

  it("the backoff after failures: 1 s, 1.5 s, 2.25 s, capped at 1 minute; permanent failures wait 1 minute", () => {
    const backoff = (failures: number, permanent = false, retryAfterMillis = 0) =>
      retryDelayMillis(noJitter, { failures, permanent, retryAfterMillis, unit: 0.5 })
    expect([1, 2, 3].map((n) => backoff(n))).toEqual([1_000, 1_500, 2_250])
    expect(backoff(30)).toBe(60_000)
    expect(backoff(1, true)).toBe(60_000)
  })

  it("a source's Retry-After lengthens the backoff, up to maxRetryTimeout", () => {
    const after = (retryAfterMillis: number) =>
      retryDelayMillis(noJitter, { failures: 1, permanent: false, retryAfterMillis, unit: 0.5 })
    expect(after(30_000)).toBe(30_000)
    expect(after(120_000)).toBe(60_000)
  })

  it("the storm guard lets 3 unplanned attempts through at once, then one per initialRetryTimeout", () => {
    const guard = new Guard(defaults)
    const starts: Array<number> = []
    for (let now = 0; starts.length < 6; now += 250) {
      while (guard.waitMillis(now) === 0) {
        guard.spend(now)
        starts.push(now)
      }
    }
    expect(starts).toEqual([0, 0, 0, 1_000, 2_000, 3_000])
  })

  it("the storm guard's pace backs off while freshly renewed tokens are rejected, and recovers after one in use", () => {
    const guard = new Guard(defaults)
    expect(guard.paceMillis()).toBe(1_000)
    expect(guard.rejected(0, 10)).toBe(1_500)
    expect(guard.rejected(100, 110)).toBe(2_250)
    expect(guard.rejected(0, 60_000)).toBe(1_000)
  })

  it("the latency estimate is the slowest of the last 8 calls, the first call counting only until a second", () => {
    const window = new LatencyWindow()
    expect(window.estimate()).toBe(0)
    window.record(900)
    expect(window.estimate()).toBe(900)
    window.record(20)
    expect(window.estimate()).toBe(20)
    window.record(60)
    for (let i = 0; i < 7; i++) window.record(10)
    expect(window.estimate()).toBe(60)
    window.record(10)
    expect(window.estimate()).toBe(10)
  })
})
