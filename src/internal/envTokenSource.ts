/**
 * The source of `EnvTokenSource`: a `Config<Redacted>` read on every fetch, with the `ConfigProvider` that
 * was current when the source was built.
 */
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type { ErrorCode } from "../EnvTokenSource.js"
import { InvalidOptionsError, TokenSourceError } from "./errors.js"
import { TokenSource } from "./tags.js"
import { make as makeToken } from "./token.js"

const describe = (name: string | undefined) =>
  name === undefined ? "The configured token" : `Environment variable ${name}`

/** See `EnvTokenSource.fromConfig`. @internal */
export const fromConfig = (
  config: Config.Config<Redacted.Redacted<string>>,
  name?: string
): Effect.Effect<TokenSource["Type"]> =>
  Effect.configProviderWith((provider) =>
    Effect.succeed(
      TokenSource.of({
        fetch: config.pipe(
          Effect.withConfigProvider(provider),
          Effect.mapError((error) =>
            ConfigError.isMissingDataOnly(error)
              ? new TokenSourceError({
                  message: `${describe(name)} is not set`,
                  retryable: false,
                  cause: error,
                  code: "env_missing" satisfies ErrorCode
                })
              : new TokenSourceError({
                  message: `${describe(name)} is invalid (${error.message})`,
                  retryable: false,
                  code: "env_invalid" satisfies ErrorCode
                })
          ),
          Effect.flatMap((value) => {
            const trimmed = Redacted.value(value).trim()
            return trimmed.length === 0
              ? Effect.fail(
                  new TokenSourceError({
                    message: `${describe(name)} is empty`,
                    retryable: false,
                    code: "env_empty" satisfies ErrorCode
                  })
                )
              : Effect.succeed(makeToken(Redacted.make(trimmed)))
          })
        )
      })
    )
  )

/** See `EnvTokenSource.make`. @internal */
export const make = (name: string): Effect.Effect<TokenSource["Type"], InvalidOptionsError> =>
  typeof name === "string" && name.length > 0
    ? fromConfig(Config.redacted(name), name)
    : Effect.fail(
        new InvalidOptionsError({
          module: "EnvTokenSource",
          option: "name",
          detail: `expected a non-empty string, got ${typeof name === "string" ? '""' : String(name)}`
        })
      )
