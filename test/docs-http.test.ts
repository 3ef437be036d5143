import { describe, expect, it } from "@effect/vitest"
import * as Fs from "node:fs"
import * as Path from "node:path"

const root = Path.resolve(import.meta.dirname, "..")
const page = Fs.readFileSync(Path.join(root, "docs/http.md"), "utf8")
const snippets = Array.from(page.matchAll(/<!-- (docs\/examples\/[\w.-]+\.ts) -->\s*```ts\n([\s\S]*?)```/g))

describe("docs/http.md", () => {
  it("shows every example of docs/examples that it names, verbatim", () => {
    expect(snippets.map(([, file]) => file)).toEqual([
      "docs/examples/env-token-source.ts",
      "docs/examples/file-token-source.ts",
      "docs/examples/client-credentials.ts",
      "docs/examples/token-exchange.ts",
      "docs/examples/authorized-http-client.ts",
      "docs/examples/authorized-http-client-typed.ts"
    ])
    for (const [, file, code] of snippets) {
      expect(code, file).toBe(Fs.readFileSync(Path.join(root, file), "utf8"))
    }
  })
})
