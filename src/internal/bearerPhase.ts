import type * as Clock from "effect/Clock"
import type * as Fiber from "effect/Fiber"
import type * as Runtime from "effect/Runtime"
import type { FetchError } from "../Errors.js"
import type * as Token from "../Token.js"
import type { Alarm, Alarms } from "./alarms.js"
import type * as Waiters from "./waiters.js"

/**
 * What the bearer's background work is doing. Every transition happens in one synchronous step (JavaScript
 * runs it to completion), started by an alarm, an attempt's outcome, a caller, or shutdown:
 *
 * | phase        | holds                          | leaves on                                              |
 * | ------------ | ------------------------------ | ------------------------------------------------------ |
 * | `Idle`       | nothing (no fiber, no alarm)   | the first fetch or renewal request (`eager`: at once)  |
 * | `Sleeping`   | one alarm                      | the alarm; a caller or a stale serve cuts `Refresh`    |
 * | `Attempting` | the fiber calling the source   | its outcome; a synchronous fetch may abandon it        |
 * | `Stopped`    | nothing                        | never                                                  |
 *
 * @internal
 */
export type Phase = Idle | Sleeping | Attempting | Stopped

export interface Idle {
  readonly _tag: "Idle"
}

/**
 * Asleep until `until`, for one of four reasons: the scheduled `Refresh` of the cached token (a caller's
 * request or a stale serve cuts it short); a `Backoff` after a failure (runs to its end); a `Guard` wait for a
 * storm-guard credit, spent when it ends; a request `Held` until the scheduled refresh, which comes before the
 * next credit and runs as scheduled.
 */
export interface Sleeping {
  readonly _tag: "Sleeping"
  readonly kind: "Refresh" | "Backoff" | "Guard" | "Held"
  readonly until: number
  readonly alarm: Alarm
  /** How long a request waited for the guard by the time the attempt starts (0 for the schedule's own). */
  readonly pacedMillis: number
}

export interface Attempting {
  readonly _tag: "Attempting"
  readonly attempt: number
  fiber: Fiber.RuntimeFiber<void> | undefined
  /** Whether the source call has started (until then, a synchronous request joins this attempt). */
  started: boolean
}

export interface Stopped {
  readonly _tag: "Stopped"
}

/**
 * What bearers can share: the runtime their fibers are forked with, the clock and the alarms. A bearer made
 * alone has its own; a `KeyedBearer` shares one set among all its keys.
 *
 * @internal
 */
export interface Shared {
  readonly runtime: Runtime.Runtime<never>
  readonly clock: Clock.Clock
  readonly alarms: Alarms
}

/** @internal */
export const idle: Idle = { _tag: "Idle" }
/** @internal */
export const stopped: Stopped = { _tag: "Stopped" }

/**
 * A caller's synchronous renewal (`fetch({ synchronous: true })`): queued until an attempt carries it, then in
 * flight; every synchronous fetch meanwhile joins it. At most one exists at a time.
 *
 * @internal
 */
export interface SyncRequest {
  readonly timeoutMillis: number
  readonly waiters: Waiters.Waiters<Token.Token, FetchError>
  inFlight: boolean
}
