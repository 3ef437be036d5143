/**
 * Case 1, the hot path: a fetch that finds a fresh cached token, run many times inside one Effect program.
 *
 * Each tinybench task runs one Effect program that performs the operation `K` times in an `Effect.whileLoop`
 * (the loop is the same for every task, so its cost is part of every figure, floor included). The machine is
 * shared, so the tasks run in several short rounds, in a rotating order; a task's figure is its fastest
 * round's median, which is the figure least disturbed by other processes.
 */
import * as v8 from "node:v8"
import { HttpClient, HttpClientRequest, HttpClientResponse } from "@effect/platform"
import { Clock, Data, Effect, Exit, MutableHashMap, Option, Ref, Scope } from "effect"
import { BearerHttpClient, KeyedBearer, RenewableBearer, Token, TokenSource } from "effect-renewable-bearer"
import { defaultFetchOptions, firstAttemptToken } from "../../src/internal/bearerHttpClient.js"
import { Bench } from "tinybench"
import { beats, equals, info, ratioAtMost, type Row } from "../report.js"
import { type BenchCase, countingClock, hasGc, HOUR, median, runQuiet } from "../support.js"

/** The original style: a JavaScript class whose `fetch()` returns a Promise, wrapped in `Effect.promise`. */
class PromiseTokenCache {
  private token: Token.Token | undefined
  private expiresAt = 0
  private inFlight: Promise<Token.Token> | undefined
  constructor(private readonly source: () => Promise<Token.Token>) {}
  async fetch(): Promise<Token.Token> {
    if (this.token !== undefined && Date.now() < this.expiresAt) return this.token
    this.inFlight ??= this.source().then((token) => {
      this.token = token
      this.expiresAt = Date.now() + HOUR / 2
      this.inFlight = undefined
      return token
    })
    return this.inFlight
  }
}

interface Task {
  readonly name: string
  readonly program: Effect.Effect<void, unknown>
  /** Whether the program completes synchronously (`Effect.runSync`); otherwise it runs with `runPromise`. */
  readonly sync: boolean
}

/** An Effect program that runs `body()` `times` times, in a loop that allocates nothing per step. */
const repeat = (times: number, body: () => Effect.Effect<unknown, unknown>): Effect.Effect<void, unknown> => {
  let i = 0
  const loop = Effect.whileLoop({
    while: () => i < times,
    body,
    step: () => {
      i++
    }
  })
  return Effect.suspend(() => {
    i = 0
    return loop
  })
}

const youngGeneration = () =>
  v8.getHeapSpaceStatistics().find((space) => space.space_name === "new_space")?.space_used_size ?? 0

/**
 * Bytes allocated per operation, approximately: the growth of the young generation over `times` operations,
 * right after a full collection; samples during which a scavenge ran (the space shrank) are dropped.
 */
const bytesPerOp = (program: Effect.Effect<void, unknown>, times: number): number => {
  const gc = (globalThis as { gc?: () => void }).gc!
  const samples: Array<number> = []
  for (let i = 0; i < 12; i++) {
    gc()
    const before = youngGeneration()
    Effect.runSync(program)
    const after = youngGeneration()
    if (after > before) samples.push((after - before) / times)
  }
  return median(samples)
}

