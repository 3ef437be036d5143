import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Tracer from "effect/Tracer"
import type { FetchError } from "../Errors.js"
import type { FetchOptions } from "../FetchOptions.js"
import type { Options, Service } from "../RenewableBearer.js"
import type * as Token from "../Token.js"
import { Alarms } from "./alarms.js"
import { BearerMachine } from "./bearerMachine.js"
import type { Shared } from "./bearerPhase.js"
import { BearerReport } from "./bearerReport.js"
import * as CacheState from "./cacheState.js"
import { type InvalidOptionsError, RenewalError } from "./errors.js"
import { decodeMillis, resolve, type ResolvedOptions } from "./options.js"
import * as receiver from "./receiver.js"
import { TokenSource, TokenStore } from "./tags.js"
import * as tokenStore from "./tokenStore.js"
import * as Waiters from "./waiters.js"

/** A `Shared` for the current context; its alarms are cleared when the scope closes. @internal */
export const makeShared: Effect.Effect<Shared, never, Scope.Scope> = Effect.gen(function* () {
  const runtime = yield* Effect.runtime<never>()
  const clock = yield* Effect.clock
  const alarms = new Alarms(runtime, clock)
  yield* Effect.addFinalizer(() => alarms.clear)
  return { runtime, clock, alarms }
})

/** @internal */
export const make = (
  options?: Options
): Effect.Effect<Service, InvalidOptionsError, TokenSource | Scope.Scope> =>
  Effect.gen(function* () {
    const opts = yield* resolve(options)
    const shared = yield* makeShared
    return yield* makeFrom(opts, yield* TokenSource, shared)
  })

/**
 * A bearer of resolved options and a source, on shared parts; stopped when the scope closes. With a shared
 * `TokenStore` in the context, the source adopts tokens other processes renewed and takes the store's refresh
 * lock before it calls the real source (see `TokenStore.withStore`).
 *
 * @internal
 */
export const makeFrom = (
  opts: ResolvedOptions,
  source: TokenSource["Type"],
  shared: Shared
): Effect.Effect<BearerService, never, Scope.Scope> =>
  Effect.gen(function* () {
    const store = yield* Effect.serviceOption(TokenStore)
    const stored = Option.isNone(store) ? source : yield* tokenStore.withStore(source, store.value, opts)
    const machine = new BearerMachine(opts, stored, shared, new BearerReport(opts.name))
    const service = new BearerService(machine)
    // The shutdown runs on the bearer's runtime, as its attempts do, so it logs with the build's context. A plain
    // scope finalizer, not `Effect.addFinalizer`: that one keeps a copy of the building fiber's references per
    // bearer (a map and its arrays, about half a kilobyte per key of a keyed bearer).
    const stop = Effect.suspend(() => Fiber.join(machine.fork(machine.shutdown)))
    yield* Scope.addFinalizer(yield* Effect.scope, stop)
    if (opts.eager) machine.start()
    return service
  })

const invalidFetchOptions = (detail: string) =>
  Effect.fail(new RenewalError({ reason: "InvalidOptions", detail }))

/**
 * A bearer as its callers see it: the service's members and the fetch path, on top of its state machine. The
 * machine and the rest are private fields (`#`), so inspecting the service shows no token.
 */
export class BearerService implements Service {
  readonly #machine: BearerMachine
  readonly #fetchCached: Effect.Effect<Token.Token, FetchError>
  #lastOptions: FetchOptions | undefined
  #lastOptionsFetch: Effect.Effect<Token.Token, FetchError>

  // The callable members are assigned in the constructor rather than declared as arrow-function fields: V8
  // names a field's function at run time, which gives each closure a property array of its own (about 1 KB
  // per bearer for three of them, a fifth of an idle keyed bearer).

  /** `fetch(options)`: one constant effect without options; the last options object a caller used keeps its own. */
  readonly fetch: Service["fetch"]
  readonly invalidate: Service["invalidate"]
  readonly requestRenewal: Service["requestRenewal"]
  /** The error of every timed-out wait: one function per bearer, so its timed waits are built once. */
  readonly #timeoutError: () => RenewalError

  constructor(machine: BearerMachine) {
    this.#machine = machine
    this.#fetchCached = this.#memoizedFetch(undefined)
    this.#lastOptionsFetch = this.#fetchCached
    this.fetch = (options) => {
      if (options === undefined) return this.#fetchCached
      if (options !== this.#lastOptions) {
        this.#lastOptions = options
        this.#lastOptionsFetch = this.#memoizedFetch(options)
      }
      return this.#lastOptionsFetch
    }
    this.invalidate = (token) => machine.invalidate(token)
    this.requestRenewal = (options) => machine.requestRenewal(options?.invalidate === true)
    this.#timeoutError = () => machine.timeoutError()
  }

  // The members are own properties, not getters on the prototype, so a wrapper that spreads the service
  // (`RenewableBearer.of({ ...bearer, fetch: timed })`) keeps every one of them.
  readonly receiver: Service["receiver"] = Effect.suspend(() =>
    receiver.make({
      fetch: this.fetch,
      invalidate: this.invalidate,
      maxRetries: this.#machine.opts.maxRetries
    })
  )

  readonly isRenewalRequired: Service["isRenewalRequired"] = Effect.clockWith((clock) =>
    Effect.map(
      this.#machine.cache.ref.get,
      (state) => this.#machine.asked || !(clock.unsafeCurrentTimeMillis() < state.usableUntil)
    )
  )

  readonly current: Service["current"] = Effect.clockWith((clock) =>
    Effect.map(this.#machine.cache.ref.get, (state) =>
      state._tag === "Fresh" && clock.unsafeCurrentTimeMillis() < state.usableUntil
        ? Option.some(state.token)
        : Option.none()
    )
  )

