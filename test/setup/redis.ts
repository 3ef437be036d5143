/**
 * Vitest global setup: a private `redis-server` for the Redis tests when `REDIS_URL` is not set, so `npm test`
 * on a machine with Redis installed runs every Redis test without any configuration. It listens on a free
 * loopback port, keeps nothing on disk, and is stopped when the run ends. With `REDIS_URL` set, that Redis is
 * used and nothing is started; without the `redis-server` binary nothing is started either, and the Redis
 * tests skip (saying so in one line).
 */
import * as ChildProcess from "node:child_process"
import * as Net from "node:net"

/** A port nobody listens on right now, from the kernel. */
const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = Net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

/** Whether a Redis answers PING on `port` within `millis`. */
const answersPing = (port: number, millis: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = Net.connect({ host: "127.0.0.1", port })
    const done = (answer: boolean) => {
      socket.destroy()
      resolve(answer)
    }
    socket.setTimeout(millis, () => done(false))
    socket.once("error", () => done(false))
    socket.once("connect", () => socket.write("PING\r\n"))
    socket.once("data", (data) => done(data.toString().startsWith("+PONG")))
  })

export default async function setup(): Promise<(() => Promise<void>) | undefined> {
  if (process.env.REDIS_URL !== undefined) return undefined
  if (ChildProcess.spawnSync("redis-server", ["--version"]).status !== 0) return undefined

  const port = await freePort()
  const server = ChildProcess.spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    { stdio: "ignore" }
  )
  const exited = new Promise<void>((resolve) => server.once("exit", () => resolve()))
  const deadline = Date.now() + 10_000
  while (!(await answersPing(port, 500))) {
    if (server.exitCode !== null || Date.now() > deadline) {
      server.kill("SIGKILL")
      throw new Error(`test/setup/redis.ts: redis-server did not start on 127.0.0.1:${port}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  // The test workers are started after the global setup and inherit this process's environment.
  process.env.REDIS_URL = `redis://127.0.0.1:${port}`
  return async () => {
    delete process.env.REDIS_URL
    server.kill("SIGTERM")
    await exited
  }
}
