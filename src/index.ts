/**
 * effect-renewable-bearer: a bearer-token cache for Effect.
 *
 * The root entry is runtime-neutral: it needs no Node built-in and no `ioredis`, so it bundles for Node,
 * browsers, workers and other runtimes. The two stores that need Node are subpath exports of their own:
 * `effect-renewable-bearer/FileTokenStore` (`node:crypto`, `node:path`) and
 * `effect-renewable-bearer/RedisTokenStore` (`node:crypto`, `ioredis`).
 *
 * @since 0.1.0
 */

/**
 * An authorized `HttpClient`: bearer token on every request, one renewal and replay on 401.
 *
 * @since 0.1.0
 */
export * as BearerHttpClient from "./BearerHttpClient.js"

/**
 * A token source that reads an environment variable (or any `Config<Redacted>`).
 *
 * @since 0.1.0
 */
export * as EnvTokenSource from "./EnvTokenSource.js"

/**
 * The errors: `RenewalError`, `StoppedError`, `TokenSourceError`, `InvalidOptionsError`.
 *
 * @since 0.1.0
 */
export * as Errors from "./Errors.js"

/**
 * Options of one fetch, the original string keys, and a parser for them.
 *
 * @since 0.1.0
 */
export * as FetchOptions from "./FetchOptions.js"

/**
 * A token source that reads a token file on every fetch; a JWT's `exp` becomes the expiration.
 *
 * @since 0.1.0
 */
export * as FileTokenSource from "./FileTokenSource.js"

/**
 * A token source of signed JWT assertions (service accounts, the JWT bearer grant).
 *
 * @since 0.2.0
 */
export * as JwtAssertion from "./JwtAssertion.js"

/**
 * Keyed bearers: one bearer per key (audience, scope, tenant), built on first use, closed when idle, bounded.
 *
 * @since 0.2.0
 */
export * as KeyedBearer from "./KeyedBearer.js"

/**
 * The metrics every bearer records.
 *
 * @since 0.1.0
 */
export * as Metrics from "./Metrics.js"

/**
 * OAuth 2.0 token sources: client credentials (RFC 6749), token exchange (RFC 8693), the JWT bearer grant
 * (RFC 7523); signed client authentication, `resource`, discovery.
 *
 * @since 0.1.0
 */
export * as OAuth2TokenSource from "./OAuth2TokenSource.js"

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
 * Service-account key files: the Nebius CLI credentials file and Google's JSON key.
 *
 * @since 0.2.0
 */
export * as ServiceAccountKey from "./ServiceAccountKey.js"

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

/**
 * A token store shared by many processes, so a fleet renews one token per lifetime; `layerMemory`.
 *
 * @since 0.1.0
 */
export * as TokenStore from "./TokenStore.js"
