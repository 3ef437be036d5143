/**
 * The demo behind `npm start` (the entry point is `demo/main.ts`): the whole library at work, in-process and on loopback, in about half a minute.
 *
 * An OAuth 2.0 token endpoint issues short-lived tokens; a protected API accepts only currently valid ones.
 * A client built the way the README teaches (client credentials `TokenSource`, `RenewableBearer`, the
 * authorized `HttpClient`) calls the API from many concurrent workers while faults hit the token endpoint:
 * it fails for a while, then hangs, then the server revokes the current token. The goal: zero failed
 * requests. The timeline is built from the bearer's `changes` stream, its logs and its metrics; no token
 * value is ever printed.
 *
 * `run` below is the table of contents; each step has its own file: `plan.ts`, `servers.ts`, `client.ts`,
 * `workers.ts`, `summary.ts` (and `timeline.ts` for what is printed). Run `npm start -- --help` for the flags.
 */
import { Effect } from "effect"
import { makeClientLayer } from "./client.js"
import { type Demo, type DemoOptions, describePlan, planRun } from "./plan.js"
import { makeServers, type Servers } from "./servers.js"
import { printSummary, summarize } from "./summary.js"
import { seconds } from "./timeline.js"
import { runWorkers } from "./workers.js"

export { type DemoOptions, parseFlags, usage } from "./plan.js"
export type { Summary } from "./summary.js"
export { timelineLogger } from "./timeline.js"

/** One run of the demo, from the flags to the summary; the servers and the client close when it ends. */
export const run = (options: DemoOptions) =>
  Effect.gen(function* () {
    // 1. Plan: the clock starts, the faults are scheduled, the counts are zero.
    const demo = yield* planRun(options)
    // 2. Servers: the loopback token endpoint and the protected API.
    const servers = yield* startServers(demo)
    printHeader(demo, servers)
    // 3. Client: the bearer and the authorized HttpClient, as the README builds them.
    const client = makeClientLayer(servers, demo.tally.waits)
    // 4. Workers: the request loops until the deadline, with the faults injected beside them.
    const counters = yield* Effect.provide(runWorkers(demo, servers), client)
    // 5. Summary: collect the numbers and print them.
    const summary = summarize(demo, servers.stats(), counters)
    printSummary(demo, summary)
    return summary
  }).pipe(Effect.scoped)

/** Starts both servers; what the token endpoint does to the fault in play is counted and shown. */
const startServers = (demo: Demo) => {
  const { plan, timeline } = demo
  const c = timeline.out.color
  return makeServers({
    ttlMillis: demo.options.ttlMillis,
    onEvent: (event) => {
      switch (event._tag) {
        case "Failed":
          if (plan.current !== undefined) plan.current.hits++
          return timeline.line(c.dim(`   ↳ token endpoint: answered ${event.status} (injected fault)`))
        case "Held":
          if (plan.current !== undefined) plan.current.hits++
          return timeline.line(c.dim("   ↳ token endpoint: holding the request, no answer (injected fault)"))
        default:
          return
      }
    }
  })
}

/** What runs where, the bearer's options and the fault plan, before the timeline starts. */
const printHeader = ({ options, plan, timeline: { out } }: Demo, servers: Servers) => {
  const c = out.color
  out.raw(c.bold("effect-renewable-bearer demo"))
  out.raw(
    `  token endpoint  ${servers.tokenUrl}  (OAuth 2.0 client credentials, tokens live ${seconds(options.ttlMillis)})`
  )
  out.raw(`  protected API   ${servers.apiUrl}  (answers 401 to a missing, expired or revoked token)`)
  out.raw(
    `  client          OAuth2TokenSource + RenewableBearer + BearerHttpClient, ${options.workers} workers`
  )
  out.raw(
    `  bearer options  lifetimeSafeFraction 0.5, expiryMargin 500 ms, refreshRequestTimeout 1 s (see demo/client.ts)`
  )
  out.raw(`  fault plan      ${describePlan(plan)}`)
  out.raw(c.dim(`  running for ${seconds(options.durationMillis, 0)}; no token value is ever printed`))
  out.raw()
}
