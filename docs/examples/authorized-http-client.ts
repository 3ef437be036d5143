import { FetchHttpClient, HttpClient } from "@effect/platform"
import { NodeRuntime } from "@effect/platform-node"
import { Config, Effect, Layer } from "effect"
import { RenewableBearer } from "effect-renewable-bearer"
import * as BearerHttpClient from "effect-renewable-bearer/BearerHttpClient"
import * as OAuth2TokenSource from "effect-renewable-bearer/OAuth2TokenSource"

// The token source talks to the identity provider with the plain client; the program gets the authorized
// one: `Authorization: Bearer <token>` on every request and, on a 401, one renewal and one replay.
const BearerLive = RenewableBearer.RenewableBearerLive.pipe(
  Layer.provide(
    OAuth2TokenSource.layerClientCredentialsConfig({
      tokenUrl: Config.string("OAUTH_TOKEN_URL"),
      clientId: Config.string("OAUTH_CLIENT_ID"),
      clientSecret: Config.redacted("OAUTH_CLIENT_SECRET")
    })
  ),
  Layer.provide(FetchHttpClient.layer)
)

const HttpLive = BearerHttpClient.layer().pipe(
  Layer.provide(BearerLive),
  Layer.provide(FetchHttpClient.layer)
)

const program = Effect.gen(function* () {
  const client = yield* HttpClient.HttpClient
  const response = yield* client.get("https://api.example.com/v1/orders")
  yield* Effect.log(response.status, yield* response.json)
})

program.pipe(Effect.provide(HttpLive), NodeRuntime.runMain)
