/**
 * The benchmark's report: every case returns rows, each a measured figure with, where the goal is a ratio,
 * the floor measured in the same run. `renderTable` prints them for people, `toJson` for machines.
 */

import type { CaseReport, GoalKind, Report, Row } from "../support/benchReport.js"

export type { CaseReport, GoalKind, Report, Row }

// ---- row constructors -----------------------------------------------------------------------------------

/** `measured` at most `max` times `floor`. */
export const ratioAtMost = (
  metric: string,
  unit: string,
  measured: number,
  floor: number,
  max: number,
  kind: GoalKind = "performance"
): Row => {
  const ratio = measured / floor
  return { metric, unit, measured, floor, ratio, goal: `<= ${max}x`, met: ratio <= max, kind }
}

/** `measured` strictly below `floor` (a baseline to beat). */
export const beats = (metric: string, unit: string, measured: number, baseline: number): Row => {
  const ratio = measured / baseline
  return { metric, unit, measured, floor: baseline, ratio, goal: "< 1x", met: ratio < 1, kind: "performance" }
}

export const atMost = (
  metric: string,
  unit: string,
  measured: number,
  max: number,
  kind: GoalKind = "correctness",
  goal = `<= ${format(max)}${unit === "" ? "" : ` ${unit}`}`
): Row => ({ metric, unit, measured, goal, met: measured <= max, kind })

export const equals = (
  metric: string,
  unit: string,
  measured: number,
  expected: number,
  kind: GoalKind = "correctness"
): Row => ({
  metric,
  unit,
  measured,
  floor: expected,
  goal: `= ${format(expected)}`,
  met: measured === expected,
  kind
})

/** `measured` within `fraction` of `expected`. */
export const within = (
  metric: string,
  unit: string,
  measured: number,
  expected: number,
  fraction: number,
  kind: GoalKind = "correctness"
): Row => {
  const ratio = measured / expected
  return {
    metric,
    unit,
    measured,
    floor: expected,
    ratio,
    goal: `within ${fraction * 100}%`,
    met: Math.abs(ratio - 1) <= fraction,
    kind
  }
}

export const info = (metric: string, unit: string, measured: number, floor?: number): Row => ({
  metric,
  unit,
  measured,
  floor,
  ratio: floor === undefined || floor === 0 ? undefined : measured / floor,
  goal: "-",
  met: undefined,
  kind: "info"
})

// ---- rendering ------------------------------------------------------------------------------------------

export const format = (n: number | undefined): string => {
  if (n === undefined) return ""
  if (!Number.isFinite(n)) return String(n)
  if (Number.isInteger(n)) return n.toLocaleString("en-US")
  const abs = Math.abs(n)
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3
  return n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })
}

const withUnit = (n: number | undefined, unit: string) =>
  n === undefined ? "" : unit === "" ? format(n) : `${format(n)} ${unit}`

const verdict = (row: Row) => (row.met === undefined ? "" : row.met ? "ok" : "MISS")

export const summarize = (cases: ReadonlyArray<CaseReport>) => {
  const rows = cases.flatMap((c) => c.rows).filter((row) => row.met !== undefined)
  return { met: rows.filter((row) => row.met === true).length, total: rows.length }
}

/** A plain-text table: one block per case, one line per row, then the case's notes. */
export const renderTable = (report: Report): string => {
  const header = ["metric", "measured", "floor", "ratio", "goal", ""]
  const lines: Array<string> = []
  const table: Array<Array<string>> = []
  for (const c of report.cases) {
    table.push([`${c.id}. ${c.title} (${format(c.seconds)} s)`, "", "", "", "", ""])
    for (const row of c.rows) {
      table.push([
        `  ${row.metric}`,
        withUnit(row.measured, row.unit),
        withUnit(row.floor, row.unit),
        row.ratio === undefined ? "" : `${format(row.ratio)}x`,
        row.goal,
        verdict(row)
      ])
    }
  }
  const data = table.filter((r) => r[0]!.startsWith("  "))
  const widths = header.map((h, i) => Math.max(h.length, ...data.map((r) => r[i]!.length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells
      .map((cell, i) => (i === 0 || i >= 4 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)))
      .join("  ")
      .trimEnd()
  lines.push(line(header))
  lines.push(widths.map((w) => "-".repeat(w)).join("  "))
  for (const row of table) lines.push(row[0]!.startsWith("  ") ? line(row) : row[0]!)
  const notes = report.cases.flatMap((c) => c.notes.map((note) => `[${c.id}] ${note}`))
  if (notes.length > 0) lines.push("", ...notes)
  lines.push(
    "",
    `${report.goals.met}/${report.goals.total} goals met in ${format(report.seconds)} s` +
      ` (node ${report.node}, effect ${report.effect}, ${report.cpus} cpus, load average ` +
      `${format(report.loadAverage[0])} to ${format(report.loadAverage[1])}${report.smoke ? ", smoke mode" : ""})`
  )
  return lines.join("\n")
}
