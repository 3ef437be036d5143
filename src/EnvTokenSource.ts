/**
 * A token source that reads a static token from configuration: an environment variable by default, or any
 * `Config<Redacted>`. The value is read through Effect's `Config` on every fetch, with the `ConfigProvider`
 * that was current when the source was built, and never leaves `Redacted`.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { EnvTokenSource, RenewableBearer } from "effect-renewable-bearer"
 *
 * const BearerLive = RenewableBearer.RenewableBearerLive.pipe(Layer.provide(EnvTokenSource.layer("API_TOKEN")))
 *
 * const program = Effect.flatMap(RenewableBearer.RenewableBearer, (bearer) => bearer.fetch())
 * ```
 *
 * @since 0.1.0
 */
import type * as Config from "effect/Config"
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import type { InvalidOptionsError } from "./Errors.js"
import * as internal from "./internal/envTokenSource.js"
import { TokenSource } from "./TokenSource.js"

/**
 * The `code` of the `TokenSourceError` when the variable is missing (`env_missing`), empty (`env_empty`), or
 * rejected by the `Config` (`env_invalid`).
 *
 * @since 0.1.0
 * @category models
 */
export type ErrorCode = "env_missing" | "env_empty" | "env_invalid"

/**
 * A source that reads its token from a `Config` on every fetch. `name` is only used in error messages. A
 * missing value fails with code `env_missing`, an empty (or blank) one with `env_empty`; all are marked
 * permanent (`retryable: false`) and name the variable, never the value. The token never expires.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromConfig: (
  config: Config.Config<Redacted.Redacted<string>>,
  name?: string
) => Effect.Effect<TokenSource["Type"]> = internal.fromConfig

/**
 * A source that reads the environment variable `name` (through the current `ConfigProvider`) on every fetch.
 * Fails with `InvalidOptionsError` (module `EnvTokenSource`) when `name` is not a non-empty string.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (name: string) => Effect.Effect<TokenSource["Type"], InvalidOptionsError> = internal.make

/**
 * The source of `make` as a layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (name: string): Layer.Layer<TokenSource, InvalidOptionsError> =>
  Layer.effect(TokenSource, make(name))

/**
 * A layer of a source that reads any `Config<Redacted>` (nested, with a fallback, …) on every fetch.
 *
 * @example
 * ```ts
 * import { Config } from "effect"
 * import { EnvTokenSource } from "effect-renewable-bearer"
 *
 * const SourceLive = EnvTokenSource.layerConfig(Config.redacted("TOKEN").pipe(Config.nested("BILLING_API")))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (config: Config.Config<Redacted.Redacted<string>>): Layer.Layer<TokenSource> =>
  Layer.effect(TokenSource, fromConfig(config))
