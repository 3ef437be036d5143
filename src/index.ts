/**
 * effect-renewable-bearer: a bearer-token cache for Effect.
 *
 * @since 0.1.0
 */

/**
 * The errors: `RenewalError`, `StoppedError`, `TokenSourceError`, `InvalidOptionsError`.
 *
 * @since 0.1.0
 */
export * as Errors from "./Errors.js"

/**
 * Options of one fetch, the original string keys, and `VeryLongTimeout`.
 *
 * @since 0.1.0
 */
export * as FetchOptions from "./FetchOptions.js"

/**
 * The metrics every bearer records.
 *
 * @since 0.1.0
 */
export * as Metrics from "./Metrics.js"

/**
 * Per-request receivers that count attempts and decide retries.
 *
 * @since 0.1.0
 */
export * as Receiver from "./Receiver.js"

/**
 * The renewable bearer service and its layers.
 *
 * @since 0.1.0
 */
export * as RenewableBearer from "./RenewableBearer.js"

/**
 * A scripted token source for `TestClock` tests.
 *
 * @since 0.1.0
 */
export * as TestTokenSource from "./TestTokenSource.js"

/**
 * The token model.
 *
 * @since 0.1.0
 */
export * as Token from "./Token.js"

/**
 * The token source service.
 *
 * @since 0.1.0
 */
export * as TokenSource from "./TokenSource.js"
