import { NodeFileSystem, NodeRuntime } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { RenewableBearer } from "effect-renewable-bearer"
import * as FileTokenSource from "effect-renewable-bearer/FileTokenSource"

// A Kubernetes projected service-account token: the kubelet rotates the file, the source reads it on every
// fetch, and the JWT's `exp` claim tells the bearer when to read it again.
const BearerLive = RenewableBearer.RenewableBearerLive.pipe(
  Layer.provide(FileTokenSource.layer("/var/run/secrets/tokens/api-token")),
  Layer.provide(NodeFileSystem.layer)
)

const program = Effect.gen(function* () {
  const bearer = yield* RenewableBearer.RenewableBearer
  const token = yield* bearer.fetch()
  yield* Effect.log("token expires at", token.expiresAt)
})

program.pipe(Effect.provide(BearerLive), NodeRuntime.runMain)
