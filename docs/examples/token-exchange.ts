import { FetchHttpClient } from "@effect/platform"
import { NodeFileSystem, NodeRuntime } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { RenewableBearer } from "effect-renewable-bearer"
import * as FileTokenSource from "effect-renewable-bearer/FileTokenSource"
import * as OAuth2TokenSource from "effect-renewable-bearer/OAuth2TokenSource"

// Workload identity federation (RFC 8693): the pod's projected service-account token is the subject token,
// exchanged at a security token service for an access token. The exchange layer needs a TokenSource (the
// subject) and provides one (the access token).
const SourceLive = OAuth2TokenSource.layerTokenExchange({
  tokenUrl: "https://sts.example.com/v1/token",
  audience: "//iam.example.com/projects/42/pools/prod/providers/k8s",
  scope: "https://www.example.com/auth/cloud-platform",
  requestedTokenType: OAuth2TokenSource.TokenTypeAccessToken
}).pipe(Layer.provide(FileTokenSource.layer("/var/run/secrets/tokens/sts-token")))

const BearerLive = RenewableBearer.RenewableBearerLive.pipe(
  Layer.provide(SourceLive),
  Layer.provide([FetchHttpClient.layer, NodeFileSystem.layer])
)

const program = Effect.gen(function* () {
  const bearer = yield* RenewableBearer.RenewableBearer
  const token = yield* bearer.fetch()
  yield* Effect.log("federated token valid until", token.expiresAt)
})

program.pipe(Effect.provide(BearerLive), NodeRuntime.runMain)
