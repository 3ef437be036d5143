import { FetchHttpClient } from "@effect/platform"
import { NodeRuntime } from "@effect/platform-node"
import { Config, Effect, Layer } from "effect"
import { RenewableBearer } from "effect-renewable-bearer"
import * as OAuth2TokenSource from "effect-renewable-bearer/OAuth2TokenSource"

// OAuth 2.0 client credentials (RFC 6749 section 4.4); the settings come from the environment, the secret
// as a Redacted value.
const SourceLive = OAuth2TokenSource.layerClientCredentialsConfig({
  tokenUrl: Config.string("OAUTH_TOKEN_URL"),
  clientId: Config.string("OAUTH_CLIENT_ID"),
  clientSecret: Config.redacted("OAUTH_CLIENT_SECRET"),
  scope: Config.string("OAUTH_SCOPE").pipe(Config.withDefault(undefined)),
  authMethod: Config.literal(
    "client_secret_basic",
    "client_secret_post"
  )("OAUTH_AUTH_METHOD").pipe(Config.withDefault("client_secret_basic" as const))
})

const BearerLive = RenewableBearer.RenewableBearerLive.pipe(
  Layer.provide(SourceLive),
  Layer.provide(FetchHttpClient.layer)
)

const program = Effect.gen(function* () {
  const bearer = yield* RenewableBearer.RenewableBearer
  const token = yield* bearer.fetch()
  yield* Effect.log("access token valid until", token.expiresAt)
})

program.pipe(Effect.provide(BearerLive), NodeRuntime.runMain)
