/**
 * Model check: random sequences of events (fetches with random options, time advances, random source answers,
 * 401 retries, renewal requests, scope close) against a simple reference model of what the cache should hold.
 * After every step it checks the invariants of the fault matrix:
 *
 * - `current` is exactly what the model says: the last valid token a source call returned, unless it was
 *   invalidated, has passed its early-expiry instant, or the bearer is closed;
 * - every token a fetch returns is one the model accepted, and not expired when it is returned; a bad token
 *   is never returned nor cached;
 * - a fetch that finds a fresh token returns it at once; a fetch fails only with an error its options allow
 *   (`Timeout` exactly at its timeout, source errors only for `reportError`/`synchronous`, `StoppedError`
 *   only once closed);
 * - no waiter is left hanging: a waiter with a timeout is done by then, a `reportError` or `synchronous`
 *   waiter within one backoff and one attempt, every waiter once the source recovers or the scope closes;
 * - never more than one source call in flight, none after close;
 * - after a failed attempt the next one comes exactly one backoff later; after a success exactly at the refresh
 *   point the schedule's rule gives (90 % of the lifetime, inside the usable window with twice the slowest
 *   recent latency as lead, the backoff for a token handed back unchanged), unless a caller asked for a
 *   renewal, and then never later than that point;
 * - every attempt a caller asked for (a fetch that finds no fresh token, `renewRequired`, a synchronous
 *   renewal, an invalidation after a 401, `requestRenewal`) passes the storm guard: a burst of three, then
 *   one per pace, the pace backing off while freshly renewed tokens are rejected;
 * - every token a fetch returns is handed out before its early-expiry instant;
 * - `invalidate` acts exactly when the model says, and the attempt metrics agree with the model's count.
 */
import { describe, it } from "@effect/vitest"
import {
  Cause,
  Clock,
  Context,
  DateTime,
  Effect,
  Exit,
  Fiber,
  Layer,
  Logger,
  LogLevel,
  Metric,
  MetricLabel,
  Option,
  Redacted,
  Scope,
  TestClock
} from "effect"
import * as fc from "effect/FastCheck"
import {
  type Errors,
  type FetchOptions,
  Metrics,
  RenewableBearer,
  Token,
  TokenSource
} from "effect-renewable-bearer"
import * as ModelSource from "./utils/modelSource.js"

const INITIAL = 1000
const MAX = 60_000
const FRACTION = 0.9
const MARGIN = 10_000
const REFRESH_TIMEOUT = 5000

const backoff = (failures: number, permanent: boolean) =>
  permanent ? MAX : failures <= 1 ? INITIAL : Math.min(INITIAL * Math.pow(1.5, failures - 1), MAX)

/** The schedule's rule, written out again: the delay from a token's arrival to its refresh (no jitter). */
const refreshDelay = (
  token: ModelToken,
  receivedAt: number,
  usable: number,
  lead: number,
  unchanged: number
) => {
  if (token.expiresAt === Infinity) return 3650 * 86_400_000
  const planned = (token.expiresAt - receivedAt) * FRACTION
  let delay = planned
  if (unchanged > 0) delay = Math.max(delay, backoff(unchanged, false))
  if (unchanged < 2) delay = Math.min(delay, Math.max(usable - receivedAt - 2 * lead, planned / 2))
  return Math.max(delay, INITIAL / 20)
}

type Event =
  | { readonly _tag: "Advance"; readonly millis: number }
  | { readonly _tag: "Fetch"; readonly options: FetchOptions.FetchOptions }
  | { readonly _tag: "Retry401"; readonly pick: number }
  | { readonly _tag: "RequestRenewal"; readonly invalidate: boolean }
  | { readonly _tag: "Close" }

const stepArb: fc.Arbitrary<ModelSource.Step> = fc.record({
  kind: fc.constantFrom<ModelSource.Kind>(
    "good",
    "good",
    "good",
    "forever",
    "same",
    "same",
    "expired",
    "zero",
    "nan",
    "far",
    "empty",
    "fail",
    "fail",
    "permanent",
    "die",
    "hang"
  ),
  // No delay equals a timeout (5 s, or a synchronous 0.5 / 2.5 / 8 s), so an answer never ties with one.
  delay: fc.constantFrom(0, 0, 0, 50, 700, 2200, 6100),
  lifetime: fc.constantFrom(500, 3000, 20_000, 120_000, 3_600_000)
})

