import { FileSystem } from "@effect/platform"
import { NodeFileSystem } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Config, ConfigProvider, Context, DateTime, Effect, Layer, Option, Redacted } from "effect"
import { RenewableBearer, TokenSource } from "effect-renewable-bearer"
import * as FileTokenSource from "../src/FileTokenSource.js"
import * as Fs from "node:fs"
import { fakeJwt } from "../support/loopback.js"

/** A fresh temporary directory, removed with the test's scope. */
const tempDir = Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeTempDirectoryScoped())

const write = (path: string, content: string) =>
  Effect.flatMap(FileSystem.FileSystem, (fs) => fs.writeFileString(path, content))

const fetchFrom = (options: FileTokenSource.Options | string) =>
  Effect.flatMap(Effect.orDie(FileTokenSource.make(options)), (source) => source.fetch)

describe("FileTokenSource", () => {
  it.scoped("reads the file, trimmed; an opaque token never expires", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      yield* write(`${dir}/token`, "  opaque-token-value\n\n")
      const token = yield* fetchFrom(`${dir}/token`)
      expect(Redacted.value(token.value)).toBe("opaque-token-value")
      expect(Option.isNone(token.expiresAt)).toBe(true)
    }).pipe(Effect.provide(NodeFileSystem.layer))
  )

  it.scoped("a JWT's exp claim becomes the expiration (decoded, not verified)", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const jwt = fakeJwt({ sub: "system:serviceaccount:prod:api", exp: 1_900_000_000, iat: 1_899_996_400 })
      yield* write(`${dir}/token`, `${jwt}\n`)
      const token = yield* fetchFrom(`${dir}/token`)
      expect(Redacted.value(token.value)).toBe(jwt)
      expect(token.expiresAt).toEqual(Option.some(DateTime.unsafeMake(1_900_000_000_000)))
    }).pipe(Effect.provide(NodeFileSystem.layer))
  )

  it.scoped("a JWT without exp, or with jwtExpiration off, never expires", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      yield* write(`${dir}/no-exp`, fakeJwt({ sub: "x" }))
      yield* write(`${dir}/exp`, fakeJwt({ sub: "x", exp: 1_900_000_000 }))
      const noExp = yield* fetchFrom(`${dir}/no-exp`)
      const ignored = yield* fetchFrom({ path: `${dir}/exp`, jwtExpiration: false })
      expect(Option.isNone(noExp.expiresAt)).toBe(true)
      expect(Option.isNone(ignored.expiresAt)).toBe(true)
    }).pipe(Effect.provide(NodeFileSystem.layer))
  )

  it.scoped("reads the file again on every fetch (the file is rotated on disk)", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const source = yield* FileTokenSource.make(`${dir}/token`)
      yield* write(`${dir}/token`, fakeJwt({ n: 1, exp: 1_900_000_000 }))
      const first = yield* source.fetch
      yield* write(`${dir}/token`, fakeJwt({ n: 2, exp: 1_900_003_600 }))
      const second = yield* source.fetch
      expect(Option.map(first.expiresAt, DateTime.toEpochMillis)).toEqual(Option.some(1_900_000_000_000))
      expect(Option.map(second.expiresAt, DateTime.toEpochMillis)).toEqual(Option.some(1_900_003_600_000))
      expect(Redacted.value(second.value)).toBe(fakeJwt({ n: 2, exp: 1_900_003_600 }))
    }).pipe(Effect.provide(NodeFileSystem.layer))
  )

  it.scoped("missing, empty and unreadable files are three distinct errors", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      yield* write(`${dir}/empty`, "")
      yield* write(`${dir}/blank`, " \n\t\n")
      const missing = yield* Effect.flip(fetchFrom(`${dir}/missing`))
      const empty = yield* Effect.flip(fetchFrom(`${dir}/empty`))
      const blank = yield* Effect.flip(fetchFrom(`${dir}/blank`))
      // A directory cannot be read as a file (permissions do not stop root, who may run this test).
      const unreadable = yield* Effect.flip(fetchFrom(dir))

      expect(missing._tag).toBe("TokenSourceError")
      expect([missing.code, missing.retryable, missing.message]).toEqual([
        "file_not_found",
        true,
        `Token file ${dir}/missing does not exist`
      ])
      expect([empty.code, empty.retryable, empty.message]).toEqual([
        "file_empty",
        true,
        `Token file ${dir}/empty is empty`
      ])
      expect(blank.code).toBe("file_empty")
      expect(unreadable.code).toBe("file_unreadable")
      expect(unreadable.retryable).toBe(false)
      expect(unreadable.message).toMatch(new RegExp(`^Token file ${dir} cannot be read \\(`))
    }).pipe(Effect.provide(NodeFileSystem.layer))
  )

  it.scoped("reads at most maxBytes (default 64 KiB): a larger file fails with file_too_large", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      expect(FileTokenSource.DEFAULT_MAX_BYTES).toBe(65_536)
      yield* write(`${dir}/exact`, "a".repeat(65_536))
      yield* write(`${dir}/large`, "a".repeat(65_537))
      yield* write(`${dir}/small`, "0123456789")
      expect(Redacted.value((yield* fetchFrom(`${dir}/exact`)).value)).toHaveLength(65_536)
      const large = yield* Effect.flip(fetchFrom(`${dir}/large`))
      expect([large._tag, large.code, large.retryable, large.message]).toEqual([
        "TokenSourceError",
        "file_too_large",
        false,
        `Token file ${dir}/large is larger than 65536 bytes (maxBytes); nothing more was read`
      ])
      expect(Redacted.value((yield* fetchFrom({ path: `${dir}/small`, maxBytes: 10 })).value)).toBe(
        "0123456789"
      )
      expect((yield* Effect.flip(fetchFrom({ path: `${dir}/small`, maxBytes: 9 }))).code).toBe(
        "file_too_large"
      )
    }).pipe(Effect.provide(NodeFileSystem.layer))
  )

  it.scoped.skipIf(!Fs.existsSync("/dev/zero"))(
    "an endless file (/dev/zero) fails at once with file_too_large; memory does not grow",
    () =>
      Effect.gen(function* () {
        const before = process.memoryUsage().rss
        for (let i = 0; i < 100; i++) {
          const error = yield* Effect.flip(fetchFrom("/dev/zero"))
          expect(error.code).toBe("file_too_large")
        }
        // 100 reads of 64 KiB + 1 byte each: a few MB at most, against gigabytes when the file is read whole.
        expect(process.memoryUsage().rss - before).toBeLessThan(50 * 1024 * 1024)
      }).pipe(Effect.provide(NodeFileSystem.layer))
  )

  it.effect("an option of the wrong type or out of range is an InvalidOptionsError, never a default", () =>
    Effect.gen(function* () {
      const message = (options: unknown) =>
        Effect.map(Effect.flip(FileTokenSource.make(options as FileTokenSource.Options)), (e) => [
          e._tag,
          e.message
        ])
      expect(yield* message({ path: "/t", jwtExpiration: "yes" })).toEqual([
        "InvalidOptionsError",
        'Invalid FileTokenSource option "jwtExpiration": expected a boolean, got "yes"'
      ])
      expect(yield* message({ path: "/t", maxBytes: "64k" })).toEqual([
        "InvalidOptionsError",
        'Invalid FileTokenSource option "maxBytes": expected a positive integer, got "64k"'
      ])
      expect((yield* message({ path: "/t", maxBytes: 0 }))[1]).toBe(
        'Invalid FileTokenSource option "maxBytes": expected a positive integer, got 0'
      )
      expect((yield* message({ path: 5 }))[1]).toBe(
        'Invalid FileTokenSource option "path": expected a non-empty string, got 5'
      )
      expect((yield* message(""))[1]).toBe(
        'Invalid FileTokenSource option "path": expected a non-empty string, got ""'
      )
    }).pipe(Effect.provide(NodeFileSystem.layer))
  )

  it.scoped("layerConfig reads the path from Config", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      yield* write(`${dir}/token`, "configured")
      const token = yield* Effect.flatMap(TokenSource.TokenSource, (s) => s.fetch).pipe(
        Effect.provide(FileTokenSource.layerConfig({ path: Config.string("TOKEN_FILE") })),
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["TOKEN_FILE", `${dir}/token`]])))
      )
      expect(Redacted.value(token.value)).toBe("configured")
    }).pipe(Effect.provide(NodeFileSystem.layer))
  )

  it.scopedLive("composed with RenewableBearerLive: a renewal reads the rotated file", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const path = `${dir}/token`
      const exp = Math.floor(Date.now() / 1000) + 3600
      yield* write(path, fakeJwt({ n: 1, exp }))
      const bearer = yield* Layer.build(
        RenewableBearer.RenewableBearerLive.pipe(Layer.provide(FileTokenSource.layer(path)))
      ).pipe(Effect.map(Context.get(RenewableBearer.RenewableBearer)))
      const first = yield* bearer.fetch()
      expect(Redacted.value(first.value)).toBe(fakeJwt({ n: 1, exp }))
      expect(Option.map(first.expiresAt, DateTime.toEpochMillis)).toEqual(Option.some(exp * 1000))

      yield* write(path, fakeJwt({ n: 2, exp: exp + 60 }))
      const renewed = yield* bearer.fetch({ renewRequired: true, timeout: "5 seconds" })
      expect(Redacted.value(renewed.value)).toBe(fakeJwt({ n: 2, exp: exp + 60 }))
    }).pipe(Effect.provide(NodeFileSystem.layer))
  )
})
