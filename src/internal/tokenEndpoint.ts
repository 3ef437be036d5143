import type * as HttpClient from "@effect/platform/HttpClient"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { InvalidOptionsError } from "./errors.js"
import type { BuildError, ClientAuthOptions, EndpointOptions, RequestOptions } from "../OAuth2TokenSource.js"
import * as clientAuth from "./clientAuth.js"
import * as discovery from "./discovery.js"

/**
 * The parameters the library sets itself, for one grant or another: `extraParams` may not carry them.
 *
 * @internal
 */
export const reservedParams: ReadonlyArray<string> = [
  "grant_type",
  "scope",
  "audience",
  "resource",
  "client_id",
  "client_secret",
  "client_assertion",
  "client_assertion_type",
  "assertion",
  "subject_token",
  "subject_token_type",
  "actor_token",
  "actor_token_type",
  "requested_token_type"
]

/** A token endpoint, resolved and checked when the source is built. @internal */
export interface Prepared {
  readonly tokenUrl: string
  readonly auth: clientAuth.ClientAuth | undefined
  readonly defaultLifetimeMillis: number
  readonly extraParams: Readonly<Record<string, string | ReadonlyArray<string>>>
}

const duration = (
  input: Duration.DurationInput | undefined,
  fallback: Duration.Duration,
  option: string
): Effect.Effect<Duration.Duration, InvalidOptionsError> => {
  const decoded = Duration.decodeUnknown(input ?? fallback)
  return decoded._tag === "Some" && Duration.toMillis(decoded.value) > 0
    ? Effect.succeed(decoded.value)
    : Effect.fail(
        new InvalidOptionsError({
          module: "OAuth2TokenSource",
          option,
          detail: 'expected a positive duration (a number of milliseconds, or a string such as "1 hour")'
        })
      )
}

/**
 * Checks the options of an OAuth 2.0 source and resolves its token endpoint (discovering it from the
 * issuer when asked) and its client authentication.
 *
 * @internal
 */
export const prepare = (
  client: HttpClient.HttpClient,
  options: EndpointOptions & ClientAuthOptions & RequestOptions,
  defaults: { readonly defaultLifetime: Duration.Duration; readonly discoveryTimeout: Duration.Duration }
): Effect.Effect<Prepared, BuildError> =>
  Effect.gen(function* () {
    const module = "OAuth2TokenSource"
    const extraParams = options.extraParams ?? {}
    const clash = Object.keys(extraParams).filter((name) => reservedParams.includes(name))
    if (clash.length > 0) {
      return yield* new InvalidOptionsError({
        module,
        option: "extraParams",
        detail: `${clash.join(", ")} ${clash.length === 1 ? "is" : "are"} set by the library; use its own option instead`
      })
    }
    const lifetime = yield* duration(options.defaultLifetime, defaults.defaultLifetime, "defaultLifetime")
    const { issuer, tokenUrl } = options
    if ((tokenUrl === undefined) === (issuer === undefined)) {
      return yield* new InvalidOptionsError({
        module,
        option: "tokenUrl",
        detail: "give exactly one of tokenUrl and issuer"
      })
    }
    if (issuer === undefined) {
      const auth = yield* clientAuth.resolve(options, { module })
      return { tokenUrl: tokenUrl!, auth, defaultLifetimeMillis: Duration.toMillis(lifetime), extraParams }
    }
    const timeout = yield* duration(options.discoveryTimeout, defaults.discoveryTimeout, "discoveryTimeout")
    const metadata = yield* discovery.discover(client, issuer, timeout)
    const auth = yield* clientAuth.resolve(options, {
      module,
      issuer,
      supported: metadata.token_endpoint_auth_methods_supported
    })
    return {
      tokenUrl: metadata.token_endpoint,
      auth,
      defaultLifetimeMillis: Duration.toMillis(lifetime),
      extraParams
    }
  })
