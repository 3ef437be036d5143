/**
 * `npm run bench`: every case measured against a floor measured in the same run.
 *
 *   --json          print a machine-readable report (progress still goes to stderr)
 *   --smoke         tiny sizes and short runs: every case runs and its correctness goals are checked
 *   --only <ids>    run only these cases, by id or name, comma-separated (`--only 1,herd`)
 *   --strict        exit with status 1 when a goal is missed
 */
import { createRequire } from "node:module"
import * as os from "node:os"
import { coldHerd } from "./cases/coldHerd.js"
import { hotPath } from "./cases/hotPath.js"
import { keyedEviction, keyedHerd, keyedIdle } from "./cases/keyed.js"
import { longLife } from "./cases/longLife.js"
import { refreshUnderLoad } from "./cases/refreshUnderLoad.js"
import { waitersGiveUp } from "./cases/waitersGiveUp.js"
import { type CaseReport, renderTable, type Report, summarize } from "./report.js"
import type { BenchCase } from "./support.js"

const cases: ReadonlyArray<BenchCase & { readonly name: string }> = [
  { ...hotPath, name: "hot" },
  { ...coldHerd, name: "herd" },
  { ...refreshUnderLoad, name: "refresh" },
  { ...waitersGiveUp, name: "giveup" },
  { ...longLife, name: "week" },
  { ...keyedHerd, name: "keyed-herd" },
  { ...keyedIdle, name: "keyed-idle" },
  { ...keyedEviction, name: "keyed-eviction" }
]

interface Args {
  readonly json: boolean
  readonly smoke: boolean
  readonly strict: boolean
  readonly only: ReadonlyArray<string> | undefined
}

const parseArgs = (argv: ReadonlyArray<string>): Args => {
  let only: Array<string> | undefined
  const onlyAt = argv.indexOf("--only")
  if (onlyAt >= 0) {
    const value = argv[onlyAt + 1]
    if (value === undefined) throw new Error("--only needs a case id or name")
    only = value.split(",").map((s) => s.trim())
  }
  const known = new Set(["--json", "--smoke", "--strict", "--only"])
  const unknown = argv.filter((arg, i) => arg.startsWith("--") && !known.has(arg) && argv[i - 1] !== "--only")
  if (unknown.length > 0) throw new Error(`unknown option ${unknown.join(", ")}`)
  return {
    json: argv.includes("--json"),
    smoke: argv.includes("--smoke"),
    strict: argv.includes("--strict"),
    only
  }
}

const runBench = async (args: Omit<Args, "json" | "strict">): Promise<Report> => {
  const selected = cases.filter(
    (c) => args.only === undefined || args.only.includes(c.id) || args.only.includes(c.name)
  )
  if (selected.length === 0) throw new Error(`no case matches --only ${args.only?.join(",")}`)
  const log = (line: string) => process.stderr.write(`${line}\n`)
  const started = performance.now()
  const loadAtStart = os.loadavg()[0]!
  const reports: Array<CaseReport> = []
  for (const c of selected) {
    log(`case ${c.id} (${c.name}): ${c.title}`)
    const caseStarted = performance.now()
    const result = await c.run({ smoke: args.smoke, log })
    reports.push({
      id: c.id,
      title: c.title,
      rows: result.rows,
      notes: result.notes,
      seconds: (performance.now() - caseStarted) / 1000
    })
  }
  const require = createRequire(import.meta.url)
  return {
    smoke: args.smoke,
    node: process.version,
    effect: (require("effect/package.json") as { version: string }).version,
    cpus: os.availableParallelism(),
    loadAverage: [loadAtStart, os.loadavg()[0]!],
    seconds: (performance.now() - started) / 1000,
    goals: summarize(reports),
    cases: reports
  }
}

const main = async () => {
  const args = parseArgs(process.argv.slice(2))
  const report = await runBench(args)
  const code = args.strict && report.goals.met < report.goals.total ? 1 : 0
  // Exit once the output is flushed: a stray timer of a case must not keep the process alive.
  process.stdout.write(args.json ? `${JSON.stringify(report, null, 2)}\n` : `${renderTable(report)}\n`, () =>
    process.exit(code)
  )
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
  process.exit(2)
})
