import * as Effect from "effect/Effect"
import * as Encoding from "effect/Encoding"
import * as Redacted from "effect/Redacted"
import { DiscoveryError, InvalidOptionsError, type KeyError, type TokenSourceError } from "./errors.js"
import type { PrivateKey } from "../JwtAssertion.js"
import type { ClientAuthMethod } from "../OAuth2TokenSource.js"
import * as assertion from "./assertion.js"
import { formEncode } from "./sanitize.js"

/** RFC 7523 section 2.2: the `client_assertion_type` of a JWT client assertion. @internal */
export const clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

/** How long a client assertion is valid: it is used at once, for one request. @internal */
export const clientAssertionLifetimeMillis = 60_000

/** Client authentication, resolved and checked when the source is built. @internal */
export type ClientAuth =
  | { readonly method: "none"; readonly clientId: string }
  | {
      readonly method: "client_secret_basic" | "client_secret_post"
      readonly clientId: string
      readonly clientSecret: Redacted.Redacted<string>
    }
  | {
      readonly method: "client_secret_jwt"
      readonly clientId: string
      readonly clientSecret: Redacted.Redacted<string>
      readonly key: assertion.SigningKey
    }
  | { readonly method: "private_key_jwt"; readonly clientId: string; readonly key: assertion.SigningKey }

/** The client authentication options every OAuth 2.0 source shares. @internal */
export interface ClientAuthOptions {
  readonly clientId?: string | undefined
  readonly clientSecret?: Redacted.Redacted<string> | undefined
  readonly privateKey?: PrivateKey | undefined
  readonly authMethod?: ClientAuthMethod | undefined
}

/** @internal */
export const clientAuthMethods: ReadonlyArray<ClientAuthMethod> = [
  "client_secret_basic",
  "client_secret_post",
  "client_secret_jwt",
  "private_key_jwt",
  "none"
]

/**
 * The Basic credentials of RFC 6749 section 2.3.1: the client id and secret form-encoded (appendix B), then
 * base64-encoded.
 *
 * @internal
 */
export const basicCredentials = (clientId: string, clientSecret: Redacted.Redacted<string>): string =>
  `Basic ${Encoding.encodeBase64(`${formEncode(clientId)}:${formEncode(Redacted.value(clientSecret))}`)}`

const invalid = (module: string, option: string, detail: string) =>
  new InvalidOptionsError({ module, option, detail })

/**
 * The method a client with these credentials authenticates with: `authMethod`, else `private_key_jwt` with a
 * private key, the first method for a secret the server supports, or `none` with only a client id.
 */
const pickMethod = (
  options: ClientAuthOptions,
  supported: ReadonlyArray<string> | undefined
): ClientAuthMethod => {
  const { authMethod, clientSecret, privateKey } = options
  const isSupported = (method: ClientAuthMethod) =>
    supported === undefined ? method === "client_secret_basic" : supported.includes(method)
  return (
    authMethod ??
    (privateKey !== undefined
      ? "private_key_jwt"
      : clientSecret !== undefined
        ? ((["client_secret_basic", "client_secret_post", "client_secret_jwt"] as const).find(isSupported) ??
          "client_secret_basic")
        : "none")
  )
}

/** The `ClientAuth` of `method`, failing when the secret or private key it needs is missing. */
const authFor = (
  method: ClientAuthMethod,
  clientId: string,
  options: ClientAuthOptions,
  module: string
): Effect.Effect<ClientAuth, InvalidOptionsError | KeyError> => {
  const { clientSecret, privateKey } = options
  switch (method) {
    case "none":
      return Effect.succeed({ method, clientId })
    case "client_secret_basic":
    case "client_secret_post":
    case "client_secret_jwt": {
      if (clientSecret === undefined)
        return Effect.fail(invalid(module, "clientSecret", `${method} needs a clientSecret`))
      return Effect.succeed(
        method === "client_secret_jwt"
          ? { method, clientId, clientSecret, key: assertion.hmacKey(clientSecret, "HS256") }
          : { method, clientId, clientSecret }
      )
    }
    case "private_key_jwt": {
      if (privateKey === undefined)
        return Effect.fail(invalid(module, "privateKey", "private_key_jwt needs a privateKey"))
      return Effect.map(assertion.importPrivateKey(privateKey, "options.privateKey"), (key) => ({
        method,
        clientId,
        key
      }))
    }
  }
}

