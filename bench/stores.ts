/**
 * Benchmark: source calls per token lifetime for a fleet of real processes, each running a renewable bearer
 * against one loopback token endpoint, with no store (every process renews for itself), a shared file
 * store, and (when REDIS_URL answers) a shared Redis store.
 *
 *   npx tsx bench/stores.ts                   # 50 processes, lifetime 1.5 s, 4.5 s per case
 *   BENCH_PROCESSES=20 npx tsx bench/stores.ts
 *
 * Prints a table and, last, one `STORES_BENCH {json}` line. It runs on its own (`npm run bench:stores`), not
 * from bench/main.ts: it starts real processes and needs a minute.
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import { redisAnswers, spawnWorker, tokenServer, type Worker, workerCommand } from "../support/processes.js"

/** One case of the benchmark. */
interface Row {
  readonly store: "none" | "file" | "redis"
  readonly processes: number
  readonly lifetimeMillis: number
  readonly runMillis: number
  readonly sourceCalls: number
  readonly callsPerLifetime: number
  readonly maxConcurrentCalls: number
  readonly failedFetches: number
  readonly fetches: number
}

interface Options {
  readonly processes?: number
  readonly lifetimeMillis?: number
  readonly runMillis?: number
  readonly redisUrl?: string | undefined
  /** The whole run stays within this; a case that would not fit is skipped, and says so. Default 58 s. */
  readonly budgetMillis?: number
}

type Resolved = Required<Omit<Options, "redisUrl">> & { readonly redisUrl: string | undefined }

/** A case's wall time beyond its run: settling, closing, the stragglers. */
const CASE_OVERHEAD_MILLIS = 3_000

/** One case on an already loaded fleet: a fresh token endpoint, a fresh directory or key prefix. */
const runCase = (store: Row["store"], workers: ReadonlyArray<Worker>, options: Resolved) =>
  Effect.scoped(
    Effect.gen(function* () {
      const server = yield* tokenServer({ lifetimeMillis: options.lifetimeMillis, delayMillis: 50 })
      const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "bench-stores-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true })))
      const settings = {
        TOKEN_URL: server.url,
        STORE: store,
        STORE_DIR: dir,
        REDIS_URL: options.redisUrl,
        STORE_PREFIX: `effect-renewable-bearer:bench:${Date.now().toString(36)}:`,
        RUN_MILLIS: String(options.runMillis),
        FETCH_EVERY_MILLIS: "250",
        REFRESH_TIMEOUT_MILLIS: "4000",
        REDIS_CONNECT_TIMEOUT_MILLIS: "3000",
        REDIS_OPERATION_TIMEOUT_MILLIS: "1000"
      }
      yield* Effect.forEach(workers, (w) => w.go(settings), { discard: true })
      const results = yield* Effect.forEach(workers, (w) => w.result, { concurrency: "unbounded" })
      const calls = yield* server.calls
      return {
        store,
        processes: workers.length,
        lifetimeMillis: options.lifetimeMillis,
        runMillis: options.runMillis,
        sourceCalls: calls.length,
        callsPerLifetime: Math.round((calls.length / (options.runMillis / options.lifetimeMillis)) * 10) / 10,
        maxConcurrentCalls: yield* server.maxInFlight,
        failedFetches: results.reduce((n, r) => n + r.failures, 0),
        fetches: results.reduce((n, r) => n + r.fetches, 0)
      } satisfies Row
    })
  )

/**
 * Runs every case on one fleet of processes, loaded once (loading 50 processes costs more than a case):
 * no store, the file store, and Redis if `redisUrl` (default: REDIS_URL) answers.
 */
const run = (options: Options = {}): Promise<ReadonlyArray<Row>> =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const redisUrl = options.redisUrl ?? process.env.REDIS_URL
        const resolved: Resolved = {
          processes: options.processes ?? 50,
          lifetimeMillis: options.lifetimeMillis ?? 1_500,
          runMillis: options.runMillis ?? 4_500,
          budgetMillis: options.budgetMillis ?? 58_000,
          redisUrl
        }
        const started = Date.now()
        const left = () => resolved.budgetMillis - (Date.now() - started)
        yield* Effect.promise(workerCommand) // bundle once
        const spawned = yield* Effect.forEach(
          Array.from({ length: resolved.processes }, (_, i) => `b${i + 1}`),
          (id) => spawnWorker(id, { WAIT_FOR_GO: "1" })
        )
        // Loading is bounded too: on a starved machine the fleet is whatever loaded in half the budget.
        const loaded = yield* Effect.forEach(
          spawned,
          (w) =>
            Effect.timeoutTo(w.loaded, {
              duration: left() / 2,
              onSuccess: () => true,
              onTimeout: () => false
            }),
          { concurrency: "unbounded" }
        )
        const workers = spawned.filter((_, i) => loaded[i])
        yield* Effect.forEach(
          spawned.filter((_, i) => !loaded[i]),
          (w) => w.kill()
        )
        console.log(
          `${workers.length} of ${resolved.processes} processes loaded in ${Date.now() - started} ms`
        )
        const rows: Array<Row> = []
        const cases: Array<Row["store"]> = ["none", "file"]
        if (redisUrl !== undefined && (yield* Effect.promise(() => redisAnswers(redisUrl))))
          cases.push("redis")
        else console.log("redis case skipped: REDIS_URL is not set or no Redis answers there")
        for (const store of cases) {
          if (left() < resolved.runMillis + CASE_OVERHEAD_MILLIS) {
            console.log(`${store} case skipped: it would not fit in the ${resolved.budgetMillis} ms budget`)
            continue
          }
          rows.push(yield* runCase(store, workers, resolved))
        }
        return rows
      })
    )
  )

if (process.argv[1] !== undefined && Path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const started = Date.now()
  run(process.env.BENCH_PROCESSES ? { processes: Number(process.env.BENCH_PROCESSES) } : {}).then(
    (rows) => {
      console.table(rows)
      const none = rows.find((r) => r.store === "none")
      for (const row of rows)
        if (row.store !== "none" && none !== undefined)
          console.log(
            `${row.store}: ${row.callsPerLifetime} source calls per lifetime vs ${none.callsPerLifetime} without a store ` +
              `(${Math.round(none.sourceCalls / Math.max(1, row.sourceCalls))}x fewer)`
          )
      console.log(`STORES_BENCH ${JSON.stringify({ rows, wallMillis: Date.now() - started })}`)
      process.exit(0)
    },
    (error) => {
      console.error(error)
      process.exit(1)
    }
  )
}
