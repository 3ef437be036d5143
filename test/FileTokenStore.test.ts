import { NodeFileSystem } from "@effect/platform-node"
import * as FileSystem from "@effect/platform/FileSystem"
import { describe, expect, it } from "@effect/vitest"
import { Context, Duration, Effect, Layer, Logger, Option, Redacted } from "effect"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import { fileURLToPath } from "node:url"
import * as Path from "node:path"
import { RenewableBearer, TestTokenSource, Token } from "effect-renewable-bearer"
import * as FileTokenStore from "effect-renewable-bearer/FileTokenStore"
import {
  generationBounds,
  killedHolderRun,
  spawnWorker,
  tokenServer,
  type WorkerResult
} from "../support/processes.js"
import { nonRootUser } from "./utils/users.js"

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

    it.scopedLive("an existing directory is used as it is, never changed", () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        Fs.chmodSync(dir, 0o755)
        const store = yield* FileTokenStore.make({ directory: dir })
        yield* store.put("k", stored("s3cr3t"))
        expect(mode(dir)).toBe(0o755)
        expect(valueOf(yield* store.get("k"))).toEqual(Option.some("s3cr3t"))
      }).pipe(Effect.provide(NodeFileSystem.layer))
    )

    it.scopedLive(
      "a symbolic link as the directory is refused; its target is neither changed nor written",
      () =>
        Effect.gen(function* () {
          const base = yield* tempDir
          const target = Path.join(base, "target")
          Fs.mkdirSync(target, { mode: 0o755 })
          Fs.chmodSync(target, 0o755)
          Fs.symlinkSync(target, Path.join(base, "link"))
          const error = yield* Effect.flip(FileTokenStore.make({ directory: Path.join(base, "link") }))
          expect([error.operation, error.reason]).toEqual(["open", "Untrusted"])
          expect(error.message).toBe(
            `Token store open failed (Untrusted): refusing the store directory ${Path.join(base, "link")}: it is a symbolic link; it is never changed, fix it or choose another`
          )
          expect(mode(target)).toBe(0o755)
          expect(filesIn(target)).toEqual([])
        }).pipe(Effect.provide(NodeFileSystem.layer))
    )

    it.scopedLive("a directory writable by group or others is refused and left as it is", () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        for (const [bits, who] of [
          [0o777, "its group"],
          [0o770, "its group"],
          [0o702, "others"],
          [0o1777, "its group"]
        ] as const) {
          Fs.chmodSync(dir, bits)
          const error = yield* Effect.flip(FileTokenStore.make({ directory: dir }))
          expect([error.operation, error.reason]).toEqual(["open", "Untrusted"])
          expect(error.detail).toContain(
            `it is writable by ${who} (mode ${(bits & 0o777).toString(8).padStart(4, "0")})`
          )
          expect(Fs.statSync(dir).mode & 0o7777).toBe(bits)
          expect(filesIn(dir)).toEqual([])
        }
        Fs.chmodSync(dir, 0o700)
      }).pipe(Effect.provide(NodeFileSystem.layer))
    )

    it.scopedLive("a directory owned by another user is refused and left as it is", () =>
      Effect.gen(function* () {
        const uid = process.getuid?.()
        if (uid === undefined) return console.warn("SKIPPED: no user ids on this platform")
        // As root, hand a directory to another user; as anyone else, the root directory is someone else's.
        let dir = "/"
        if (uid === 0) {
          dir = yield* tempDir
          Fs.chownSync(dir, 65_534, 65_534)
        }
        const before = Fs.statSync(dir)
        const error = yield* Effect.flip(FileTokenStore.make({ directory: dir }))
        expect([error.operation, error.reason]).toEqual(["open", "Untrusted"])
        expect(error.detail).toContain(
          `it is owned by uid ${before.uid}, not by this process's user (uid ${uid})`
        )
        const after = Fs.statSync(dir)
        expect([after.uid, after.mode]).toEqual([before.uid, before.mode])
        if (uid === 0) expect(filesIn(dir)).toEqual([])
      }).pipe(Effect.provide(NodeFileSystem.layer))
    )

    it.scopedLive(
      "the layer with a refused directory: the bearer runs without the store and says why",
      () => {
        const lines: Array<string> = []
        const logger = Logger.make(({ logLevel, message }) => {
          lines.push(`${logLevel.label} ${Array.isArray(message) ? message.join(" ") : String(message)}`)
        })
        return Effect.gen(function* () {
          const dir = yield* tempDir
          Fs.chmodSync(dir, 0o777)
          const context = yield* Layer.build(
            RenewableBearer.RenewableBearerLive.pipe(
              Layer.provideMerge(
                TestTokenSource.layer([TestTokenSource.token("t1", { expiresIn: "1 hour" })])
              ),
              Layer.provide(FileTokenStore.layer({ directory: dir }))
            )
          )
          const token = yield* Context.get(context, RenewableBearer.RenewableBearer).fetch()
          expect(Redacted.value(token.value)).toBe("t1")
          expect(yield* Context.get(context, TestTokenSource.TestTokenSource).calls).toBe(1)
          expect(lines).toContainEqual(
            `WARN FileTokenStore: Token store open failed (Untrusted): refusing the store directory ${dir}: it is writable by its group (mode 0777); it is never changed, fix it or choose another. Bearers call their sources directly, without sharing tokens`
          )
          expect(
            lines.some((l) =>
              l.startsWith("WARN TokenStore: the store failed (get: Token store get failed (Untrusted)")
            )
          ).toBe(true)
          expect(Fs.statSync(dir).mode & 0o777).toBe(0o777)
          expect(filesIn(dir)).toEqual([])
          Fs.chmodSync(dir, 0o700)
        }).pipe(
          Effect.provide(NodeFileSystem.layer),
          Effect.provide(Logger.replace(Logger.defaultLogger, logger))
        )
      }
    )

    it.scopedLive(
      "store files are read without following symbolic links; a planted link or FIFO is an error",
      () =>
        Effect.gen(function* () {
          const dir = yield* tempDir
          const store = yield* FileTokenStore.make({ directory: dir })
          yield* store.put("k", stored("s3cr3t"))
          const [file] = filesIn(dir)
          const elsewhere = Path.join(yield* tempDir, "planted")
          Fs.writeFileSync(elsewhere, Fs.readFileSync(Path.join(dir, file)))
          Fs.rmSync(Path.join(dir, file))
          Fs.symlinkSync(elsewhere, Path.join(dir, file))
          const error = yield* Effect.flip(store.get("k"))
          expect([error.operation, error.reason]).toEqual(["get", "Failure"])
          expect(error.detail).toMatch(/^a store file is a symbolic link, refused/)
          // A put replaces the link itself (rename), never writes through it.
          yield* store.put("k", stored("renewed"))
          expect(Fs.lstatSync(Path.join(dir, file)).isFile()).toBe(true)
          expect(JSON.parse(Fs.readFileSync(elsewhere, "utf8")).value).toBe("s3cr3t")
          expect(valueOf(yield* store.get("k"))).toEqual(Option.some("renewed"))
          // A FIFO (it would block a plain read forever) is not a regular file.
          Fs.rmSync(Path.join(dir, file))
          if (ChildProcess.spawnSync("mkfifo", [Path.join(dir, file)]).status === 0) {
            const fifo = yield* Effect.flip(store.get("k"))
            expect(fifo.detail).toBe(`${Path.join(dir, file)} is not a regular file`)
          }
        }).pipe(Effect.provide(NodeFileSystem.layer))
    )

    it.scopedLive(
      "a record larger than maxRecordBytes: reading fails with TooLarge, writing refuses it",
      () =>
        Effect.gen(function* () {
          const dir = yield* tempDir
          expect(FileTokenStore.DEFAULT_MAX_RECORD_BYTES).toBe(65_536)
          const store = yield* FileTokenStore.make({ directory: dir })
          yield* store.put("k", stored("s3cr3t"))
          const [file] = filesIn(dir)
          Fs.writeFileSync(Path.join(dir, file), "x".repeat(10 * 1024 * 1024))
          const error = yield* Effect.flip(store.get("k"))
          expect([error.operation, error.reason, error.message]).toEqual([
            "get",
            "TooLarge",
            "Token store get failed (TooLarge): the record is 10485760 bytes, more than maxRecordBytes (65536); nothing more was read"
          ])
          const small = yield* FileTokenStore.make({ directory: dir, maxRecordBytes: 100 })
          const refused = yield* Effect.flip(small.put("other", stored("a".repeat(200))))
          expect([refused.operation, refused.reason]).toEqual(["put", "TooLarge"])
          expect(filesIn(dir)).toEqual([file])
          const invalid = yield* Effect.flip(
            FileTokenStore.make({ directory: dir, maxRecordBytes: "64k" as never })
          )
          expect(invalid.message).toBe(
            'Token store open failed (InvalidOptions): maxRecordBytes: expected an integer in [1, 1073741824], got "64k"'
          )
        }).pipe(Effect.provide(NodeFileSystem.layer))
    )

    it.scopedLive("a lock whose expiry lies beyond the lock TTL from now is stale: it is broken", () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const store = yield* FileTokenStore.make({ directory: dir })
        expect(yield* store.tryLock("k", "planted", Duration.seconds(10))).toBe(true)
        const lockFile = Path.join(
          dir,
          filesIn(dir).find((f) => f.endsWith(".lock"))!
        )
        const plant = (expiresAt: number) =>
          Fs.writeFileSync(lockFile, JSON.stringify({ v: 1, owner: "planted", expiresAt }))
        // Within the TTL: a live lock.
        plant(Date.now() + 9_000)
        expect(yield* store.tryLock("k", "me", Duration.seconds(10))).toBe(false)
        // A year ahead (a planted file, or a clock far ahead): broken at once, not after a year.
        plant(Date.now() + 365 * 24 * 3_600_000)
        expect(yield* store.tryLock("k", "me", Duration.seconds(10))).toBe(true)
        expect(JSON.parse(Fs.readFileSync(lockFile, "utf8")).owner).toBe("me")
        yield* store.unlock("k", "me")
        expect(filesIn(dir)).toEqual([])
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

  describe("as a real non-root user (a child process; as root, the user erb-store-test via setpriv)", () => {
    const user = nonRootUser()
    if (user._tag === "Unavailable")
      console.warn(`FileTokenStore: the tests as a non-root user are SKIPPED: ${user.why}`)
    const available = user._tag === "Available" ? user : undefined

    /** The scenario fixture bundled into a directory every user can read; removed at exit. */
    const bundle = Effect.promise(async () => {
      const esbuild = await import("esbuild")
      const outdir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "store-as-user-"))
      Fs.chmodSync(outdir, 0o755)
      process.once("exit", () => Fs.rmSync(outdir, { recursive: true, force: true }))
      const outfile = Path.join(outdir, "fileStoreAsUser.cjs")
      await esbuild.build({
        entryPoints: [fileURLToPath(new URL("./fixtures/fileStoreAsUser.ts", import.meta.url))],
        bundle: true,
        platform: "node",
        format: "cjs",
        target: "node20",
        outfile,
        logLevel: "silent"
      })
      Fs.chmodSync(outfile, 0o644)
      return outfile
    })

    const runAs = (scenario: string, dir: string) =>
      Effect.flatMap(bundle, (script) =>
        Effect.sync(() => {
          const prefix = available!.prefix
          const command = [...prefix, process.execPath, script, scenario, dir]
          const child = ChildProcess.spawnSync(command[0], command.slice(1), {
            encoding: "utf8",
            timeout: 20_000,
            cwd: Os.tmpdir()
          })
          const line = child.stdout.split("\n").find((l) => l.startsWith("RESULT "))
          if (line === undefined)
            throw new Error(`${scenario}: no result (exit ${child.status}): ${child.stderr}`)
          return JSON.parse(line.slice(7)) as Record<string, unknown>
        })
      )

    /** A directory in the shared temporary directory, owned by `uid`, removed with the scope. */
    const directoryOf = (uid: number, gid: number, mode: number) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "store-user-"))
          if (process.getuid?.() === 0) Fs.chownSync(dir, uid, gid)
          Fs.chmodSync(dir, mode)
          return dir
        }),
        (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
      )

    it.scopedLive.skipIf(available === undefined || process.getuid?.() !== 0)(
      "a root-owned directory: refused, never changed (no EPERM), the bearer runs without the store",
      () =>
        Effect.gen(function* () {
          const dir = yield* directoryOf(0, 0, 0o755)
          const result = yield* runAs("foreign", dir)
          expect(result.uid).toBe(available!.uid)
          expect(result.refused).toEqual({
            reason: "Untrusted",
            detail: `refusing the store directory ${dir}: it is owned by uid 0, not by this process's user (uid ${available!.uid}); it is never changed, fix it or choose another`
          })
          expect(result.token).toBe("from-the-source")
          expect(result.warnings).toContainEqual(
            expect.stringMatching(/^FileTokenStore: Token store open failed \(Untrusted\)/)
          )
          const after = Fs.statSync(dir)
          expect([after.uid, after.mode & 0o777, filesIn(dir)]).toEqual([0, 0o755, []])
        })
    )

    it.scopedLive.skipIf(available === undefined)(
      "its own directory: a round trip; a symbolic link and a world-writable directory refused; a far-future lock broken",
      () =>
        Effect.gen(function* () {
          const base = yield* directoryOf(available!.uid, available!.gid, 0o700)
          const result = yield* runAs("own", base)
          expect(result).toMatchObject({
            uid: available!.uid,
            roundTrip: "s3cr3t",
            createdMode: 0o700,
            symlink: { reason: "Untrusted", detail: expect.stringContaining("it is a symbolic link") },
            worldWritable: {
              reason: "Untrusted",
              detail: expect.stringContaining("writable by its group (mode 0777)")
            },
            openModeAfter: 0o777,
            farFutureLockTaken: true,
            stillThere: "s3cr3t"
          })
          // Nothing but the token file: no lock, guard or temporary file left behind.
          expect(result.filesLeft).toEqual([expect.stringMatching(/^[0-9a-f]{40}\.token$/)])
        })
    )

    it.scopedLive.skipIf(available === undefined || process.getuid?.() !== 0)(
      "disk full (a 64 KiB tmpfs): a failed write loses nothing and leaves no temporary file",
      () =>
        Effect.gen(function* () {
          const dir = yield* directoryOf(available!.uid, available!.gid, 0o700)
          const mounted = ChildProcess.spawnSync(
            "mount",
            [
              "-t",
              "tmpfs",
              "-o",
              `size=64k,mode=0700,uid=${available!.uid},gid=${available!.gid}`,
              "tmpfs",
              dir
            ],
            { encoding: "utf8" }
          )
          if (mounted.status !== 0) {
            console.warn(
              `FileTokenStore: the disk-full test is SKIPPED: cannot mount a tmpfs: ${mounted.stderr}`
            )
            return
          }
          yield* Effect.addFinalizer(() => Effect.sync(() => ChildProcess.spawnSync("umount", [dir])))
          const result = yield* runAs("full", dir)
          const token = expect.stringMatching(/^[0-9a-f]{40}\.token$/)
          expect(result).toMatchObject({
            uid: available!.uid,
            put: { reason: "Failure", detail: expect.stringContaining("ENOSPC") },
            afterFailedPut: "old",
            filesWhenFull: [token, "filler"],
            filesAfterLock: [token, "filler"],
            afterSpaceFreed: "new",
            filesAtEnd: [token]
          })
        })
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
          const stderr = yield* Effect.forEach(workers, (w) => w.stderr)
          for (const r of results) expect(r.warnings, stderr.join("\n")).toBe(0)
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