/**
 * Picks and checks the client authentication method. Without `authMethod`: `private_key_jwt` with a
 * private key; with a secret, the first of `client_secret_basic`, `client_secret_post`, `client_secret_jwt`
 * that the server supports (`client_secret_basic` when it does not say); `none` with only a client id.
 * `supported` is the server's `token_endpoint_auth_methods_supported`, when discovery found one.
 *
 * @internal
 */
export const resolve = (
  options: ClientAuthOptions,
  context: {
    readonly module: string
    readonly issuer?: string | undefined
    readonly supported?: ReadonlyArray<string> | undefined
  }
): Effect.Effect<ClientAuth | undefined, InvalidOptionsError | KeyError | DiscoveryError> =>
  Effect.gen(function* () {
    const { module, supported } = context
    const { authMethod, clientId, clientSecret, privateKey } = options
    if (authMethod !== undefined && !clientAuthMethods.includes(authMethod)) {
      return yield* invalid(
        module,
        "authMethod",
        `"${String(authMethod)}" is not one of ${clientAuthMethods.join(", ")}`
      )
    }
    if (clientId === undefined) {
      if (authMethod !== undefined || clientSecret !== undefined || privateKey !== undefined) {
        return yield* invalid(module, "clientId", "client authentication needs a clientId")
      }
      return undefined
    }
    const method = pickMethod(options, supported)
    if (supported !== undefined && !supported.includes(method)) {
      return yield* new DiscoveryError({
        reason: "UnsupportedAuthMethod",
        issuer: context.issuer ?? "",
        detail: `the client authenticates with ${method}; the server supports ${supported.join(", ") || "none"}`
      })
    }
    return yield* authFor(method, clientId, options, module)
  })

/** What client authentication adds to a token request. @internal */
export interface Applied {
  readonly authorization?: string | undefined
  readonly params: ReadonlyArray<readonly [string, string]>
  /** Values that must never appear in an error. */
  readonly secrets: ReadonlyArray<Redacted.Redacted<string>>
}

/**
 * The header or form parameters of one token request. A JWT client assertion (RFC 7523 section 2.2) is
 * signed for each request: `iss` and `sub` the client id, `aud` the token endpoint, a fresh `jti`.
 *
 * @internal
 */
export const apply = (
  auth: ClientAuth | undefined,
  tokenUrl: string
): Effect.Effect<Applied, TokenSourceError> => {
  if (auth === undefined) return Effect.succeed({ params: [], secrets: [] })
  switch (auth.method) {
    case "none":
      return Effect.succeed({ params: [["client_id", auth.clientId]], secrets: [] })
    case "client_secret_basic":
      return Effect.succeed({
        authorization: basicCredentials(auth.clientId, auth.clientSecret),
        params: [],
        secrets: [auth.clientSecret]
      })
    case "client_secret_post":
      return Effect.succeed({
        params: [
          ["client_id", auth.clientId],
          ["client_secret", Redacted.value(auth.clientSecret)]
        ],
        secrets: [auth.clientSecret]
      })
    case "client_secret_jwt":
    case "private_key_jwt":
      return Effect.map(
        assertion.sign(auth.key, {
          issuer: auth.clientId,
          subject: auth.clientId,
          audience: tokenUrl,
          lifetimeMillis: clientAssertionLifetimeMillis
        }),
        (signed) => ({
          params: [
            ["client_id", auth.clientId],
            ["client_assertion_type", clientAssertionType],
            ["client_assertion", Redacted.value(signed.jwt)]
          ],
          secrets: auth.method === "client_secret_jwt" ? [signed.jwt, auth.clientSecret] : [signed.jwt]
        })
      )
  }
}
