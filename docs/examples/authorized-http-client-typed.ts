import { FetchHttpClient, HttpClient } from "@effect/platform"
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { RenewableBearer } from "effect-renewable-bearer"
import * as BearerHttpClient from "effect-renewable-bearer/BearerHttpClient"
import * as EnvTokenSource from "effect-renewable-bearer/EnvTokenSource"

// `authorize` keeps the bearer's errors apart in the error channel; with `failOnUnauthorized` a 401 that
// survives the renewal is an `UnauthorizedError` instead of a response.
const BearerLive = RenewableBearer.RenewableBearerLive.pipe(Layer.provide(EnvTokenSource.layer("API_TOKEN")))

const program = Effect.gen(function* () {
  const client = yield* BearerHttpClient.authorize(yield* HttpClient.HttpClient, { failOnUnauthorized: true })
  const response = yield* client.get("https://api.example.com/v1/orders")
  return yield* response.json
}).pipe(
  Effect.catchTags({
    UnauthorizedError: (error) => Effect.logWarning(error.message, error.response.status),
    RenewalError: (error) => Effect.logError("no token:", error.message),
    StoppedError: () => Effect.logError("the bearer is stopped")
  })
)

program.pipe(Effect.provide([BearerLive, FetchHttpClient.layer]), NodeRuntime.runMain)
