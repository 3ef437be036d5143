/**
 * The error classes of the library, made here so that internal code constructs them without loading a
 * public module; `Errors.ts`, `TokenStore.ts` and `BearerHttpClient.ts` re-export them with their docs.
 */
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import type * as Cause from "effect/Cause"
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import * as Predicate from "effect/Predicate"
import type * as Types from "effect/Types"
import type {
  DiscoveryErrorReason,
  KeyErrorReason,
  RenewalErrorReason,
  TokenStoreErrorReason,
  TokenStoreOperation
} from "../Errors.js"

/** @internal */
export const TypeId: unique symbol = Symbol.for("effect-renewable-bearer/Errors")

/** @internal */
export type TypeId = typeof TypeId

/**
 * `Data.TaggedError` stamped with `TypeId`: the base of every error of `Errors.ts`, and what its `is*` guards
 * check (a `_tag` alone, on a plain object, is not one of these errors).
 */
const TaggedError = <Tag extends string>(
  tag: Tag
): new <A extends Record<string, any> = {}>(
  args: Types.Equals<A, {}> extends true
    ? void
    : { readonly [P in keyof A as P extends "_tag" ? never : P]: A[P] }
) => Cause.YieldableError & { readonly _tag: Tag; readonly [TypeId]: TypeId } & Readonly<A> => {
  class Stamped extends Data.TaggedError(tag)<{}> {
    readonly [TypeId]: TypeId = TypeId
  }
  return Stamped as any
}

/** A message and, if there is one, its detail after a colon. */
const withDetail = (base: string, detail: string | undefined): string =>
  detail === undefined ? base : `${base}: ${detail}`

/** A guard for the error of `tag`: stamped with `TypeId`, and of that tag. */
const guard =
  <E>(tag: string) =>
  (u: unknown): u is E =>
    Predicate.hasProperty(u, TypeId) && Predicate.isTagged(u, tag)

/** See `Errors.TokenSourceError`. @internal */
export class TokenSourceError extends TaggedError("TokenSourceError")<{
  readonly message: string
  readonly retryable?: boolean | undefined
  readonly status?: number | undefined
  readonly code?: string | undefined
  /** The least wait the source asked for before the next attempt (a `Retry-After`). */
  readonly retryAfter?: Duration.DurationInput | undefined
  readonly cause?: unknown
}> {
  /**
   * Whether the bearer should retry on its normal backoff (the default) or treat the failure as permanent.
   *
   * @since 0.1.0
   */
  get isRetryable(): boolean {
    return this.retryable !== false
  }
}

const renewalMessages: Record<RenewalErrorReason, string> = {
  SourceError: "Token renewal failed: the token source returned an error",
  SourceTimeout: "Token renewal failed: the token source did not answer in time",
  SourceDefect: "Token renewal failed: the token source died with a defect",
  InvalidToken: "Token renewal failed: the token source returned an unusable token",
  Timeout: "Timed out waiting for a token",
  InvalidOptions: "Invalid fetch options"
}

/** See `Errors.RenewalError`. @internal */
export class RenewalError extends TaggedError("RenewalError")<{
  readonly reason: RenewalErrorReason
  readonly detail?: string | undefined
  readonly cause?: unknown
}> {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return withDetail(renewalMessages[this.reason], this.detail)
  }
}

/** See `Errors.StoppedError`. @internal */
export class StoppedError extends TaggedError("StoppedError")<{}> {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return "Renewal is stopped."
  }
}

/** See `Errors.InvalidOptionsError`. @internal */
export class InvalidOptionsError extends TaggedError("InvalidOptionsError")<{
  readonly option: string
  readonly detail: string
  readonly module?: string | undefined
}> {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `Invalid ${this.module ?? "RenewableBearer"} option "${this.option}": ${this.detail}`
  }
}

const keyMessages: Record<KeyErrorReason, string> = {
  NotFound: "the file does not exist",
  Unreadable: "the file cannot be read",
  Malformed: "malformed key file",
  WrongKeyType: "wrong key type",
  UnsupportedAlgorithm: "unsupported algorithm"
}

/** See `Errors.KeyError`. @internal */
export class KeyError extends TaggedError("KeyError")<{
  readonly reason: KeyErrorReason
  /** The key file's path, or `"options"` for a key given inline. */
  readonly source: string
  readonly detail: string
  readonly cause?: unknown
}> {
  /**
   * @since 0.2.0
   */
  override get message(): string {
    return `Key ${this.source}: ${keyMessages[this.reason]}: ${this.detail}`
  }
}

/** See `Errors.DiscoveryError`. @internal */
export class DiscoveryError extends TaggedError("DiscoveryError")<{
  readonly reason: DiscoveryErrorReason
  readonly issuer: string
  readonly detail: string
  readonly cause?: unknown
}> {
  /**
   * @since 0.2.0
   */
  override get message(): string {
    return `Discovery of ${this.issuer} failed (${this.reason}): ${this.detail}`
  }
}

/** See `Errors.TokenStoreError`. @internal */
export class TokenStoreError extends TaggedError("TokenStoreError")<{
  readonly operation: TokenStoreOperation
  readonly reason: TokenStoreErrorReason
  readonly detail?: string | undefined
  readonly cause?: unknown
}> {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return withDetail(`Token store ${this.operation} failed (${this.reason})`, this.detail)
  }
}

/** See `BearerHttpClient.UnauthorizedError`. @internal */
export class UnauthorizedError extends Data.TaggedError("UnauthorizedError")<{
  readonly request: HttpClientRequest.HttpClientRequest
  /** How many times the request was sent. */
  readonly attempts: number
  /** Whether the request's body could have been sent again. */
  readonly replayable: boolean
}> {
  /**
   * The last `401` response.
   *
   * @since 0.1.0
   */
  declare readonly response: HttpClientResponse.HttpClientResponse

  constructor(props: {
    readonly request: HttpClientRequest.HttpClientRequest
    readonly response: HttpClientResponse.HttpClientResponse
    readonly attempts: number
    readonly replayable: boolean
  }) {
    super({ request: props.request, attempts: props.attempts, replayable: props.replayable })
    Object.defineProperty(this, "response", { value: props.response, enumerable: false })
  }

  /**
   * @since 0.1.0
   */
  override get message(): string {
    const times = this.attempts === 1 ? "1 attempt" : `${this.attempts} attempts`
    const why = this.replayable ? "" : " (its body cannot be replayed)"
    return `${this.request.method} ${this.request.url} was answered 401 Unauthorized after ${times}${why}`
  }
}

/** @internal */
export const isRenewalError = guard<RenewalError>("RenewalError")

/** @internal */
export const isStoppedError = guard<StoppedError>("StoppedError")

/** @internal */
export const isTokenSourceError = guard<TokenSourceError>("TokenSourceError")

/** @internal */
export const isKeyError = guard<KeyError>("KeyError")

/** @internal */
export const isDiscoveryError = guard<DiscoveryError>("DiscoveryError")
