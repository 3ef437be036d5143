/**
 * Step 4 of the demo, the workers: many request loops call the API through the authorized client until the
 * deadline, while three fibers beside them watch the bearer's new tokens, inject the planned faults, and
 * print a heartbeat each second.
 */
import { HttpClient } from "@effect/platform"
import { Clock, Duration, Effect, Fiber, Stream } from "effect"
import { RenewableBearer, Token } from "effect-renewable-bearer"
import { readCounters } from "./client.js"
import { type Demo, describeFault, type Fault } from "./plan.js"
import type { Servers } from "./servers.js"
import { int, millis, progressBar, seconds } from "./timeline.js"

/** Pause of each worker between two requests, so the numbers stay readable and the CPU stays calm. */
const WORKER_PAUSE = Duration.millis(25)

/** Runs the workers to the deadline, with the token watcher, the faults and the heartbeat beside them. */
export const runWorkers = (demo: Demo, servers: Servers) =>
  Effect.gen(function* () {
    const http = yield* HttpClient.HttpClient
    const bearer = yield* RenewableBearer.RenewableBearer
    yield* Effect.fork(watchTokens(demo, servers, bearer))
    const faultFiber = yield* Effect.fork(injectFaults(demo, servers))
    const heartbeatFiber = yield* Effect.fork(heartbeat(demo, servers))
    yield* Effect.all(
      Array.from({ length: demo.options.workers }, () => worker(demo, servers, http)),
      { concurrency: "unbounded" }
    )
    yield* Fiber.join(heartbeatFiber)
    yield* Fiber.interrupt(faultFiber)
    return yield* readCounters
  })

/** One worker: calls the API until the deadline; any answer but 200, or any error, is a failure. */
const worker = (demo: Demo, servers: Servers, http: HttpClient.HttpClient) =>
  Effect.gen(function* () {
    const { tally } = demo
    while ((yield* Clock.currentTimeMillis) < demo.deadline) {
      const outcome = yield* http.get(servers.apiUrl).pipe(
        Effect.flatMap((response) =>
          Effect.as(response.text, response.status === 200 ? "ok" : `HTTP ${response.status}`)
        ),
        Effect.catchAll((error) => Effect.succeed(`${error._tag}: ${error.message}`))
      )
      tally.requests++
      if (outcome === "ok") tally.succeeded++
      else tally.failuresByKind[outcome] = (tally.failuresByKind[outcome] ?? 0) + 1
      yield* Effect.sleep(WORKER_PAUSE)
    }
  })

/**
 * Each new token the bearer caches, from its `changes` stream: only the lifetime is shown. A new token ends
 * the fault in play once the endpoint has played all of that fault.
 */
const watchTokens = (demo: Demo, servers: Servers, bearer: RenewableBearer.RenewableBearer["Type"]) =>
  Stream.runForEach(bearer.changes, (token) =>
    Effect.gen(function* () {
      const { tally, timeline } = demo
      tally.tokensReceived++
      const now = yield* Clock.currentTimeMillis
      const lifetime = Duration.toMillis(Token.remainingLifetime(token, now))
      timeline.line(
        `${timeline.out.color.green("✔")} ${tally.tokensReceived === 1 ? "first token" : `renewal #${tally.tokensReceived - 1}`}: a new token, valid for ${seconds(lifetime)}`
      )
      const fault = demo.plan.current
      if (fault === undefined || fault.recoveredAt !== undefined || servers.pending() !== 0) return
      if (fault.kind !== "revoke" && fault.hits < fault.endpointFaults.length) return
      fault.recoveredAt = now - timeline.start
      yield* reportRecovery(demo, servers, fault)
    })
  )

