import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { InvalidOptionsError, isTokenSourceError, RenewalError } from "./errors.js"
import type { Options, Service } from "../RenewableBearer.js"
import { decodeMillis } from "./options.js"

/** How long `awaitFirstToken: true` waits. @internal */
export const defaultAwaitFirstTokenMillis = 30_000

/**
 * Checks `awaitFirstToken` before anything is built: `undefined` not to wait, else the bound in milliseconds.
 *
 * @internal
 */
export const resolveAwaitFirstToken = (
  options: Options | undefined
): Effect.Effect<number | undefined, InvalidOptionsError> => {
  const value: unknown = typeof options === "object" && options !== null ? options.awaitFirstToken : undefined
  if (value === undefined || value === false) return Effect.succeed(undefined)
  if (value === true) return Effect.succeed(defaultAwaitFirstTokenMillis)
  const millis = decodeMillis(value)
  if (Either.isRight(millis) && millis.right > 0) return Effect.succeed(millis.right)
  const got = Either.isRight(millis)
    ? `${millis.right} ms`
    : typeof value === "string"
      ? JSON.stringify(value)
      : String(value)
  return Effect.fail(
    new InvalidOptionsError({
      option: "awaitFirstToken",
      detail: `expected a boolean or a positive duration, got ${got}`
    })
  )
}

/** A failure the source says retrying will not fix (`invalid_client`, a missing variable, ...). */
const isPermanent = (error: RenewalError): boolean =>
  isTokenSourceError(error.cause) && !error.cause.isRetryable

/**
 * Waits until the bearer holds its first token, at most `millis`: every attempt's outcome is reported
 * (`reportError`), a transient failure waits for the bearer's next attempt (after its usual backoff), and a
 * permanent one fails at once. When the bound runs out, fails with a `Timeout` `RenewalError` whose `cause`
 * is the last attempt's.
 *
 * @internal
 */
export const awaitFirstToken = (bearer: Service, millis: number): Effect.Effect<void, RenewalError> =>
  Effect.suspend(() => {
    let last: RenewalError | undefined
    const attempt: Effect.Effect<unknown, RenewalError> = bearer.fetch({ reportError: true }).pipe(
      Effect.catchTag("StoppedError", (stopped) => Effect.die(stopped)),
      Effect.tapError((error) => Effect.sync(() => (last = error)))
    )
    return attempt.pipe(
      Effect.retry({ while: (error) => !isPermanent(error) }),
      Effect.timeoutFail({
        duration: millis,
        onTimeout: () =>
          new RenewalError({
            reason: "Timeout",
            detail: `no token within awaitFirstToken (${millis} ms) while the layer was built; ${
              last === undefined ? "no attempt has finished yet" : `the last attempt failed: ${last.message}`
            }`,
            cause: last?.cause
          })
      }),
      Effect.asVoid
    )
  })

/**
 * `make`, then, when `options` ask for it, the wait for its first token: what every way of building a bearer
 * (`RenewableBearer.make`, a key's bearer in `KeyedBearer`) does after the core is made.
 *
 * @internal
 */
export const withFirstToken = <S extends Service, E, R>(
  options: Options | undefined,
  make: Effect.Effect<S, E, R>
): Effect.Effect<S, E | InvalidOptionsError | RenewalError, R> =>
  Effect.flatMap(resolveAwaitFirstToken(options), (awaitMillis) =>
    awaitMillis === undefined ? make : Effect.tap(make, (bearer) => awaitFirstToken(bearer, awaitMillis))
  )