  readonly changes: Service["changes"] = Stream.suspend(() =>
    Stream.unwrap(
      Effect.map(this.#machine.cache.subscribe(), (subscription) =>
        subscription.changes.pipe(
          Stream.takeWhile((state) => state._tag !== "Stopped"),
          Stream.filterMap((state) => Option.fromNullable(state.token)),
          Stream.changesWith((a, b) => a === b)
        )
      )
    )
  )

  /**
   * The hot path: one Ref read, one clock read, one comparison, a counter, and a prebuilt effect. It is a
   * constant chain that allocates nothing: the step after the Ref read is built once per cached state (so
   * once per token) and remembered; it reads the caller's `Clock` from its fiber as `Effect.clockWith` does,
   * after the Ref, so the comparison is always against the current instant. Each fetch effect remembers its
   * own step, so one built for an options object stays right however the options of later calls change.
   */
  #memoizedFetch(options: FetchOptions | undefined): Effect.Effect<Token.Token, FetchError> {
    let checkedState: CacheState.CacheState | undefined
    let check: Effect.Effect<Token.Token, FetchError> = CacheState.failStopped
    return Effect.flatMap(this.#machine.cache.ref.get, (state) => {
      if (state !== checkedState) {
        checkedState = state
        check = Effect.withFiberRuntime((fiber) => this.#decide(fiber, state, options))
      }
      return check
    })
  }

  /**
   * What a fetch does once it has read the cache, in the caller's fiber: hand out a usable token (a hit, or
   * past the refresh point a stale serve), or register as a waiter. Everything is decided in this one step,
   * so a herd of waiters costs little each and the source call starts soon after them.
   *
   * A waiting fetch gets a `RenewableBearer.wait` span as a child of its caller's span; a fetch outside any
   * span records none (a root span per waiter would be noise, and would dominate a cold herd's cost).
   */
  #decide(
    fiber: Fiber.RuntimeFiber<unknown, unknown>,
    state: CacheState.CacheState,
    options: FetchOptions | undefined
  ): Effect.Effect<Token.Token, FetchError> {
    const machine = this.#machine
    const now = Context.get(fiber.currentDefaultServices, Clock.Clock).unsafeCurrentTimeMillis()
    if (options?.renewRequired !== true) {
      const served = this.#serve(state, now)
      if (served !== undefined) return served
    }
    if (machine.isStopped) return CacheState.failStopped
    let timeoutMillis: number | undefined
    if (options?.timeout !== undefined) {
      const millis = decodeMillis(options.timeout)
      if (Either.isLeft(millis)) return invalidFetchOptions(`timeout: ${millis.left}`)
      timeoutMillis = millis.right
    }
    machine.report.miss()
    const mode =
      options?.synchronous === true
        ? "synchronous"
        : options?.reportError === true
          ? "reportError"
          : "asynchronous"
    let waiters: Pick<Waiters.Waiters<Token.Token, FetchError>, "await" | "awaitFor">
    if (mode === "synchronous") {
      const sync = this.#synchronous(options!)
      if (Effect.isEffect(sync)) return sync
      waiters = sync
    } else {
      waiters = mode === "reportError" ? machine.nextAttempt() : machine.nextToken()
      machine.ask()
    }
    // A timed wait is built once per waiters, timeout and `onTimeout` function, so the function is one.
    const wait =
      timeoutMillis === undefined
        ? waiters.await
        : waiters.awaitFor(machine.deadlines(), timeoutMillis, this.#timeoutError)
    return Context.getOption(fiber.currentContext, Tracer.ParentSpan)._tag === "None"
      ? wait
      : Effect.withSpan(wait, "RenewableBearer.wait", {
          attributes: { "bearer.name": machine.opts.name, "bearer.mode": mode },
          captureStackTrace: false
        })
  }

  /**
   * The cached token's prebuilt effect if `state` hands it out at `now`: a hit, or past the refresh point a
   * stale serve that wakes the background fiber; counted either way. `undefined` if the caller must wait.
   */
  #serve(state: CacheState.CacheState, now: number): Effect.Effect<Token.Token, FetchError> | undefined {
    if (state._tag !== "Fresh" || !(now < state.usableUntil)) return undefined
    if (now < state.refreshAt) this.#machine.report.hit()
    else {
      this.#machine.report.staleServe()
      this.#machine.staleServe(state)
    }
    return state.hit
  }

  /**
   * What `fetch()` without options would hand out at `now` without waiting (counted as that fetch), or
   * `undefined` if it would wait. For `KeyedBearer`, whose fetch holds its key's bearer (against eviction)
   * only when the fetch has to wait.
   */
  served(now: number): Effect.Effect<Token.Token, FetchError> | undefined {
    return this.#serve(this.#machine.cache.value, now)
  }

  /** The waiters of a synchronous renewal, registering one if none is pending; or a malformed option's error. */
  #synchronous(
    options: FetchOptions
  ): Waiters.Waiters<Token.Token, FetchError> | Effect.Effect<never, FetchError> {
    const machine = this.#machine
    if (machine.sync !== undefined) return machine.sync.waiters
    let timeoutMillis = machine.opts.refreshRequestMillis
    if (options.renewRequestTimeout !== undefined) {
      const decoded = decodeMillis(options.renewRequestTimeout)
      if (Either.isLeft(decoded)) return invalidFetchOptions(`renewRequestTimeout: ${decoded.left}`)
      if (decoded.right === 0)
        return invalidFetchOptions("renewRequestTimeout: expected a positive duration, got 0")
      timeoutMillis = decoded.right
    }
    return machine.synchronous(timeoutMillis)
  }
}
