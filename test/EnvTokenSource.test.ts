import { describe, expect, it } from "@effect/vitest"
import {
  Config,
  ConfigProvider,
  ConfigProviderPathPatch,
  Effect,
  HashSet,
  Layer,
  Option,
  Redacted
} from "effect"
import { RenewableBearer, TokenSource } from "effect-renewable-bearer"
import * as EnvTokenSource from "../src/EnvTokenSource.js"

const provider = (entries: Record<string, string>) => ConfigProvider.fromMap(new Map(Object.entries(entries)))

const fetchWith = <E>(source: Effect.Effect<TokenSource.TokenSource["Type"], E>) =>
  Effect.flatMap(Effect.orDie(source), (s) => s.fetch)

describe("EnvTokenSource", () => {
  it.effect("reads the variable through Config, trimmed, as a token that never expires", () =>
    Effect.gen(function* () {
      const token = yield* fetchWith(EnvTokenSource.make("API_TOKEN")).pipe(
        Effect.withConfigProvider(provider({ API_TOKEN: "  s3cr3t-env-value\n" }))
      )
      expect(Redacted.value(token.value)).toBe("s3cr3t-env-value")
      expect(Option.isNone(token.expiresAt)).toBe(true)
      expect(String(token)).not.toContain("s3cr3t")
    })
  )

  it.effect("reads the variable again on every fetch, with the provider current when it was built", () =>
    Effect.gen(function* () {
      const env: Record<string, string> = { API_TOKEN: "first" }
      // A provider that reads `env` at each lookup, as the default one reads process.env.
      const live = ConfigProvider.fromFlat(
        ConfigProvider.makeFlat({
          load: (path, primitive) =>
            Effect.flatMap(primitive.parse(env[path.join(".")] ?? ""), (value) => Effect.succeed([value])),
          enumerateChildren: () => Effect.succeed(HashSet.empty<string>()),
          patch: ConfigProviderPathPatch.empty
        })
      )
      const source = yield* EnvTokenSource.make("API_TOKEN").pipe(Effect.withConfigProvider(live))
      // Fetching under another provider changes nothing: the source keeps the one it was built with.
      const first = yield* source.fetch.pipe(Effect.withConfigProvider(provider({ API_TOKEN: "other" })))
      env.API_TOKEN = "second"
      const second = yield* source.fetch
      expect([Redacted.value(first.value), Redacted.value(second.value)]).toEqual(["first", "second"])
    })
  )

  it.effect("a name that is not a non-empty string is an InvalidOptionsError", () =>
    Effect.gen(function* () {
      for (const [name, detail] of [
        ["", '""'],
        [42, "42"],
        [undefined, "undefined"]
      ] as const) {
        const error = yield* Effect.flip(EnvTokenSource.make(name as string))
        expect(error.message).toBe(
          `Invalid EnvTokenSource option "name": expected a non-empty string, got ${detail}`
        )
      }
    })
  )

  it.effect("a missing variable fails with env_missing, naming the variable, permanent", () =>
    Effect.gen(function* () {
      const error = yield* fetchWith(EnvTokenSource.make("API_TOKEN")).pipe(
        Effect.withConfigProvider(provider({ OTHER: "x" })),
        Effect.flip
      )
      expect(error._tag).toBe("TokenSourceError")
      expect(error.code).toBe("env_missing")
      expect(error.retryable).toBe(false)
      expect(error.message).toContain("API_TOKEN")
    })
  )

  it.effect("an empty or blank variable fails with env_empty, naming the variable", () =>
    Effect.gen(function* () {
      for (const value of ["", "   \n"]) {
        const error = yield* fetchWith(EnvTokenSource.make("API_TOKEN")).pipe(
          Effect.withConfigProvider(provider({ API_TOKEN: value })),
          Effect.flip
        )
        expect(error.code).toBe("env_empty")
        expect(error.retryable).toBe(false)
        expect(error.message).toBe("Environment variable API_TOKEN is empty")
      }
    })
  )

  it.effect("a value rejected by the Config fails with env_invalid and does not quote the value", () =>
    Effect.gen(function* () {
      const config = Config.redacted("API_TOKEN").pipe(
        Config.validate({
          message: "must start with tk_",
          validation: (r) => Redacted.value(r).startsWith("tk_")
        })
      )
      const error = yield* fetchWith(EnvTokenSource.fromConfig(config, "API_TOKEN")).pipe(
        Effect.withConfigProvider(provider({ API_TOKEN: "s3cr3t-wrong-prefix" })),
        Effect.flip
      )
      expect(error.code).toBe("env_invalid")
      expect(error.message).toContain("API_TOKEN")
      expect(error.message).toContain("must start with tk_")
      expect(error.message).not.toContain("s3cr3t")
      expect(JSON.stringify(error)).not.toContain("s3cr3t")
    })
  )

  it.effect("layerConfig reads any Config, here a nested one", () =>
    Effect.gen(function* () {
      const source = yield* TokenSource.TokenSource
      const token = yield* source.fetch
      expect(Redacted.value(token.value)).toBe("nested-token")
    }).pipe(
      Effect.provide(EnvTokenSource.layerConfig(Config.redacted("TOKEN").pipe(Config.nested("BILLING")))),
      Effect.withConfigProvider(provider({ "BILLING.TOKEN": "nested-token" }))
    )
  )

  it.live("reads process.env by default, composed with RenewableBearerLive", () => {
    const name = "EFFECT_RENEWABLE_BEARER_TEST_TOKEN"
    const program = Effect.gen(function* () {
      const bearer = yield* RenewableBearer.RenewableBearer
      const token = yield* bearer.fetch()
      expect(Redacted.value(token.value)).toBe("from-process-env")
    }).pipe(
      Effect.provide(RenewableBearer.RenewableBearerLive.pipe(Layer.provide(EnvTokenSource.layer(name))))
    )
    return Effect.acquireUseRelease(
      Effect.sync(() => {
        process.env[name] = "from-process-env"
      }),
      () => program,
      () =>
        Effect.sync(() => {
          delete process.env[name]
        })
    )
  })
})
