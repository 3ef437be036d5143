/**
 * `npm start`: runs the demo (see `demo/demo.ts`) and exits 0 when no request failed, 1 when some did, 2 for
 * bad flags. `npm start -- --help` lists the flags.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Exit, Logger } from "effect"
import { parseFlags, run, timelineLogger, usage } from "./demo.js"

const main = Effect.suspend(() => {
  const flags = parseFlags(process.argv.slice(2))
  if (typeof flags === "string") {
    process.stderr.write(`${flags}\n\n${usage}`)
    return Effect.succeed(2)
  }
  if ("help" in flags) {
    process.stdout.write(usage)
    return Effect.succeed(0)
  }
  return run(flags).pipe(
    Effect.map((summary) => (summary.ok ? 0 : 1)),
    Effect.provide(Logger.replace(Logger.defaultLogger, timelineLogger(Date.now(), flags.json)))
  )
})

NodeRuntime.runMain(main, {
  disablePrettyLogger: true,
  teardown: (exit, onExit) => onExit(Exit.isSuccess(exit) && typeof exit.value === "number" ? exit.value : 1)
})