const fetchOptionsArb: fc.Arbitrary<FetchOptions.FetchOptions> = fc.record(
  {
    timeout: fc.constantFrom(100, 1000, 7000),
    renewRequired: fc.boolean(),
    synchronous: fc.boolean(),
    reportError: fc.boolean(),
    renewRequestTimeout: fc.constantFrom(500, 2500, 8000)
  },
  { requiredKeys: [] }
)

const eventArb: fc.Arbitrary<Event> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc
      .constantFrom(1, 50, 500, 999, 1000, 1500, 2500, 5000, 6100, 30_000, 60_000)
      .map((millis): Event => ({ _tag: "Advance", millis }))
  },
  // Long jumps: past a token's lifetime, through a long failure streak to the capped backoff.
  {
    weight: 1,
    arbitrary: fc.constantFrom(600_000, 3_600_000).map((millis): Event => ({ _tag: "Advance", millis }))
  },
  { weight: 8, arbitrary: fetchOptionsArb.map((options): Event => ({ _tag: "Fetch", options })) },
  { weight: 2, arbitrary: fc.nat(20).map((pick): Event => ({ _tag: "Retry401", pick })) },
  { weight: 2, arbitrary: fc.boolean().map((invalidate): Event => ({ _tag: "RequestRenewal", invalidate })) },
  { weight: 1, arbitrary: fc.constant<Event>({ _tag: "Close" }) }
)

interface ModelToken {
  readonly value: string
  readonly expiresAt: number
}

interface Waiter {
  readonly id: number
  readonly options: FetchOptions.FetchOptions
  readonly start: number
  readonly fiber: Fiber.RuntimeFiber<{
    readonly exit: Exit.Exit<ModelToken, Errors.FetchError>
    readonly at: number
  }>
  done: boolean
}

/** Lets every fiber that can run do so, without moving the clock. */
const settle = Effect.repeatN(Effect.yieldNow(), 50)

const isValid = (token: ModelToken, now: number) =>
  token.value.length > 0 &&
  !Number.isNaN(token.expiresAt) &&
  (token.expiresAt === Infinity || Math.abs(token.expiresAt) <= 8.64e15) &&
  now < token.expiresAt

const toModel = (token: Token.Token): ModelToken => ({
  value: Redacted.value(token.value),
  expiresAt: Option.match(token.expiresAt, { onNone: () => Infinity, onSome: DateTime.toEpochMillis })
})

const key = (token: ModelToken) => `${token.value}|${token.expiresAt}`

let runs = 0

