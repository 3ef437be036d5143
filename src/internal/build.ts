/**
 * Building a bearer: `awaitFirstToken` checked, the core made, the first token awaited; a named bearer's own
 * source provided. `RenewableBearer.ts` and `internal/keyedBearer.ts` build bearers through here.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { BuildError, NamedOptions, Options, Service, SourceInput } from "../RenewableBearer.js"
import * as startup from "./awaitFirstToken.js"
import * as core from "./renewableBearer.js"
import { TokenSource } from "./tags.js"

/** See `RenewableBearer.make`. @internal */
export const make = (options?: Options): Effect.Effect<Service, BuildError, TokenSource | Scope.Scope> =>
  startup.withFirstToken(options, core.make(options))

/** See `RenewableBearer.makeWith`. @internal */
export const makeWith: {
  <E = never, R = never>(
    options: NamedOptions<E, R> & { readonly source: SourceInput<E, R> },
    defaultName?: string
  ): Effect.Effect<Service, BuildError | E, R | Scope.Scope>
  (options?: Options, defaultName?: string): Effect.Effect<Service, BuildError, TokenSource | Scope.Scope>
} = <E, R>(
  options?: NamedOptions<E, R>,
  defaultName?: string
): Effect.Effect<Service, BuildError | E, R | TokenSource | Scope.Scope> => {
  const { source, ...rest } = options ?? {}
  const bearerOptions: Options = { ...rest, name: rest.name ?? defaultName }
  if (source === undefined) return make(bearerOptions)
  const sourceEffect: Effect.Effect<TokenSource["Type"], E, R> = Effect.isEffect(source)
    ? source
    : Effect.succeed(source)
  return Effect.flatMap(sourceEffect, (service) =>
    Effect.provideService(make(bearerOptions), TokenSource, service)
  )
}
