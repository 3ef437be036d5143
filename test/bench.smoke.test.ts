import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { describe, expect, it } from "vitest"
import type { Report } from "../support/benchReport.js"

const root = fileURLToPath(new URL("..", import.meta.url))

/**
 * Runs `bench/main.ts --smoke --json` (tiny sizes, a few seconds) and checks that every case ran and that
 * its correctness goals hold: source calls, failures, timers, leaks. Timing ratios are machine-dependent and
 * are not asserted here.
 */
describe("npm run bench (smoke)", () => {
  it("runs every case, and every correctness goal holds", { timeout: 180_000 }, async () => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ["--expose-gc", "--import", "tsx", "bench/main.ts", "--smoke", "--json"],
      { cwd: root, maxBuffer: 16 * 1024 * 1024 }
    )
    const report = JSON.parse(stdout) as Report
    expect(report.smoke).toBe(true)
    expect(report.cases.map((c) => c.id)).toEqual(["1", "2", "3", "4", "5", "K1", "K2", "K3"])
    for (const c of report.cases) expect(c.rows.length).toBeGreaterThan(0)

    const correctness = report.cases.flatMap((c) =>
      c.rows.filter((row) => row.kind === "correctness").map((row) => ({ case: c.id, ...row }))
    )
    expect(correctness.filter((row) => row.met !== true)).toEqual([])

    // The goals the issue names, by case: exactly one source call per herd, no failed or expired fetch, no
    // waiter left behind, the schedule's number of calls.
    const metrics = (id: string) => correctness.filter((row) => row.case === id).map((row) => row.metric)
    expect(metrics("1")).toContainEqual(expect.stringMatching(/^timers armed/))
    expect(metrics("2").filter((m) => m.endsWith("source calls"))).toHaveLength(4)
    // Timed and untimed herds alike: no waiter arms a timer of its own; the heap runs (the source answers only
    // once every waiter is registered) fail no fetch either.
    expect(metrics("2").filter((m) => m.endsWith("timers armed by waiters"))).toHaveLength(4)
    expect(metrics("2")).toEqual(
      expect.arrayContaining([
        'fetch({ timeout: "30 seconds" }) N=1,000: source calls',
        'fetch({ timeout: "30 seconds" }) N=1,000: failed fetches (heap run)'
      ])
    )
    for (const run of ["200 ms, yieldNow", "200 ms, event loop", "1000 ms, yieldNow", "1000 ms, event loop"])
      expect(metrics("3")).toEqual(
        expect.arrayContaining([
          `failed fetches [${run}]`,
          `tokens expired when returned [${run}]`,
          `source calls vs duration / (0.9 x lifetime) [${run}]`
        ])
      )
    expect(metrics("4")).toEqual(
      expect.arrayContaining([
        "fetches that timed out (fewest of the rounds)",
        "timers armed at once while they wait (bearer and waiters)",
        "source calls",
        "next fetch after recovery succeeds",
        "heap growth after forced GC"
      ])
    )
    expect(metrics("5")).toContainEqual(expect.stringMatching(/^source calls vs the schedule/))
    // Keyed bearers: one source call per key in a herd; never more bearers alive than the capacity.
    expect(metrics("K1")).toContainEqual(expect.stringMatching(/: source calls$/))
    expect(metrics("K3")).toContainEqual(expect.stringMatching(/^.*most bearers alive at once/))
  })
})
