import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { KeyError } from "./errors.js"
import type { GoogleServiceAccountKey, NebiusCredentials } from "../ServiceAccountKey.js"
import { isPrivateKeyAlgorithm, privateKeyAlgorithms } from "./assertion.js"

/** The Nebius CLI credentials file (`nebius iam auth-public-key generate --output …`). @internal */
export const NebiusCredentialsFile = Schema.Struct({
  "subject-credentials": Schema.Struct({
    type: Schema.optional(Schema.String),
    alg: Schema.String,
    "private-key": Schema.Redacted(Schema.NonEmptyTrimmedString),
    kid: Schema.NonEmptyTrimmedString,
    iss: Schema.NonEmptyTrimmedString,
    sub: Schema.NonEmptyTrimmedString
  })
})

/** A Google service-account JSON key. @internal */
export const GoogleKeyFile = Schema.Struct({
  type: Schema.Literal("service_account"),
  project_id: Schema.optional(Schema.String),
  private_key_id: Schema.NonEmptyTrimmedString,
  private_key: Schema.Redacted(Schema.NonEmptyTrimmedString),
  client_email: Schema.NonEmptyTrimmedString,
  client_id: Schema.optional(Schema.String),
  token_uri: Schema.optional(Schema.NonEmptyTrimmedString)
})

/** Google's token endpoint, when the key file has no `token_uri`. @internal */
export const googleTokenUri = "https://oauth2.googleapis.com/token"

/**
 * What is wrong, as paths and kinds only: a parse error's message quotes the input, which holds the key.
 */
const describeIssues = (error: ParseResult.ParseError): string => {
  const issues = ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) => {
    const path = issue.path.length === 0 ? "(file)" : issue.path.map(String).join(".")
    return issue._tag === "Missing" ? `${path} is missing` : `${path} is invalid`
  })
  return Array.from(new Set(issues)).join(", ")
}

const readJson = (path: string): Effect.Effect<unknown, KeyError, FileSystem.FileSystem> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(path).pipe(
      Effect.mapError((error) =>
        error._tag === "SystemError" && error.reason === "NotFound"
          ? new KeyError({ reason: "NotFound", source: path, detail: "check the path", cause: error })
          : new KeyError({
              reason: "Unreadable",
              source: path,
              detail: error._tag === "SystemError" ? error.reason : error._tag,
              cause: error
            })
      )
    )
    return yield* Effect.try({
      try: () => JSON.parse(text) as unknown,
      // JSON.parse's message quotes the text around the error: keep it out.
      catch: () => new KeyError({ reason: "Malformed", source: path, detail: "the file is not valid JSON" })
    })
  })

const decode = <A, I>(
  schema: Schema.Schema<A, I>,
  path: string,
  json: unknown
): Effect.Effect<A, KeyError> => {
  const decoded = Schema.decodeUnknownEither(schema, { errors: "all" })(json)
  return Either.isRight(decoded)
    ? Effect.succeed(decoded.right)
    : Effect.fail(new KeyError({ reason: "Malformed", source: path, detail: describeIssues(decoded.left) }))
}

/** @internal */
export const readNebiusCredentials = (
  path: string
): Effect.Effect<NebiusCredentials, KeyError, FileSystem.FileSystem> =>
  Effect.gen(function* () {
    const file = yield* decode(NebiusCredentialsFile, path, yield* readJson(path))
    const subject = file["subject-credentials"]
    if (subject.type !== undefined && subject.type !== "" && subject.type !== "JWT") {
      return yield* new KeyError({
        reason: "Malformed",
        source: path,
        detail: `subject-credentials.type is "${subject.type}", only "JWT" is supported`
      })
    }
    if (!isPrivateKeyAlgorithm(subject.alg)) {
      return yield* new KeyError({
        reason: "UnsupportedAlgorithm",
        source: path,
        detail: `subject-credentials.alg is "${subject.alg}" (supported: ${privateKeyAlgorithms.join(", ")})`
      })
    }
    if (subject.iss !== subject.sub) {
      return yield* new KeyError({
        reason: "Malformed",
        source: path,
        detail: "subject-credentials.iss and subject-credentials.sub must both be the service account id"
      })
    }
    return {
      serviceAccountId: subject.sub,
      keyId: subject.kid,
      key: { alg: subject.alg, pem: subject["private-key"], keyId: subject.kid }
    }
  })

/** @internal */
export const readGoogleKey = (
  path: string
): Effect.Effect<GoogleServiceAccountKey, KeyError, FileSystem.FileSystem> =>
  Effect.gen(function* () {
    const file = yield* decode(GoogleKeyFile, path, yield* readJson(path))
    return {
      clientEmail: file.client_email,
      keyId: file.private_key_id,
      tokenUri: file.token_uri ?? googleTokenUri,
      projectId: file.project_id,
      key: { alg: "RS256", pem: file.private_key, keyId: file.private_key_id }
    }
  })
