import { NodeFileSystem } from "@effect/platform-node"
import * as FileSystem from "@effect/platform/FileSystem"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Option, Redacted } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { Token } from "effect-renewable-bearer"
import * as FileTokenStore from "effect-renewable-bearer/FileTokenStore"
import {
  generationBounds,
  killedHolderRun,
  spawnWorker,
  tokenServer,
  type WorkerResult
} from "./fixtures/processes.js"

const tempDir = Effect.flatMap(FileSystem.FileSystem, (fs) =>
  fs.makeTempDirectoryScoped({ prefix: "token-store-" })
)
const stored = (value: string, expiresAt = Date.now() + 3_600_000) => ({
  token: Token.make(value, { expiresAt }),
  writtenAt: Date.now()
})
const valueOf = (s: Option.Option<{ readonly token: Token.Token }>) =>
  Option.map(s, (x) => Redacted.value(x.token.value))
const mode = (path: string) => Fs.statSync(path).mode & 0o777
const filesIn = (dir: string) => Fs.readdirSync(dir).sort()

describe("FileTokenStore", () => {
  describe("one process", () => {
    it.scopedLive("creates an owner-only directory and owner-only files; a token round-trips", () =>
      Effect.gen(function* () {
        const dir = Path.join(yield* tempDir, "nested", "tokens")
        const store = yield* FileTokenStore.make({ directory: dir })
        expect(mode(dir)).toBe(0o700)
        expect(yield* store.get("k")).toEqual(Option.none())
        const expiresAt = Date.now() + 60_000
        yield* store.put("k", stored("s3cr3t", expiresAt))
        const back = yield* store.get("k")
        expect(valueOf(back)).toEqual(Option.some("s3cr3t"))
        expect(Option.map(back, (s) => Token.remainingLifetime(s.token, expiresAt))).toEqual(
          Option.some(Duration.zero)
        )
        const files = filesIn(dir)
        expect(files).toHaveLength(1) // no temporary file left behind
        expect(mode(Path.join(dir, files[0]))).toBe(0o600)
        // A token without expiration is stored as such.
        yield* store.put("forever", { token: Token.make("f"), writtenAt: 1 })
        expect(Option.map(yield* store.get("forever"), (s) => Option.isNone(s.token.expiresAt))).toEqual(
          Option.some(true)
        )
      }).pipe(Effect.provide(NodeFileSystem.layer))
    )

    it.scopedLive("an existing directory is made owner-only", () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        Fs.chmodSync(dir, 0o755)
        yield* FileTokenStore.make({ directory: dir })
        expect(mode(dir)).toBe(0o700)
      }).pipe(Effect.provide(NodeFileSystem.layer))
    )

    it.scopedLive("a corrupt, truncated, foreign or future-version file reads as no token", () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const store = yield* FileTokenStore.make({ directory: dir })
        yield* store.put("k", stored("s3cr3t"))
        const [file] = filesIn(dir)
        const path = Path.join(dir, file)
        const good = Fs.readFileSync(path, "utf8")
        for (const bad of [
          "",
          good.slice(0, good.length / 2),
          "not json at all",
          "null",
          JSON.stringify({ ...JSON.parse(good), v: 2 }),
          JSON.stringify({ ...JSON.parse(good), value: "" }),
          JSON.stringify({ ...JSON.parse(good), expiresAt: "soon" }),
          "\u0000\u0001\u0002"
        ]) {
          Fs.writeFileSync(path, bad)
          expect(yield* store.get("k")).toEqual(Option.none())
        }
        Fs.writeFileSync(path, good)
        expect(valueOf(yield* store.get("k"))).toEqual(Option.some("s3cr3t"))
      }).pipe(Effect.provide(NodeFileSystem.layer))
    )

    it.scopedLive("encryption at rest: same key reads, wrong key or no key reads nothing", () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const key = Redacted.make("0123456789abcdef0123456789abcdef")
        const writer = yield* FileTokenStore.make({ directory: dir, encryptionKey: key })
        const reader = yield* FileTokenStore.make({ directory: dir, encryptionKey: key })
        const wrong = yield* FileTokenStore.make({
          directory: dir,
          encryptionKey: Redacted.make("another key")
        })
        const clear = yield* FileTokenStore.make({ directory: dir })
        yield* writer.put("k", stored("s3cr3t"))
        expect(valueOf(yield* reader.get("k"))).toEqual(Option.some("s3cr3t"))
        expect(yield* wrong.get("k")).toEqual(Option.none())
        expect(yield* clear.get("k")).toEqual(Option.none())
        const content = Fs.readFileSync(Path.join(dir, filesIn(dir)[0]), "utf8")
        expect(content).not.toContain("s3cr3t")
        expect(JSON.parse(content)).toMatchObject({ v: 1, alg: "A256GCM" })
        // A sealed record is bound to its key: copied under another key it does not open.
        Fs.copyFileSync(Path.join(dir, filesIn(dir)[0]), Path.join(dir, "copy"))
        yield* writer.put("other", stored("x"))
        const otherFile = filesIn(dir).find((f) => f !== "copy" && f !== filesIn(dir)[0])
        if (otherFile !== undefined) Fs.copyFileSync(Path.join(dir, "copy"), Path.join(dir, otherFile))
        expect(yield* reader.get("other")).toEqual(Option.none())
        // A clear record is not accepted by an encrypting store either.
        yield* clear.put("k", stored("clear"))
        expect(yield* reader.get("k")).toEqual(Option.none())
      }).pipe(Effect.provide(NodeFileSystem.layer))
    )

    it.scopedLive("the lock: exclusive, released only by its owner, broken once expired or corrupt", () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const a = yield* FileTokenStore.make({ directory: dir })
        const b = yield* FileTokenStore.make({ directory: dir })
        expect(yield* a.tryLock("k", "owner-a", Duration.seconds(10))).toBe(true)
        expect(yield* b.tryLock("k", "owner-b", Duration.seconds(10))).toBe(false)
        // Never granted twice, not even to its owner (as Redis SET NX).
        expect(yield* a.tryLock("k", "owner-a", Duration.seconds(10))).toBe(false)
        yield* b.unlock("k", "owner-b") // not b's: nothing happens
        expect(yield* b.tryLock("k", "owner-b", Duration.seconds(10))).toBe(false)
        const lockFile = filesIn(dir).find((f) => f.endsWith(".lock"))!
        expect(mode(Path.join(dir, lockFile))).toBe(0o600)
        expect(JSON.parse(Fs.readFileSync(Path.join(dir, lockFile), "utf8"))).toMatchObject({
          owner: "owner-a"
        })
        yield* a.unlock("k", "owner-a")
        expect(filesIn(dir)).toEqual([])
        // Expired: a dead owner's lock is broken by the next taker.
        expect(yield* a.tryLock("k", "dead", Duration.millis(50))).toBe(true)
        yield* Effect.sleep("80 millis")
        expect(yield* b.tryLock("k", "owner-b", Duration.seconds(10))).toBe(true)
        yield* b.unlock("k", "owner-b")
        // Corrupt (say, a truncated write by some other tool): broken too.
        Fs.writeFileSync(Path.join(dir, lockFile), "{")
        expect(yield* b.tryLock("k", "owner-b", Duration.seconds(10))).toBe(true)
        yield* b.unlock("k", "owner-b")
        expect(filesIn(dir)).toEqual([])
      }).pipe(Effect.provide(NodeFileSystem.layer))
    )

    it.scopedLive("50 concurrent takers over 5 store instances: exactly one gets the lock", () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const stores = yield* Effect.forEach([1, 2, 3, 4, 5], () => FileTokenStore.make({ directory: dir }))
        // An expired lock to break makes the race harder.
        yield* stores[0].tryLock("k", "dead", Duration.millis(1))
        yield* Effect.sleep("5 millis")
        const results = yield* Effect.forEach(
          Array.from({ length: 50 }, (_, i) => i),
          (i) => stores[i % 5].tryLock("k", `owner-${i}`, Duration.seconds(10)),
          { concurrency: "unbounded" }
        )
        expect(results.filter(Boolean)).toHaveLength(1)
        expect(filesIn(dir).filter((f) => !f.endsWith(".lock"))).toEqual([])
      }).pipe(Effect.provide(NodeFileSystem.layer))
    )
  })

  describe("real processes sharing one directory and one token endpoint", () => {
    const LIFETIME = 1_500

    it.scopedLive(
      "4 processes over 3+ token lifetimes: one source call per generation, never two at once",
      () =>
        Effect.gen(function* () {
          const dir = yield* tempDir
          const server = yield* tokenServer({ lifetimeMillis: LIFETIME, delayMillis: 50 })
          const env = { TOKEN_URL: server.url, STORE: "file", STORE_DIR: dir, RUN_MILLIS: "5000" }
          const workers = yield* Effect.forEach(["w1", "w2", "w3", "w4"], (id) => spawnWorker(id, env))
          const results: ReadonlyArray<WorkerResult> = yield* Effect.forEach(workers, (w) => w.result, {
            concurrency: "unbounded"
          })
          const calls = yield* server.calls
          const window = Math.max(...results.map((r) => r.startedAt + 5_000)) - calls[0].at
          const bounds = generationBounds(window, LIFETIME)
          const gaps = calls.slice(1).map((c, i) => c.at - calls[i].at)
          console.log(
            `file store, 4 processes, ${window} ms, lifetime ${LIFETIME} ms: ${calls.length} source calls ` +
              `(allowed ${bounds.min}..${bounds.max}), ` +
              `gaps ${gaps.join(", ")} ms`
          )
          for (const r of results) {
            expect(r.failures, r.errors.join("; ")).toBe(0)
            expect(r.expired).toBe(0)
            expect(r.fetches).toBeGreaterThan(20)
          }
          expect(calls.length).toBeGreaterThanOrEqual(bounds.min)
          expect(calls.length).toBeLessThanOrEqual(bounds.max)
          expect(yield* server.maxInFlight).toBe(1)
          // Every call was made under the lock, after the store was found without a newer token: a fallback
          // (store failure, or a lock held too long) would have logged a warning.
          for (const r of results) expect(r.warnings).toBe(0)
        }).pipe(Effect.provide(NodeFileSystem.layer)),
      25_000
    )

    it.scopedLive(
      "a process killed while holding the lock delays another by at most the wait, with one more call",
      () =>
        Effect.gen(function* () {
          const dir = yield* tempDir
          // refreshRequestTimeout 3 s: lock ttl 3 s, wait 2.25 s. Two processes, so that the count is exact: the
          // survivor either gives up waiting and calls the source itself, or takes the expired lock over.
          const { first, results, calls } = yield* killedHolderRun("file store", ["w1", "w2"], {
            STORE: "file",
            STORE_DIR: dir,
            RUN_MILLIS: "4500",
            REFRESH_TIMEOUT_MILLIS: "3000"
          })
          expect(calls.length).toBe(2) // the hung call of the dead holder, and the survivor's
          for (const r of results) {
            expect(r.failures, r.errors.join("; ")).toBe(0)
            // Never stalled longer than the wait, counted from its own start; but it did wait for the holder.
            expect(r.firstTokenAt! - r.startedAt).toBeLessThanOrEqual(2_250 + 400)
            expect(r.firstTokenAt! - first.at).toBeGreaterThanOrEqual(2_250 - 200)
          }
        }).pipe(Effect.provide(NodeFileSystem.layer)),
      25_000
    )
  })
})
