import { describe, expect, it } from "@effect/vitest"
import { Errors } from "effect-renewable-bearer"

describe("Errors", () => {
  it("each is* guard accepts its own error and refuses a plain object that only carries the same _tag", () => {
    const cases = [
      [Errors.isRenewalError, new Errors.RenewalError({ reason: "Timeout" }), "RenewalError"],
      [Errors.isStoppedError, new Errors.StoppedError(), "StoppedError"],
      [Errors.isTokenSourceError, new Errors.TokenSourceError({ message: "down" }), "TokenSourceError"],
      [
        Errors.isKeyError,
        new Errors.KeyError({ reason: "NotFound", source: "k.json", detail: "gone" }),
        "KeyError"
      ],
      [
        Errors.isDiscoveryError,
        new Errors.DiscoveryError({ reason: "Timeout", issuer: "https://id.example", detail: "slow" }),
        "DiscoveryError"
      ]
    ] as const
    for (const [is, error, tag] of cases) {
      expect([is(error), is({ _tag: tag }), error[Errors.TypeId] === Errors.TypeId]).toEqual([
        true,
        false,
        true
      ])
    }
  })
})
