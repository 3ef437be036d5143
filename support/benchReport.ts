/**
 * The format of the benchmark's report (`npm run bench -- --json`): bench/report.ts builds it, the bench smoke
 * test reads it.
 */

/** `performance` goals (time, allocation) depend on the machine; `correctness` goals (counts, leaks) hold everywhere. */
export type GoalKind = "performance" | "correctness" | "info"

export interface Row {
  readonly metric: string
  readonly unit: string
  readonly measured: number
  /** The figure the goal compares against, measured in the same run (a floor, or a reference value). */
  readonly floor?: number | undefined
  /** `measured / floor`. */
  readonly ratio?: number | undefined
  /** The goal as people read it: `<= 1.25x`, `= 1`, `<= 1 MB`; `-` for a figure that is only reported. */
  readonly goal: string
  /** Whether the goal is met; `undefined` for a figure that is only reported. */
  readonly met?: boolean | undefined
  readonly kind: GoalKind
}

export interface CaseReport {
  readonly id: string
  readonly title: string
  readonly rows: ReadonlyArray<Row>
  readonly notes: ReadonlyArray<string>
  readonly seconds: number
}

export interface Report {
  readonly smoke: boolean
  readonly node: string
  readonly effect: string
  readonly cpus: number
  /** The machine's 1-minute load average when the run started and when it ended. */
  readonly loadAverage: readonly [number, number]
  readonly seconds: number
  readonly goals: { readonly met: number; readonly total: number }
  readonly cases: ReadonlyArray<CaseReport>
}
