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
 * Run `npm start -- --help` for the flags.
 */
import { FetchHttpClient, HttpClient } from "@effect/platform"
import {
  Clock,
  Duration,
  Effect,
  Fiber,
  HashMap,
  Layer,
  Logger,
  LogLevel,
  Metric,
  MetricState,
  Option,
  Redacted,
  Stream
} from "effect"
import {
  BearerHttpClient,
  OAuth2TokenSource,
  Receiver,
  RenewableBearer,
  Token
} from "effect-renewable-bearer"
import { parseArgs } from "node:util"
import { type EndpointFault, makeServers, type ServerEvent } from "./servers.js"
import { int, makePrinter, millis, percentile, progressBar, seconds, table } from "./timeline.js"

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

// ---- the bearer's options, and a fault plan that the bearer can absorb -----------------------------------

/**
 * Tokens here live seconds, not an hour. The bearer refreshes at half-life (instead of 0.9), so that, as with
 * an hour-long token, a good part of the lifetime is left to ride out a failing endpoint; the early-expiry
 * margin is half a second (client and server share one clock); and a hung token request is abandoned
 * after 1 s instead of 5 s. Backoff and jitter keep their defaults: 1 s, 1.5 s, 2.25 s, ... ± 20 %.
 */
const bearerOptions = {
  name: "demo",
  lifetimeSafeFraction: 0.5,
  expiryMargin: "500 millis",
  refreshRequestTimeout: "1 second"
} satisfies RenewableBearer.Options

/**
 * How many consecutive 503s the still-valid token can ride out: the refresh comes at 40-50 % of the lifetime
 * (jitter only makes it earlier), the token is served until `ttl - 0.5 s`, and the n-th retry comes at most
 * 1.2 × (1 + 1.5 + ... + 1.5^(n-1)) s after the first failure.
 */
const failuresToAbsorb = (ttlMillis: number): number => {
  const room = 0.5 * ttlMillis - 500 - 300
  let n = 1
  while (n < 3 && 1200 * ((Math.pow(1.5, n + 1) - 1) / 0.5) <= room) n++
  return n
}

type FaultKind = "fail" | "hang" | "revoke"

interface Fault {
  readonly kind: FaultKind
  readonly plannedAt: number
  readonly endpointFaults: ReadonlyArray<EndpointFault>
  armedAt?: number
  hits: number
  recoveredAt?: number
  staleServesAtArm: number
  unauthorizedAtArm: number
}

