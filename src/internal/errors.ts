/**
 * The error classes of the library, made here so that internal code constructs them without loading a
 * public module; `Errors.ts`, `TokenStore.ts` and `BearerHttpClient.ts` re-export them with their docs.
 */
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import * as Predicate from "effect/Predicate"
import type { DiscoveryErrorReason, KeyErrorReason, RenewalErrorReason } from "../Errors.js"
import type { TokenStoreErrorReason, TokenStoreOperation } from "../TokenStore.js"

/** @internal */
export const TypeId: unique symbol = Symbol.for("effect-renewable-bearer/Errors")

/** @internal */
export type TypeId = typeof TypeId

/** See `Errors.TokenSourceError`. @internal */
export class TokenSourceError extends Data.TaggedError("TokenSourceError")<{
  readonly message: string
  readonly retryable?: boolean | undefined
  readonly status?: number | undefined
  readonly code?: string | undefined
  /** The least wait the source asked for before the next attempt (a `Retry-After`). */
  readonly retryAfter?: Duration.DurationInput | undefined
  readonly cause?: unknown
}> {
  /**
   * @since 0.1.0
   */
  readonly [TypeId]: TypeId = TypeId

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
export class RenewalError extends Data.TaggedError("RenewalError")<{
  readonly reason: RenewalErrorReason
  readonly detail?: string | undefined
  readonly cause?: unknown
}> {
  /**
   * @since 0.1.0
   */
  readonly [TypeId]: TypeId = TypeId

  /**
   * @since 0.1.0
   */
  override get message(): string {
    const base = renewalMessages[this.reason]
    return this.detail === undefined ? base : `${base}: ${this.detail}`
  }
}

/** See `Errors.StoppedError`. @internal */
export class StoppedError extends Data.TaggedError("StoppedError")<{}> {
  /**
   * @since 0.1.0
   */
  readonly [TypeId]: TypeId = TypeId

  /**
   * @since 0.1.0
   */
  override get message(): string {
    return "Renewal is stopped."
  }
}

/** See `Errors.InvalidOptionsError`. @internal */
export class InvalidOptionsError extends Data.TaggedError("InvalidOptionsError")<{
  readonly option: string
  readonly detail: string
  readonly module?: string | undefined
}> {
  /**
   * @since 0.1.0
   */
  readonly [TypeId]: TypeId = TypeId

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
export class KeyError extends Data.TaggedError("KeyError")<{
  readonly reason: KeyErrorReason
  /** The key file's path, or `"options"` for a key given inline. */
  readonly source: string
  readonly detail: string
  readonly cause?: unknown
}> {
  /**
   * @since 0.2.0
   */
  readonly [TypeId]: TypeId = TypeId

  /**
   * @since 0.2.0
   */
  override get message(): string {
    return `Key ${this.source}: ${keyMessages[this.reason]}: ${this.detail}`
  }
}

/** See `Errors.DiscoveryError`. @internal */
export class DiscoveryError extends Data.TaggedError("DiscoveryError")<{
  readonly reason: DiscoveryErrorReason
  readonly issuer: string
  readonly detail: string
  readonly cause?: unknown
}> {
  /**
   * @since 0.2.0
   */
  readonly [TypeId]: TypeId = TypeId

  /**
   * @since 0.2.0
   */
  override get message(): string {
    return `Discovery of ${this.issuer} failed (${this.reason}): ${this.detail}`
  }
}

/** See `TokenStore.TokenStoreError`. @internal */
export class TokenStoreError extends Data.TaggedError("TokenStoreError")<{
  readonly operation: TokenStoreOperation
  readonly reason: TokenStoreErrorReason
  readonly detail?: string | undefined
  readonly cause?: unknown
}> {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    const base = `Token store ${this.operation} failed (${this.reason})`
    return this.detail === undefined ? base : `${base}: ${this.detail}`
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
export const isRenewalError = (u: unknown): u is RenewalError => Predicate.isTagged(u, "RenewalError")

/** @internal */
export const isStoppedError = (u: unknown): u is StoppedError => Predicate.isTagged(u, "StoppedError")

/** @internal */
export const isTokenSourceError = (u: unknown): u is TokenSourceError =>
  Predicate.isTagged(u, "TokenSourceError")

/** @internal */
export const isKeyError = (u: unknown): u is KeyError => Predicate.isTagged(u, "KeyError")

/** @internal */
export const isDiscoveryError = (u: unknown): u is DiscoveryError => Predicate.isTagged(u, "DiscoveryError")
