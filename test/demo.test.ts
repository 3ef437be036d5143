import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { parseFlags, type Summary } from "../demo/demo.js"

const root = fileURLToPath(new URL("..", import.meta.url))
const tsx = fileURLToPath(new URL("../node_modules/.bin/tsx", import.meta.url))

/** Runs `tsx demo/main.ts ...args` as `npm start` does, in a child process. */
const runDemo = (...args: ReadonlyArray<string>) =>
  Effect.async<{ readonly code: number; readonly stdout: string; readonly stderr: string }>((resume) => {
    const child = execFile(
      tsx,
      ["demo/main.ts", ...args],
      { cwd: root, timeout: 100_000, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, NO_COLOR: "1" } },
      (error, stdout, stderr) =>
        resume(Effect.succeed({ code: error === null ? 0 : Number(error.code ?? 1), stdout, stderr }))
    )
    return Effect.sync(() => child.kill())
  })

describe("demo (npm start)", () => {
  it.live(
    "a short run absorbs every fault: no failed request, renewals, bounded source calls, exit code 0",
    () =>
      Effect.gen(function* () {
        const { code, stdout, stderr } = yield* runDemo(
          "--duration",
          "12",
          "--ttl",
          "6",
          "--workers",
          "20",
          "--json"
        )
        const summary = JSON.parse(stdout) as Summary
        expect(summary.failed, stderr).toBe(0)
        expect(summary.ok).toBe(true)
        expect(code).toBe(0)
        expect(summary.requests).toBeGreaterThan(0)
        expect(summary.succeeded).toBe(summary.requests)
        expect(summary.renewals).toBeGreaterThanOrEqual(1)
        // The refresh comes at 40-50 % of a 6 s lifetime: about 5 calls in 12 s, plus one per injected fault
        // and one for the revocation. A stampede or a retry spin would blow far past this.
        expect(summary.sourceCalls).toBeGreaterThanOrEqual(summary.renewals + 1)
        expect(summary.sourceCalls).toBeLessThanOrEqual(20)
        // At least the 503s and the hang were injected, and each was absorbed.
        const injected = summary.faults.filter((f) => f.armedAtSeconds !== null)
        expect(injected.length).toBeGreaterThanOrEqual(2)
        expect(summary.sourceFailures).toBeGreaterThanOrEqual(1)
        // The timeline went to stderr and shows lifetimes, never a token.
        expect(stderr).toContain("first token: a new token, valid for")
        expect(stderr).not.toMatch(/Bearer [A-Za-z0-9_-]{20,}/)
        expect(stderr).not.toMatch(/access_token/)
      }),
    120_000
  )

  it("reads its flags", () => {
    expect(parseFlags([])).toEqual({ durationMillis: 30_000, workers: 50, ttlMillis: 10_000, json: false })
    expect(parseFlags(["--duration", "6", "--workers", "5", "--ttl", "4", "--json"])).toEqual({
      durationMillis: 6_000,
      workers: 5,
      ttlMillis: 4_000,
      json: true
    })
    expect(parseFlags(["--help"])).toEqual({ help: true })
    expect(parseFlags(["--duration", "soon"])).toMatch(/--duration must be a number/)
    expect(parseFlags(["--bogus"])).toMatch(/Unknown option/)
  })
})
