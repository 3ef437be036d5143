/**
 * What the demo prints: the timeline lines (the bearer's warnings among them), the per-second heartbeat with
 * its progress bar, and the summary table. Plain text, with colour only on a terminal (and never when
 * `NO_COLOR` is set).
 */
import { HashMap, Logger, LogLevel, Option } from "effect"
import type { Writable } from "node:stream"

export interface Printer {
  /** A timeline line, stamped with the seconds since the start. */
  readonly line: (elapsedMillis: number, text: string) => void
  /** A line without a stamp. */
  readonly raw: (text?: string) => void
  readonly color: Colors
}

export interface Colors {
  readonly dim: (s: string) => string
  readonly bold: (s: string) => string
  readonly green: (s: string) => string
  readonly red: (s: string) => string
  readonly yellow: (s: string) => string
  readonly cyan: (s: string) => string
}

const ansi = (code: number) => (s: string) => `\x1b[${code}m${s}\x1b[0m`
const plain = (s: string) => s

export const makePrinter = (stream: Writable & { readonly isTTY?: boolean }): Printer => {
  const useColor = stream.isTTY === true && process.env["NO_COLOR"] === undefined
  const color: Colors = useColor
    ? { dim: ansi(2), bold: ansi(1), green: ansi(32), red: ansi(31), yellow: ansi(33), cyan: ansi(36) }
    : { dim: plain, bold: plain, green: plain, red: plain, yellow: plain, cyan: plain }
  return {
    line: (elapsedMillis, text) =>
      stream.write(`${color.dim(`${(elapsedMillis / 1000).toFixed(1).padStart(6)}s`)}  ${text}\n`),
    raw: (text = "") => stream.write(`${text}\n`),
    color
  }
}

/** The run's printer and clock: a timeline line is stamped with the time since `start`. */
export interface Timeline {
  readonly out: Printer
  readonly start: number
  readonly elapsed: () => number
  readonly line: (text: string) => void
}

export const makeTimeline = (out: Printer, start: number): Timeline => {
  const elapsed = () => Date.now() - start
  return { out, start, elapsed, line: (text) => out.line(elapsed(), text) }
}

export const int = (n: number): string => Math.round(n).toLocaleString("en-US")

export const seconds = (millis: number, digits = 1): string => `${(millis / 1000).toFixed(digits)} s`

export const millis = (ms: number): string => (ms < 10 ? `${ms.toFixed(2)} ms` : `${ms.toFixed(1)} ms`)

/** `[████████░░░░░░░░░░░░]` */
export const progressBar = (fraction: number, width = 20): string => {
  const filled = Math.max(0, Math.min(width, Math.round(fraction * width)))
  return `[${"█".repeat(filled)}${"░".repeat(width - filled)}]`
}

/** The value at the given percentile (0..100) of sorted numbers, nearest-rank. */
export const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!

/** A two-column box table. */
export const table = (rows: ReadonlyArray<readonly [string, string]>): Array<string> => {
  const left = Math.max(...rows.map(([k]) => k.length))
  const right = Math.max(...rows.map(([, v]) => v.length))
  const bar = (l: string, m: string, r: string) =>
    `${l}${"─".repeat(left + 2)}${m}${"─".repeat(right + 2)}${r}`
  return [
    bar("┌", "┬", "┐"),
    ...rows.map(([k, v]) => `│ ${k.padEnd(left)} │ ${v.padStart(right)} │`),
    bar("└", "┴", "┘")
  ]
}

/**
 * The bearer's warnings (a failed refresh, with its backoff) become timeline lines; everything else the
 * libraries log is left out of the timeline. Log lines never carry a token.
 */
export const timelineLogger = (start: number, json: boolean) => {
  const out = makePrinter(json ? process.stderr : process.stdout)
  return Logger.make(({ annotations, logLevel, message }) => {
    if (LogLevel.lessThan(logLevel, LogLevel.Warning)) return
    const text = (Array.isArray(message) ? message : [message]).map(String).join(" ")
    const get = (key: string) => Option.getOrUndefined(HashMap.get(annotations, key))
    const reason = get("bearer.reason")
    const retryIn = Number(get("bearer.retryInMillis"))
    if (reason !== undefined && Number.isFinite(retryIn)) {
      const why =
        reason === "SourceTimeout"
          ? "no answer within the 1 s request timeout, the request is abandoned"
          : (/answered (\d+)/.exec(text)?.[0]?.replace("answered", "the token endpoint answered") ??
            String(reason))
      out.line(
        Date.now() - start,
        `${out.color.red("✖ refresh failed")}: ${why} · consecutive failures: ${String(get("bearer.consecutiveFailures"))} · next attempt in ${seconds(retryIn, 2)}`
      )
      return
    }
    out.line(Date.now() - start, out.color.yellow(`⚠ ${text}`))
  })
}