/** The timeline line of a fault that is over: what it cost and what absorbed it. */
const reportRecovery = (demo: Demo, servers: Servers, fault: Fault) =>
  Effect.map(readCounters, (counters) => {
    const stale = counters.staleServes - fault.staleServesAtArm
    const unauthorized = servers.stats().apiUnauthorized - fault.unauthorizedAtArm
    const detail =
      fault.kind === "revoke"
        ? `${int(unauthorized)} requests got 401 for the revoked token and were replayed with the new one`
        : `${fault.hits} failed token request${fault.hits === 1 ? "" : "s"}; ${int(stale)} requests were served by the still-valid token meanwhile`
    demo.timeline.line(`${demo.timeline.out.color.green("✔ recovered")}: ${detail}`)
  })

/** The fault plan: each fault at its time, but never before the previous one has recovered. */
const injectFaults = (demo: Demo, servers: Servers) =>
  Effect.gen(function* () {
    const { plan, timeline } = demo
    for (const fault of plan.faults) {
      while (true) {
        const now = (yield* Clock.currentTimeMillis) - timeline.start
        // The bearer must hold a token, and the previous fault must be over: then the still-valid
        // token has its whole margin to ride this one out.
        const previousDone = plan.current === undefined || plan.current.recoveredAt !== undefined
        if (now >= fault.plannedAt && previousDone && demo.tally.tokensReceived > 0) break
        yield* Effect.sleep("100 millis")
      }
      const counters = yield* readCounters
      fault.armedAt = timeline.elapsed()
      fault.staleServesAtArm = counters.staleServes
      fault.unauthorizedAtArm = servers.stats().apiUnauthorized
      plan.current = fault
      timeline.line(`${timeline.out.color.yellow("⚡ fault")}: ${describeFault(fault)}`)
      if (fault.kind === "revoke") servers.revokeCurrent()
      else servers.script(...fault.endpointFaults)
    }
  })

/** One heartbeat a second: requests per second, the progress bar, and what the bearer did. */
const heartbeat = (demo: Demo, servers: Servers) =>
  Effect.gen(function* () {
    const { options, tally, timeline } = demo
    const c = timeline.out.color
    let last: Beat = { requests: 0, failed: 0, staleServes: 0, unauthorized: 0, waits: 0 }
    for (let second = 1; timeline.start + second * 1000 <= demo.deadline; second++) {
      yield* Effect.sleep(Duration.millis(Math.max(0, timeline.start + second * 1000 - Date.now())))
      const counters = yield* readCounters
      const now: Beat = {
        requests: tally.requests,
        failed: tally.requests - tally.succeeded,
        staleServes: counters.staleServes,
        unauthorized: servers.stats().apiUnauthorized,
        waits: tally.waits.length
      }
      const notes = heartbeatNotes(tally.waits.slice(last.waits), last, now)
      timeline.line(
        `${c.cyan(progressBar((second * 1000) / options.durationMillis))} ${int(now.requests - last.requests).padStart(6)} req/s · total ${int(now.requests)} · failed ${now.failed === last.failed && now.failed === 0 ? "0" : c.red(int(now.failed))}${notes.length === 0 ? "" : c.dim(` · ${notes.join(" · ")}`)}`
      )
      last = now
    }
  })

/** What the heartbeat reads each second: running totals. */
interface Beat {
  readonly requests: number
  readonly failed: number
  readonly staleServes: number
  readonly unauthorized: number
  /** How many token waits were measured. */
  readonly waits: number
}

/** The notes of one heartbeat: what happened since the last one, beyond plain requests. */
const heartbeatNotes = (newWaits: ReadonlyArray<number>, last: Beat, now: Beat): Array<string> => {
  const slowest = newWaits.length === 0 ? 0 : Math.max(...newWaits)
  const notes: Array<string> = []
  if (now.staleServes > last.staleServes)
    notes.push(`${int(now.staleServes - last.staleServes)} served by the still-valid token`)
  if (now.unauthorized > last.unauthorized)
    notes.push(`${int(now.unauthorized - last.unauthorized)} × 401 replayed`)
  if (slowest >= 5) notes.push(`slowest wait for a token ${millis(slowest)}`)
  return notes
}
