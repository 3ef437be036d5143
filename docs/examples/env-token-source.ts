import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { RenewableBearer } from "effect-renewable-bearer"
import * as EnvTokenSource from "effect-renewable-bearer/EnvTokenSource"

// API_TOKEN is read through Effect's Config on every fetch; it stays Redacted throughout.
const BearerLive = RenewableBearer.RenewableBearerLive.pipe(Layer.provide(EnvTokenSource.layer("API_TOKEN")))

const program = Effect.gen(function* () {
  const bearer = yield* RenewableBearer.RenewableBearer
  const token = yield* bearer.fetch()
  yield* Effect.log(`got ${token}`) // the value prints as <redacted>
})

program.pipe(Effect.provide(BearerLive), NodeRuntime.runMain)
