/**
 * Step 1 of the demo, the plan: what the flags ask for, which faults the run injects and when, and the counts
 * the run keeps while it goes. Nothing here starts anything.
 */
import { Clock, Effect } from "effect"
import { parseArgs } from "node:util"
import type { EndpointFault } from "./servers.js"
import { makePrinter, makeTimeline, seconds, type Timeline } from "./timeline.js"

// ---- flags -----------------------------------------------------------------------------------------------

export const usage = `Usage: npm start -- [options]      (or: npx tsx demo/main.ts [options])

Runs a loopback OAuth 2.0 token endpoint and a protected API, then calls the API from many workers through
RenewableBearer + BearerHttpClient while faults are injected. Exits 0 when no request failed.

Options:
  --duration <seconds>  how long the workers run (default 30)
  --workers <n>         concurrent workers calling the API (default 50)
  --ttl <seconds>       lifetime of each issued token (default 10)
  --json                print only a machine-readable summary on stdout (the timeline goes to stderr)
  --help                show this help
`

export interface DemoOptions {
  readonly durationMillis: number
  readonly workers: number
  readonly ttlMillis: number
  readonly json: boolean
}

/** The options from the command line, `{ help: true }`, or the message for flags it cannot read. */
export const parseFlags = (argv: ReadonlyArray<string>): DemoOptions | { readonly help: true } | string => {
  let values
  try {
    values = parseArgs({
      args: [...argv],
      options: {
        duration: { type: "string" },
        workers: { type: "string" },
        ttl: { type: "string" },
        json: { type: "boolean" },
        help: { type: "boolean" }
      },
      strict: true
    }).values
  } catch (error) {
    return error instanceof Error ? error.message : String(error)
  }
  if (values.help === true) return { help: true }
  const number = (name: string, raw: string | undefined, fallback: number, min: number, max: number) => {
    const n = raw === undefined ? fallback : Number(raw)
    return Number.isFinite(n) && n >= min && n <= max ? n : `--${name} must be a number in [${min}, ${max}]`
  }
  const duration = number("duration", values.duration, 30, 1, 3600)
  const workers = number("workers", values.workers, 50, 1, 2000)
  const ttl = number("ttl", values.ttl, 10, 2, 3600)
  for (const v of [duration, workers, ttl]) if (typeof v === "string") return v
  return {
    durationMillis: (duration as number) * 1000,
    workers: Math.round(workers as number),
    ttlMillis: (ttl as number) * 1000,
    json: values.json === true
  }
}

// ---- a fault plan that the bearer can absorb -------------------------------------------------------------

/**
 * How many consecutive 503s the still-valid token can ride out with the demo's bearer options
 * (`demo/client.ts`): the refresh comes at 40-50 % of the lifetime (jitter only makes it earlier), the token
 * is served until `ttl - 0.5 s`, and the n-th retry comes at most 1.2 × (1 + 1.5 + ... + 1.5^(n-1)) s after
 * the first failure.
 */
const failuresToAbsorb = (ttlMillis: number): number => {
  const room = 0.5 * ttlMillis - 500 - 300
  let n = 1
  while (n < 3 && 1200 * ((Math.pow(1.5, n + 1) - 1) / 0.5) <= room) n++
  return n
}

export type FaultKind = "fail" | "hang" | "revoke"

/** One injected fault: what it does, when it is due, and what the run saw of it. */
export interface Fault {
  readonly kind: FaultKind
  readonly plannedAt: number
  readonly endpointFaults: ReadonlyArray<EndpointFault>
  armedAt?: number
  hits: number
  recoveredAt?: number
  staleServesAtArm: number
  unauthorizedAtArm: number
}

/** The faults in their order, and the one in play (armed last), if any. */
export interface FaultPlan {
  readonly faults: ReadonlyArray<Fault>
  /** How many 503s the first fault answers in a row. */
  readonly failures: number
  current: Fault | undefined
}

/** The endpoint fails at 20 % of the run, hangs at 45 %, and the token is revoked at 70 %. */
const planFaults = (options: DemoOptions): FaultPlan => {
  const failures = failuresToAbsorb(options.ttlMillis)
  const faults: Array<Fault> = (
    [
      ["fail", 0.2, Array.from({ length: failures }, () => ({ _tag: "Fail", status: 503 }) as const)],
      ["hang", 0.45, [{ _tag: "Hang" }]],
      ["revoke", 0.7, []]
    ] as const
  ).map(([kind, at, endpointFaults]) => ({
    kind,
    plannedAt: at * options.durationMillis,
    endpointFaults,
    hits: 0,
    staleServesAtArm: 0,
    unauthorizedAtArm: 0
  }))
  return { faults, failures, current: undefined }
}

/** The plan on one line, for the header. */
export const describePlan = (plan: FaultPlan): string =>
  plan.faults
    .map(
      (f) =>
        `${seconds(f.plannedAt)} ${f.kind === "fail" ? `endpoint fails ×${plan.failures}` : f.kind === "hang" ? "endpoint hangs" : "token revoked"}`
    )
    .join(" · ")

/** What a fault does, for the timeline line that arms it. */
export const describeFault = (fault: Fault): string => {
  switch (fault.kind) {
    case "fail":
      return fault.endpointFaults.length === 1
        ? "the token endpoint goes down: it answers 503 to the next token request"
        : `the token endpoint goes down: it answers 503 to the next ${fault.endpointFaults.length} token requests`
    case "hang":
      return "the token endpoint hangs: it holds the next token request and never answers"
    case "revoke":
      return "the server revokes the current token: the API answers 401 to it from now on"
  }
}

// ---- the run -----------------------------------------------------------------------------------------------

/** What the workers count, and how long each request waited for its token. */
export interface Tally {
  requests: number
  succeeded: number
  readonly failuresByKind: Record<string, number>
  tokensReceived: number
  readonly waits: Array<number>
}

/** One run as planned: its options, its clock and printer, the faults it injects, and the counts it keeps. */
export interface Demo {
  readonly options: DemoOptions
  readonly timeline: Timeline
  /** When the workers stop (epoch millis). */
  readonly deadline: number
  readonly plan: FaultPlan
  readonly tally: Tally
}

/** Plans a run that starts now; the timeline goes to stdout, or to stderr when stdout carries the JSON. */
export const planRun = (options: DemoOptions): Effect.Effect<Demo> =>
  Effect.map(Clock.currentTimeMillis, (start) => ({
    options,
    timeline: makeTimeline(makePrinter(options.json ? process.stderr : process.stdout), start),
    deadline: start + options.durationMillis,
    plan: planFaults(options),
    tally: { requests: 0, succeeded: 0, failuresByKind: {}, tokensReceived: 0, waits: [] }
  }))