const describeFault = (fault: Fault): string => {
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

// ---- metrics -------------------------------------------------------------------------------------------

interface BearerCounters {
  readonly attempts: number
  readonly attemptFailures: number
  readonly hits: number
  readonly staleServes: number
  readonly misses: number
}

/** Reads the library's own counters for the bearer named `demo`. */
const readCounters: Effect.Effect<BearerCounters> = Effect.map(Metric.snapshot, (pairs) => {
  const counters = { attempts: 0, attemptFailures: 0, hits: 0, staleServes: 0, misses: 0 }
  for (const pair of pairs) {
    const tags = pair.metricKey.tags
    if (!tags.some((t) => t.key === "bearer" && t.value === bearerOptions.name)) continue
    if (!MetricState.isCounterState(pair.metricState)) continue
    const count = Number(pair.metricState.count)
    switch (pair.metricKey.name) {
      case "renewable_bearer_refresh_attempts_total":
        counters.attempts += count
        if (tags.some((t) => t.key === "result" && t.value === "failure")) counters.attemptFailures += count
        break
      case "renewable_bearer_cache_hits_total":
        counters.hits += count
        break
      case "renewable_bearer_cache_stale_serves_total":
        counters.staleServes += count
        break
      case "renewable_bearer_cache_misses_total":
        counters.misses += count
        break
    }
  }
  return counters
})

// ---- the demo ------------------------------------------------------------------------------------------

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

/** Pause of each worker between two requests, so the numbers stay readable and the CPU stays calm. */
const WORKER_PAUSE = Duration.millis(25)

export const run = (options: DemoOptions) =>
  Effect.gen(function* () {
    const out = makePrinter(options.json ? process.stderr : process.stdout)
    const { color: c } = out
    const start = yield* Clock.currentTimeMillis
    const deadline = start + options.durationMillis
    const elapsed = () => Date.now() - start
    const line = (text: string) => out.line(elapsed(), text)

    // Server events feed the fault bookkeeping and a few timeline lines.
    let current: Fault | undefined
    const onEvent = (event: ServerEvent) => {
      switch (event._tag) {
        case "Failed":
          if (current !== undefined) current.hits++
          return line(c.dim(`   ↳ token endpoint: answered ${event.status} (injected fault)`))
        case "Held":
          if (current !== undefined) current.hits++
          return line(c.dim("   ↳ token endpoint: holding the request, no answer (injected fault)"))
        default:
          return
      }
    }
    const servers = yield* makeServers({ ttlMillis: options.ttlMillis, onEvent })

    const failures = failuresToAbsorb(options.ttlMillis)
    const plan: Array<Fault> = (
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

    out.raw(c.bold("effect-renewable-bearer demo"))
    out.raw(
      `  token endpoint  ${servers.tokenUrl}  (OAuth 2.0 client credentials, tokens live ${seconds(options.ttlMillis)})`
    )
    out.raw(`  protected API   ${servers.apiUrl}  (answers 401 to a missing, expired or revoked token)`)
    out.raw(
      `  client          OAuth2TokenSource + RenewableBearer + BearerHttpClient, ${options.workers} workers`
    )
    out.raw(
      `  bearer options  lifetimeSafeFraction 0.5, expiryMargin 500 ms, refreshRequestTimeout 1 s (see demo/main.ts)`
    )
    out.raw(
      `  fault plan      ${plan.map((f) => `${seconds(f.plannedAt)} ${f.kind === "fail" ? `endpoint fails ×${failures}` : f.kind === "hang" ? "endpoint hangs" : "token revoked"}`).join(" · ")}`
    )
    out.raw(c.dim(`  running for ${seconds(options.durationMillis, 0)}; no token value is ever printed`))
    out.raw()

    // The client, exactly as the README builds it. `timed` only measures how long each request waited for
    // its token, so the summary can report it.
    const waits: Array<number> = []
    const timed = (bearer: RenewableBearer.RenewableBearer["Type"]) =>
      RenewableBearer.RenewableBearer.of({
        ...bearer,
        receiver: Effect.map(bearer.receiver, (receiver) => {
          const time = <E>(fetch: Effect.Effect<Token.Token, E>) =>
            Effect.map(Effect.timed(fetch), ([took, token]) => {
              waits.push(Duration.toMillis(took))
              return token
            })
          return Receiver.Receiver.of({
            ...receiver,
            fetch: time(receiver.fetch),
            fetchWith: (o) => time(receiver.fetchWith(o))
          })
        })
      })

    const BearerLive = RenewableBearer.layer(bearerOptions).pipe(
      Layer.provide(
        OAuth2TokenSource.layerClientCredentials({
          tokenUrl: servers.tokenUrl,
          clientId: servers.clientId,
          clientSecret: Redacted.make(servers.clientSecret)
        })
      )
    )
    const ApiClientLive = BearerHttpClient.layer().pipe(
      Layer.provide(
        Layer.effect(RenewableBearer.RenewableBearer, Effect.map(RenewableBearer.RenewableBearer, timed))
      ),
      Layer.provideMerge(BearerLive),
      Layer.provide(FetchHttpClient.layer)
    )

    // Counters of the workers.
    let requests = 0
    let succeeded = 0
    const failuresByKind: Record<string, number> = {}
    let tokensReceived = 0

    const client = Effect.gen(function* () {
      const http = yield* HttpClient.HttpClient
      const bearer = yield* RenewableBearer.RenewableBearer

      // Each new token the bearer caches, from its `changes` stream: only the lifetime is shown.
      yield* Effect.fork(
        Stream.runForEach(bearer.changes, (token) =>
          Effect.gen(function* () {
            tokensReceived++
            const now = yield* Clock.currentTimeMillis
            const lifetime = Duration.toMillis(Token.remainingLifetime(token, now))
            line(
              `${c.green("✔")} ${tokensReceived === 1 ? "first token" : `renewal #${tokensReceived - 1}`}: a new token, valid for ${seconds(lifetime)}`
            )
            if (current !== undefined && current.recoveredAt === undefined && servers.pending() === 0) {
              const fault = current
              if (fault.kind !== "revoke" && fault.hits < fault.endpointFaults.length) return
              fault.recoveredAt = now - start
              const counters = yield* readCounters
              const stale = counters.staleServes - fault.staleServesAtArm
              const unauthorized = servers.stats().apiUnauthorized - fault.unauthorizedAtArm
              const detail =
                fault.kind === "revoke"
                  ? `${int(unauthorized)} requests got 401 for the revoked token and were replayed with the new one`
                  : `${fault.hits} failed token request${fault.hits === 1 ? "" : "s"}; ${int(stale)} requests were served by the still-valid token meanwhile`
              line(`${c.green("✔ recovered")}: ${detail}`)
            }
          })
        )
      )

      // The workers: call the API until the deadline; any answer but 200, or any error, is a failure.
      const worker = Effect.gen(function* () {
        while ((yield* Clock.currentTimeMillis) < deadline) {
          const outcome = yield* http.get(servers.apiUrl).pipe(
            Effect.flatMap((response) =>
              Effect.as(response.text, response.status === 200 ? "ok" : `HTTP ${response.status}`)
            ),
            Effect.catchAll((error) => Effect.succeed(`${error._tag}: ${error.message}`))
          )
          requests++
          if (outcome === "ok") succeeded++
          else failuresByKind[outcome] = (failuresByKind[outcome] ?? 0) + 1
          yield* Effect.sleep(WORKER_PAUSE)
        }
      })

      // The fault plan: each fault at its time, but never before the previous one has recovered.
      const faults = Effect.gen(function* () {
        for (const fault of plan) {
          while (true) {
            const now = (yield* Clock.currentTimeMillis) - start
            // The bearer must hold a token, and the previous fault must be over: then the still-valid
            // token has its whole margin to ride this one out.
            const previousDone = current === undefined || current.recoveredAt !== undefined
            if (now >= fault.plannedAt && previousDone && tokensReceived > 0) break
            yield* Effect.sleep("100 millis")
          }
          const counters = yield* readCounters
          fault.armedAt = elapsed()
          fault.staleServesAtArm = counters.staleServes
          fault.unauthorizedAtArm = servers.stats().apiUnauthorized
          current = fault
          line(`${c.yellow("⚡ fault")}: ${describeFault(fault)}`)
          if (fault.kind === "revoke") servers.revokeCurrent()
          else servers.script(...fault.endpointFaults)
        }
      })

      // One heartbeat a second: requests per second, the progress bar, and what the bearer did.
      const heartbeat = Effect.gen(function* () {
        let lastRequests = 0
        let lastFailed = 0
        let lastStale = 0
        let lastUnauthorized = 0
        let lastWaits = 0
        for (let second = 1; start + second * 1000 <= deadline; second++) {
          yield* Effect.sleep(Duration.millis(Math.max(0, start + second * 1000 - Date.now())))
          const counters = yield* readCounters
          const failed = requests - succeeded
          const unauthorized = servers.stats().apiUnauthorized
          const newWaits = waits.slice(lastWaits)
          const slowest = newWaits.length === 0 ? 0 : Math.max(...newWaits)
          const notes: Array<string> = []
          if (counters.staleServes > lastStale)
            notes.push(`${int(counters.staleServes - lastStale)} served by the still-valid token`)
          if (unauthorized > lastUnauthorized)
            notes.push(`${int(unauthorized - lastUnauthorized)} × 401 replayed`)
          if (slowest >= 5) notes.push(`slowest wait for a token ${millis(slowest)}`)
          out.line(
            elapsed(),
            `${c.cyan(progressBar((second * 1000) / options.durationMillis))} ${int(requests - lastRequests).padStart(6)} req/s · total ${int(requests)} · failed ${failed === lastFailed && failed === 0 ? "0" : c.red(int(failed))}${notes.length === 0 ? "" : c.dim(` · ${notes.join(" · ")}`)}`
          )
          lastRequests = requests
          lastFailed = failed
          lastStale = counters.staleServes
          lastUnauthorized = unauthorized
          lastWaits = waits.length
        }
      })

      const faultFiber = yield* Effect.fork(faults)
      const heartbeatFiber = yield* Effect.fork(heartbeat)
      yield* Effect.all(
        Array.from({ length: options.workers }, () => worker),
        { concurrency: "unbounded" }
      )
      yield* Fiber.join(heartbeatFiber)
      yield* Fiber.interrupt(faultFiber)
      return yield* readCounters
    })

    const counters = yield* Effect.provide(client, ApiClientLive)
    const stats = servers.stats()
    const sorted = [...waits].sort((a, b) => a - b)
    const failed = requests - succeeded
    const summary: Summary = {
      ok: failed === 0 && requests > 0,
      durationSeconds: options.durationMillis / 1000,
      workers: options.workers,
      ttlSeconds: options.ttlMillis / 1000,
      requests,
      succeeded,
      failed,
      failures: failuresByKind,
      replayedAfter401: stats.apiUnauthorized,
      tokensReceived,
      renewals: Math.max(0, tokensReceived - 1),
      sourceCalls: counters.attempts,
      sourceFailures: counters.attemptFailures,
      tokenWaitMaxMillis: round(sorted.length === 0 ? 0 : sorted[sorted.length - 1]!),
      tokenWaitP99Millis: round(percentile(sorted, 99)),
      cacheHits: counters.hits,
      staleServes: counters.staleServes,
      cacheMisses: counters.misses,
      faults: plan.map((f) => ({
        kind: f.kind,
        armedAtSeconds: f.armedAt === undefined ? null : round(f.armedAt / 1000),
        recoveredAtSeconds: f.recoveredAt === undefined ? null : round(f.recoveredAt / 1000),
        endpointFaultsHit: f.hits
      }))
    }

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
        `${plan.filter((f) => f.armedAt !== undefined).length} / ${plan.filter((f) => f.recoveredAt !== undefined).length}`
      ]
    ]))
      out.raw(`  ${row}`)
    for (const [kind, count] of Object.entries(failuresByKind)) out.raw(c.red(`  failed: ${count} × ${kind}`))
    out.raw(
      summary.ok
        ? c.green(`PASS: no request failed.`)
        : c.red(`FAIL: ${int(summary.failed)} request${summary.failed === 1 ? "" : "s"} failed.`)
    )
    if (options.json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`)
    return summary
  }).pipe(Effect.scoped)

const round = (n: number) => Math.round(n * 100) / 100

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