export const hotPath: BenchCase = {
  id: "1",
  title: "Hot path: fetch finds a fresh cached token",
  run: async ({ smoke, log }) => {
    const perIteration = smoke ? 100 : 1_000
    const rounds = smoke ? 2 : 6
    const taskMillis = smoke ? 20 : 120
    const token = Token.make("hot", { expiresAt: Date.now() + HOUR })
    const source = TokenSource.fromToken(token)

    const scope = Effect.runSync(Scope.make())
    const bearer = await runQuiet(
      RenewableBearer.make().pipe(Effect.provideService(TokenSource.TokenSource, source), Scope.extend(scope))
    )
    await runQuiet(bearer.fetch())
    const receiver = await runQuiet(bearer.receiver)

    // A keyed bearer's key whose token is cached: `keyed.fetch(key)` with an equal key each time (a new
    // `Data` struct per request, as a caller that builds its key from the request would).
    const keyed = await runQuiet(
      KeyedBearer.make({ source: () => Effect.succeed(source) }).pipe(Scope.extend(scope))
    )
    const keyFor = (audience: string) => Data.struct({ audience })
    await runQuiet(keyed.fetch(keyFor("https://api.example.com")))
    // What a caller would write without it: a map of bearers by the same keys, looked up per request.
    const byHandMap = MutableHashMap.make([keyFor("https://api.example.com"), bearer] as const)
    const byHandKeyed = Effect.suspend(() =>
      Option.getOrThrow(MutableHashMap.get(byHandMap, keyFor("https://api.example.com"))).fetch()
    )

    // The floor: read a Ref and the Clock, and compare.
    const ref = Ref.unsafeMake({ usableUntil: Date.now() + HOUR })
    const floor = Effect.clockWith((clock) =>
      Effect.map(Ref.get(ref), (state) => clock.unsafeCurrentTimeMillis() < state.usableUntil)
    )

    const promiseCache = new PromiseTokenCache(() => Promise.resolve(token))
    await promiseCache.fetch()
    const viaPromise = Effect.promise(() => promiseCache.fetch())

    const [cachedWithTtl] = await runQuiet(Effect.cachedInvalidateWithTTL(source.fetch, "1 hour"))
    await runQuiet(cachedWithTtl)

    // BearerHttpClient's token step for one request, as the client runs it with its default options (one
    // constant object, a 30-second timeout); a receiver comes in only when a 401 asks for a retry.
    const perRequest = firstAttemptToken(bearer, defaultFetchOptions)

    // A whole request through the authorized client, default options, over an inner client that answers 200
    // at once with a constant response (no I/O, no span); against the same inner client given a token from
    // bearer.fetch() by hand. The difference is everything the client adds per request, token path included.
    const request = HttpClientRequest.get("http://127.0.0.1/hot")
    const answered = HttpClientResponse.fromWeb(request, new Response(null, { status: 200 }))
    const inner = HttpClient.makeWith(
      (effect: Effect.Effect<HttpClientRequest.HttpClientRequest>) => Effect.as(effect, answered),
      Effect.succeed
    )
    const authorized = await runQuiet(
      BearerHttpClient.authorize(inner).pipe(Effect.provideService(RenewableBearer.RenewableBearer, bearer))
    )
    const viaClient = authorized.execute(request)
    const byHand = Effect.flatMap(bearer.fetch(), (token) =>
      inner.execute(HttpClientRequest.bearerToken(request, token.value))
    )

    const tasks: ReadonlyArray<Task> = [
      { name: "floor", program: repeat(perIteration, () => floor), sync: true },
      { name: "bearer.fetch()", program: repeat(perIteration, () => bearer.fetch()), sync: true },
      { name: "receiver.fetch", program: repeat(perIteration, () => receiver.fetch), sync: true },
      {
        name: "keyed.fetch(key)",
        program: repeat(perIteration, () => keyed.fetch(keyFor("https://api.example.com"))),
        sync: true
      },
      { name: "map of bearers by hand", program: repeat(perIteration, () => byHandKeyed), sync: true },
      { name: "BearerHttpClient token path", program: repeat(perIteration, () => perRequest), sync: true },
      { name: "BearerHttpClient request", program: repeat(perIteration, () => viaClient), sync: true },
      { name: "inner client + bearer.fetch()", program: repeat(perIteration, () => byHand), sync: true },
      { name: "Effect.promise(cache.fetch())", program: repeat(perIteration, () => viaPromise), sync: false },
      {
        name: "Effect.cachedInvalidateWithTTL",
        program: repeat(perIteration, () => cachedWithTtl),
        sync: false
      }
    ]

    // Nanoseconds per operation, per task: the median iteration of each round.
    const perRound = new Map<string, Array<number>>(tasks.map((task) => [task.name, []]))
    for (let round = 0; round < rounds; round++) {
      const bench = new Bench({
        time: taskMillis,
        warmupTime: taskMillis / 4,
        iterations: 4,
        warmupIterations: 2,
        throws: true
      })
      for (let i = 0; i < tasks.length; i++) {
        const task = tasks[(i + round) % tasks.length]!
        bench.add(
          task.name,
          task.sync
            ? () => {
                Effect.runSync(task.program)
              }
            : () => Effect.runPromise(task.program)
        )
      }
      await bench.run()
      for (const task of bench.tasks) {
        perRound.get(task.name)!.push((median(task.result!.latency.samples) * 1e6) / perIteration)
      }
      log(`  round ${round + 1}/${rounds}`)
    }
    const ns = (name: string) => Math.min(...perRound.get(name)!)

    // No timer on the hot path: every sleep (so every timer) an Effect arms goes through the fiber's Clock.
    const fetches = smoke ? 1_000 : 100_000
    const counting = countingClock(Clock.make())
    Effect.runSync(
      Effect.withClock(
        Effect.zipRight(
          repeat(fetches, () => bearer.fetch()),
          repeat(fetches, () => receiver.fetch)
        ),
        counting.clock
      )
    )

    const rows: Array<Row> = [
      info("floor: Ref.get + Clock + compare", "ns/op", ns("floor")),
      ratioAtMost("bearer.fetch()", "ns/op", ns("bearer.fetch()"), ns("floor"), 1.25),
      ratioAtMost("receiver.fetch (counts a trial)", "ns/op", ns("receiver.fetch"), ns("floor"), 1.5),
      ratioAtMost(
        "keyed.fetch(key), token cached, an equal key built per call, vs a map of bearers by hand",
        "ns/op",
        ns("keyed.fetch(key)"),
        ns("map of bearers by hand"),
        1.5
      ),
      ratioAtMost(
        "BearerHttpClient token path per request (30 s timeout; a receiver only after a 401) vs bearer.fetch()",
        "ns/op",
        ns("BearerHttpClient token path"),
        ns("bearer.fetch()"),
        1.5
      ),
      info(
        "BearerHttpClient whole request (inner client answers at once) vs inner client + bearer.fetch()",
        "ns/op",
        ns("BearerHttpClient request"),
        ns("inner client + bearer.fetch()")
      ),
      info("Effect.promise(JS cache.fetch())", "ns/op", ns("Effect.promise(cache.fetch())"), ns("floor")),
      beats(
        "bearer.fetch() vs Effect.promise baseline",
        "ns/op",
        ns("bearer.fetch()"),
        ns("Effect.promise(cache.fetch())")
      ),
      info("Effect.cachedInvalidateWithTTL hit", "ns/op", ns("Effect.cachedInvalidateWithTTL"), ns("floor")),
      equals(
        `timers armed by ${fetches.toLocaleString("en-US")} fetches + receiver fetches`,
        "",
        counting.sleeps(),
        0
      )
    ]
    if (hasGc()) {
      const times = 2_000
      const floorBytes = bytesPerOp(
        repeat(times, () => floor),
        times
      )
      rows.push(
        info("floor allocation", "B/op", floorBytes),
        ratioAtMost(
          "bearer.fetch() allocation",
          "B/op",
          bytesPerOp(
            repeat(times, () => bearer.fetch()),
            times
          ),
          floorBytes,
          1
        ),
        ratioAtMost(
          "receiver.fetch allocation",
          "B/op",
          bytesPerOp(
            repeat(times, () => receiver.fetch),
            times
          ),
          floorBytes,
          1
        )
      )
    }

    await Effect.runPromise(Scope.close(scope, Exit.void))
    return {
      rows,
      notes: [
        `ns/op: ${perIteration} operations per Effect program in an Effect.whileLoop, ${rounds} rounds of ` +
          `${taskMillis} ms per task (tinybench), fastest round's median; the loop's own cost is in every figure.`,
        "B/op: young-generation growth per operation after a full GC (V8), Effect's interpreter included; " +
          "the floor allocates a closure and two effects per call, the hot path none of its own.",
        "BearerHttpClient: default options (a 30-second fetch timeout); the token path is what the client runs " +
          "per request to get its token; the whole-request row adds the rest of the client (the Authorization " +
          "header, the response wrapper) over an inner client that answers at once."
      ]
    }
  }
}
