/**
 * Step 5 of the demo, the summary: the run's numbers collected in one value (printed as JSON with `--json`)
 * and shown as a table with the verdict. Goal: no failed request.
 */
import type { BearerCounters } from "./client.js"
import type { Demo, FaultKind } from "./plan.js"
import type { ServerStats } from "./servers.js"
import { int, millis, percentile, table } from "./timeline.js"

export interface Summary {
  readonly ok: boolean
  readonly durationSeconds: number
  readonly workers: number
  readonly ttlSeconds: number
  readonly requests: number
  readonly succeeded: number
  readonly failed: number
  readonly failures: Readonly<Record<string, number>>
  readonly replayedAfter401: number
  readonly tokensReceived: number
  readonly renewals: number
  readonly sourceCalls: number
  readonly sourceFailures: number
  readonly tokenWaitMaxMillis: number
  readonly tokenWaitP99Millis: number
  readonly cacheHits: number
  readonly staleServes: number
  readonly cacheMisses: number
  readonly faults: ReadonlyArray<{
    readonly kind: FaultKind
    readonly armedAtSeconds: number | null
    readonly recoveredAtSeconds: number | null
    readonly endpointFaultsHit: number
  }>
}

/** The numbers of a finished run: the workers' tally, the servers' stats and the bearer's counters. */
export const summarize = (demo: Demo, stats: ServerStats, counters: BearerCounters): Summary => {
  const { options, plan, tally } = demo
  const sorted = [...tally.waits].sort((a, b) => a - b)
  const failed = tally.requests - tally.succeeded
  return {
    ok: failed === 0 && tally.requests > 0,
    durationSeconds: options.durationMillis / 1000,
    workers: options.workers,
    ttlSeconds: options.ttlMillis / 1000,
    requests: tally.requests,
    succeeded: tally.succeeded,
    failed,
    failures: tally.failuresByKind,
    replayedAfter401: stats.apiUnauthorized,
    tokensReceived: tally.tokensReceived,
    renewals: Math.max(0, tally.tokensReceived - 1),
    sourceCalls: counters.attempts,
    sourceFailures: counters.attemptFailures,
    tokenWaitMaxMillis: round(sorted.length === 0 ? 0 : sorted[sorted.length - 1]!),
    tokenWaitP99Millis: round(percentile(sorted, 99)),
    cacheHits: counters.hits,
    staleServes: counters.staleServes,
    cacheMisses: counters.misses,
    faults: plan.faults.map((f) => ({
      kind: f.kind,
      armedAtSeconds: f.armedAt === undefined ? null : round(f.armedAt / 1000),
      recoveredAtSeconds: f.recoveredAt === undefined ? null : round(f.recoveredAt / 1000),
      endpointFaultsHit: f.hits
    }))
  }
}

/** Prints the summary table and the verdict; with `--json`, the summary itself goes to stdout. */
export const printSummary = (demo: Demo, summary: Summary): void => {
  const { out } = demo.timeline
  const { color: c } = out
  const faults = demo.plan.faults
  out.raw()
  out.raw(c.bold("Summary"))
  for (const row of table([
    ["requests made", int(summary.requests)],
    ["requests failed (goal: 0)", int(summary.failed)],
    ["401s absorbed (replayed with a new token)", int(summary.replayedAfter401)],
    ["renewals (after the first token)", int(summary.renewals)],
    ["token source calls", int(summary.sourceCalls)],
    ["  of which failed (injected faults)", int(summary.sourceFailures)],
    ["served by a still-valid token during a failure", int(summary.staleServes)],
    ["max time a request waited for a token", millis(summary.tokenWaitMaxMillis)],
    ["p99 time a request waited for a token", millis(summary.tokenWaitP99Millis)],
    [
      "faults injected / recovered",
      `${faults.filter((f) => f.armedAt !== undefined).length} / ${faults.filter((f) => f.recoveredAt !== undefined).length}`
    ]
  ]))
    out.raw(`  ${row}`)
  for (const [kind, count] of Object.entries(summary.failures)) out.raw(c.red(`  failed: ${count} × ${kind}`))
  out.raw(
    summary.ok
      ? c.green(`PASS: no request failed.`)
      : c.red(`FAIL: ${int(summary.failed)} request${summary.failed === 1 ? "" : "s"} failed.`)
  )
  if (demo.options.json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`)
}

const round = (n: number) => Math.round(n * 100) / 100