const runScenario = (steps: ReadonlyArray<ModelSource.Step>, events: ReadonlyArray<Event>) =>
  Effect.gen(function* () {
    const name = `model-${++runs}`
    const model = yield* ModelSource.make(steps)
    const scope = yield* Scope.make()
    const context = yield* Layer.build(
      RenewableBearer.layer({ jitter: 0, name }).pipe(
        Layer.provide(Layer.succeed(TokenSource.TokenSource, model.source))
      )
    ).pipe(Scope.extend(scope))
    const bearer = Context.get(context, RenewableBearer.RenewableBearer)

    // The reference model.
    let cached: { token: ModelToken; receivedAt: number } | undefined
    let invalidated = false
    let closedAt: number | undefined
    let processed = 0
    let failures = 0
    let successes = 0
    let failedAttempts = 0
    const accepted = new Set<string>()
    const triggers: Array<number> = []
    const served: Array<ModelToken> = []
    // What the schedule and the storm guard depend on.
    const latencies: Array<number> = []
    let unchanged = 0
    let guardNext = -Infinity
    let rejections = 0
    // The pace from each instant on (invalidations change it; a spend uses the pace of its instant).
    const paces: Array<{ readonly at: number; readonly millis: number }> = [
      { at: -Infinity, millis: INITIAL }
    ]
    const paceAt = (at: number) => {
      let millis = INITIAL
      for (const pace of paces) if (pace.at <= at) millis = pace.millis
      return millis
    }
    const receivedAtOf = new Map<string, number>()
    const waiters: Array<Waiter> = []
    const log: Array<string> = []

    const usableUntil = (entry: { token: ModelToken; receivedAt: number }) =>
      entry.token.expiresAt === Infinity
        ? Infinity
        : entry.token.expiresAt -
          Math.min(MARGIN, ((entry.token.expiresAt - entry.receivedAt) * (1 - FRACTION)) / 2)

    const expectedCurrent = (now: number): Option.Option<ModelToken> =>
      closedAt === undefined && cached !== undefined && !invalidated && now < usableUntil(cached)
        ? Option.some(cached.token)
        : Option.none()

    const fail = (message: string): never => {
      throw new Error(`${message}\n  at ${log.length} steps:\n    ${log.slice(-12).join("\n    ")}`)
    }
    const check = (condition: boolean, message: string) => {
      if (!condition) fail(message)
    }

    /** An attempt a caller asked for: the storm guard must have had a credit for it. */
    const spend = (at: number) => {
      check(
        at >= guardNext - 2 * INITIAL - 1e-6,
        `an attempt at ${at} that a caller asked for passed the storm guard (next credit at ${guardNext - 2 * INITIAL})`
      )
      guardNext = Math.max(guardNext, at) + paceAt(at)
    }

    /** Folds the calls that ended since the last step into the model, and checks the schedule. */
    // What each ended call expects of the next one: the refresh point after a success, one backoff after a
    // failure, an immediate restart after an abandonment.
    type After =
      | { readonly kind: "success"; readonly end: number; readonly refreshAt: number }
      | { readonly kind: "failure"; readonly end: number; readonly at: number }
      | { readonly kind: "abandoned"; readonly end: number }
      | { readonly kind: "closed" }
    const after: Array<After> = []
    let startsChecked = 0

    const processCalls = (now: number) => {
      const calls = model.calls
      for (; processed < calls.length && calls[processed].end !== undefined; processed++) {
        const call = calls[processed]
        const end = call.end!
        let failed: { permanent: boolean } | undefined
        if (call.outcome === "token") {
          const token = { value: call.value!, expiresAt: call.expiresAt! }
          if (isValid(token, end)) {
            unchanged = cached !== undefined && key(cached.token) === key(token) ? unchanged + 1 : 0
            cached = { token, receivedAt: end }
            invalidated = false
            accepted.add(key(token))
            receivedAtOf.set(key(token), end)
            failures = 0
            successes += 1
            latencies.push(end - call.start)
            // The first call's latency counts only until there is a second.
            const lead = latencies.length === 1 ? latencies[0] : Math.max(...latencies.slice(1).slice(-8))
            const refreshAt = end + refreshDelay(token, end, usableUntil(cached), lead, unchanged)
            after[call.index] = { kind: "success", end, refreshAt }
          } else failed = { permanent: false }
        } else if (call.outcome === "interrupted") {
          if (call.phase === "advance") {
            const took = end - call.start
            check(
              [REFRESH_TIMEOUT, 500, 2500, 8000].includes(took),
              `call ${call.index} timed out after ${took} ms`
            )
            failed = { permanent: false }
          } else if (call.phase === "fetch") {
            // A synchronous request abandoned it and starts its own at once.
            after[call.index] = { kind: "abandoned", end }
          } else {
            check(call.phase === "close", `call ${call.index} interrupted during ${call.phase}`)
            after[call.index] = { kind: "closed" }
          }
        } else failed = { permanent: call.outcome === "permanent" }

        if (failed !== undefined) {
          failures += 1
          failedAttempts += 1
          after[call.index] = { kind: "failure", end, at: end + backoff(failures, failed.permanent) }
        }
      }

      // Every call that started: was it the one the previous call's outcome calls for?
      for (; startsChecked < calls.length; startsChecked++) {
        const call = calls[startsChecked]
        if (call.index === 0) {
          spend(call.start)
          continue
        }
        const before = after[call.index - 1]
        check(before !== undefined, `call ${call.index} started while call ${call.index - 1} was in flight`)
        switch (before.kind) {
          case "failure":
            check(
              Math.abs(call.start - before.at) < 1e-6,
              `after the failure at ${before.end} the next call is at ${call.start}, not ${before.at}`
            )
            break
          case "abandoned":
            check(call.start === before.end, `call ${call.index - 1} abandoned without a new attempt at once`)
            spend(call.start)
            break
          case "success": {
            const asked = triggers.some((at) => before.end <= at && at <= call.start)
            const scheduled = Math.abs(call.start - before.refreshAt) < 1e-6
            check(
              scheduled || (asked && call.start < before.refreshAt),
              `call at ${call.start} after a success at ${before.end}: the refresh point is ${before.refreshAt}` +
                (asked ? "" : ", and no caller asked")
            )
            if (!scheduled) spend(call.start)
            break
          }
          case "closed":
            fail(`call ${call.index} started after the bearer closed`)
        }
      }

      // The last call ended and no other started: the loop must not have missed its instant.
      const last = calls.at(-1)
      if (last !== undefined && last.end !== undefined && closedAt === undefined) {
        const expected = after[last.index]
        if (expected?.kind === "success")
          check(now < expected.refreshAt, `the refresh at ${expected.refreshAt} did not start (now ${now})`)
        if (expected?.kind === "failure")
          check(now < expected.at, `the loop stopped after the failure at ${expected.end}`)
      }
      if (closedAt !== undefined) {
        const late = model.calls.filter((call) => call.start > closedAt!)
        check(late.length === 0, `a source call started after close`)
      }
    }

    const checkWaiters = (now: number) =>
      Effect.gen(function* () {
        for (const waiter of waiters) {
          if (waiter.done) continue
          const poll = yield* Fiber.poll(waiter.fiber)
          if (Option.isNone(poll)) {
            const timeout = waiter.options.timeout as number | undefined
            check(
              timeout === undefined || now < waiter.start + timeout,
              `waiter ${waiter.id} outlived its timeout`
            )
            const bounded = waiter.options.synchronous === true || waiter.options.reportError === true
            check(
              !bounded || closedAt !== undefined || now - waiter.start <= MAX + REFRESH_TIMEOUT + 8000,
              `waiter ${waiter.id} hangs`
            )
            continue
          }
          waiter.done = true
          const { at, exit } = yield* Effect.orDie(poll.value)
          if (Exit.isSuccess(exit)) {
            const token = exit.value
            check(accepted.has(key(token)), `waiter ${waiter.id} got a token the model never accepted`)
            check(at < token.expiresAt, `waiter ${waiter.id} got an expired token at ${at}`)
            const receivedAt = receivedAtOf.get(key(token))!
            check(
              at < usableUntil({ token, receivedAt }),
              `waiter ${waiter.id} got a token inside its early-expiry margin at ${at}`
            )
            check(closedAt === undefined || at <= closedAt, `waiter ${waiter.id} got a token after close`)
            served.push(token)
            continue
          }
          const failure = Cause.failureOption(exit.cause)
          if (Option.isNone(failure)) return fail(`waiter ${waiter.id} died or was interrupted`)
          const error = failure.value
          const reason = error._tag === "RenewalError" ? error.reason : error._tag
          switch (reason) {
            case "StoppedError":
              check(closedAt !== undefined, `waiter ${waiter.id} stopped before close`)
              break
            case "Timeout":
              check(
                at - waiter.start === waiter.options.timeout,
                `waiter ${waiter.id} timed out after ${at - waiter.start}`
              )
              break
            case "SourceError":
            case "SourceTimeout":
            case "SourceDefect":
            case "InvalidToken":
              check(
                waiter.options.reportError === true || waiter.options.synchronous === true,
                `waiter ${waiter.id} saw ${reason} without reportError or synchronous`
              )
              break
            default:
              fail(`waiter ${waiter.id} failed with ${reason}`)
          }
        }
      })

    const checkAll = Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      processCalls(now)
      check(model.maxInFlight() <= 1, `${model.maxInFlight()} source calls in flight`)
      if (closedAt !== undefined) check(model.inFlight() === 0, `a source call in flight after close`)
      const current = Option.map(yield* bearer.current, toModel)
      const expected = expectedCurrent(now)
      check(
        JSON.stringify(current) === JSON.stringify(expected),
        `current is ${JSON.stringify(current)}, the model says ${JSON.stringify(expected)} at ${now}`
      )
      if (Option.isNone(current)) check(yield* bearer.isRenewalRequired, `no token, yet no renewal required`)
      yield* checkWaiters(now)
    })

    let ids = 0
    const fork = (options: FetchOptions.FetchOptions) =>
      Effect.gen(function* () {
        const start = yield* Clock.currentTimeMillis
        const fiber = yield* Effect.fork(
          Effect.flatMap(Effect.exit(Effect.map(bearer.fetch(options), toModel)), (exit) =>
            Effect.map(Clock.currentTimeMillis, (at) => ({ exit, at }))
          )
        )
        const waiter: Waiter = { id: ids++, options, start, fiber, done: false }
        waiters.push(waiter)
        return waiter
      })

    for (const event of events) {
      const now = yield* Clock.currentTimeMillis
      log.push(`${now}: ${JSON.stringify(event)}`)
      switch (event._tag) {
        case "Advance":
          model.setPhase("advance")
          yield* TestClock.adjust(event.millis)
          yield* settle
          break
        case "Fetch": {
          model.setPhase("fetch")
          const fresh = expectedCurrent(now)
          if (Option.isNone(fresh) || event.options.renewRequired === true) triggers.push(now)
          const waiter = yield* fork(event.options)
          yield* settle
          if (Option.isSome(fresh) && event.options.renewRequired !== true) {
            // The hot path: a fresh token is returned at once.
            const poll = yield* Fiber.poll(waiter.fiber)
            check(Option.isSome(poll), `a fetch with a fresh token waited`)
            const result = yield* Effect.orDie(Option.getOrThrow(poll))
            check(
              Exit.isSuccess(result.exit) && key(result.exit.value) === key(fresh.value),
              `a fetch with a fresh token did not get it`
            )
          }
          break
        }
        case "Retry401": {
          model.setPhase("other")
          if (served.length === 0) break
          const token = served[event.pick % served.length]
          const expected =
            closedAt === undefined && cached !== undefined && !invalidated && key(cached.token) === key(token)
          const acted = yield* bearer.invalidate(
            // The same token as the one served: value and expiration.
            Token.make(token.value, { expiresAt: token.expiresAt === Infinity ? undefined : token.expiresAt })
          )
          check(acted === expected, `invalidate acted: ${acted}, the model says ${expected}`)
          if (acted) {
            invalidated = true
            triggers.push(now)
            rejections = now - cached!.receivedAt < paceAt(now) ? rejections + 1 : 0
            paces.push({ at: now, millis: backoff(rejections + 1, false) })
          }
          yield* settle
          break
        }
        case "RequestRenewal":
          model.setPhase("other")
          if (closedAt === undefined) triggers.push(now)
          if (event.invalidate && closedAt === undefined && cached !== undefined) invalidated = true
          yield* bearer.requestRenewal({ invalidate: event.invalidate })
          yield* settle
          break
        case "Close":
          model.setPhase("close")
          if (closedAt === undefined) closedAt = now
          yield* Scope.close(scope, Exit.void)
          yield* settle
          break
      }
      yield* checkAll
    }

    // The source recovers: every waiter must be answered, and the bearer must hold a token.
    if (closedAt === undefined) {
      model.recover()
      // The bearer is lazy: a last fetch starts it if no event did.
      model.setPhase("fetch")
      triggers.push(yield* Clock.currentTimeMillis)
      yield* fork({})
      yield* settle
      model.setPhase("advance")
      // At most a hung attempt (8 s), the longest backoff (60 s), then the recovered answer.
      yield* TestClock.adjust(MAX + 10_000)
      yield* settle
      yield* checkAll
      for (const waiter of waiters)
        check(waiter.done, `waiter ${waiter.id} still waits after the source recovered`)
      const now = yield* Clock.currentTimeMillis
      check(Option.isSome(expectedCurrent(now)), `no token after the source recovered`)
    }
    model.setPhase("close")
    if (closedAt === undefined) closedAt = yield* Clock.currentTimeMillis
    yield* Scope.close(scope, Exit.void)
    yield* settle
    yield* checkAll
    for (const waiter of waiters) check(waiter.done, `waiter ${waiter.id} still waits after close`)
    const callsAtClose = model.calls.length
    yield* TestClock.adjust("1 day")
    check(model.calls.length === callsAtClose, `the source was called after close`)

    // The attempt metrics agree with the model.
    const count = (result: string) =>
      Effect.gen(function* () {
        let total = 0
        for (const reason of [
          "renewed",
          "unchanged",
          "SourceError",
          "SourceTimeout",
          "SourceDefect",
          "InvalidToken"
        ]) {
          const state = yield* Metric.value(
            Metrics.refreshAttempts.pipe(
              Metric.taggedWithLabels([
                MetricLabel.make("bearer", name),
                MetricLabel.make("result", result),
                MetricLabel.make("reason", reason)
              ])
            )
          )
          total += state.count
        }
        return total
      })
    check(
      (yield* count("success")) === successes,
      `success metric ${yield* count("success")} vs model ${successes}`
    )
    check(
      (yield* count("failure")) === failedAttempts,
      `failure metric ${yield* count("failure")} vs model ${failedAttempts}`
    )
  })

describe("model check", () => {
  it.effect.prop(
    "random events never break the invariants",
    {
      steps: fc.array(stepArb, { minLength: 1, maxLength: 25 }),
      events: fc.array(eventArb, { minLength: 1, maxLength: 40 })
    },
    ({ events, steps }) => runScenario(steps, events).pipe(Logger.withMinimumLogLevel(LogLevel.None)),
    // Fixed seed: the same 100 scenarios on every run (about 15 s, most of it in TestClock.adjust).
    { timeout: 180_000, fastCheck: { numRuns: 100, seed: 20240606 } }
  )
})
