import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

const src = fileURLToPath(new URL("./src", import.meta.url))

export default defineConfig({
  resolve: {
    alias: [
      { find: /^effect-renewable-bearer$/, replacement: `${src}/index.ts` },
      { find: /^effect-renewable-bearer\/(.*)$/, replacement: `${src}/$1.ts` }
    ]
  },
  test: {
    include: ["test/**/*.test.ts"],
    // A private redis-server for the Redis tests when REDIS_URL is not set (and the binary is installed).
    globalSetup: ["test/setup/redis.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000
  }
})
