import { describe, expect, it } from "@effect/vitest"
import { DateTime, Duration, Equal, Hash, Option, Redacted } from "effect"
import { Token } from "effect-renewable-bearer"
import { inspect } from "node:util"

const SECRET = "s3cr3t-token-value"

describe("Token", () => {
  it("holds the value as Redacted and never prints it", () => {
    const token = Token.make(SECRET, { expiresAt: DateTime.unsafeMake("2030-01-01T00:00:00Z") })
    expect(Redacted.value(token.value)).toBe(SECRET)
    for (const printed of [
      String(token),
      `${token}`,
      JSON.stringify(token),
      inspect(token),
      inspect({ token })
    ]) {
      expect(printed).not.toContain(SECRET)
      expect(printed).toContain("<redacted>")
    }
    expect(JSON.parse(JSON.stringify(token))).toEqual({
      _id: "Token",
      value: "<redacted>",
      expiresAt: "2030-01-01T00:00:00.000Z"
    })
  })

  it("accepts an already redacted value", () => {
    const token = Token.make(Redacted.make(SECRET))
    expect(Redacted.value(token.value)).toBe(SECRET)
  })

  it("has structural equality on value and expiration", () => {
    const a = Token.make("a", { expiresAt: 1000 })
    expect(Equal.equals(a, Token.make("a", { expiresAt: new Date(1000) }))).toBe(true)
    expect(Hash.hash(a)).toBe(Hash.hash(Token.make("a", { expiresAt: 1000 })))
    expect(Equal.equals(a, Token.make("a", { expiresAt: 1001 }))).toBe(false)
    expect(Equal.equals(a, Token.make("b", { expiresAt: 1000 }))).toBe(false)
    expect(Equal.equals(Token.make("a"), Token.make("a"))).toBe(true)
    expect(Equal.equals(Token.make("a"), a)).toBe(false)
  })

  it("exposes the expiration as an optional DateTime", () => {
    expect(Token.make("a").expiresAt).toEqual(Option.none())
    expect(Option.map(Token.make("a", { expiresAt: 5000 }).expiresAt, DateTime.toEpochMillis)).toEqual(
      Option.some(5000)
    )
  })

  it("tells whether it is expired at an instant", () => {
    const token = Token.make("a", { expiresAt: 1000 })
    expect(Token.isExpiredAt(token, 999)).toBe(false)
    expect(Token.isExpiredAt(token, 1000)).toBe(true)
    expect(token.pipe(Token.isExpiredAt(DateTime.unsafeMake(2000)))).toBe(true)
    expect(Token.isExpiredAt(Token.make("forever"), Number.MAX_SAFE_INTEGER)).toBe(false)
  })

  it("tells its remaining lifetime", () => {
    const token = Token.make("a", { expiresAt: 1000 })
    expect(Token.remainingLifetime(token, 250)).toEqual(Duration.millis(750))
    expect(Token.remainingLifetime(token, 5000)).toEqual(Duration.zero)
    expect(Token.remainingLifetime(Token.make("forever"), 0)).toEqual(Duration.infinity)
  })
})
