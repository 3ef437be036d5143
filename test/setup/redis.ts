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

/**
 * Resolves once `server` logs that it accepts connections, rejects if it exits first or says nothing of the
 * kind within `millis` (no polling: the server's own log line is the signal).
 */
const ready = (server: ChildProcess.ChildProcess, millis: number): Promise<void> =>
  new Promise((resolve, reject) => {
    let log = ""
    const fail = (why: string) => {
      cleanup()
      reject(new Error(`test/setup/redis.ts: redis-server ${why}`))
    }
    const onData = (chunk: Buffer) => {
      log = (log + chunk.toString("utf8")).slice(-4096)
      if (log.includes("Ready to accept connections")) {
        cleanup()
        resolve()
      }
    }
    const onExit = () => fail(`exited before it was ready: ${log.trim().split("\n").pop() ?? ""}`)
    const timer = setTimeout(() => fail(`was not ready within ${millis} ms`), millis)
    const cleanup = () => {
      clearTimeout(timer)
      server.stdout?.off("data", onData)
      server.off("exit", onExit)
    }
    server.stdout?.on("data", onData)
    server.once("exit", onExit)
  })

export default async function setup(): Promise<(() => Promise<void>) | undefined> {
  if (process.env.REDIS_URL !== undefined) return undefined
  if (ChildProcess.spawnSync("redis-server", ["--version"]).status !== 0) return undefined

  const port = await freePort()
  const server = ChildProcess.spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    { stdio: ["ignore", "pipe", "ignore"] }
  )
  const exited = new Promise<void>((resolve) => server.once("exit", () => resolve()))
  try {
    await ready(server, 10_000)
    if (!(await answersPing(port, 2_000)))
      throw new Error(`test/setup/redis.ts: no PONG on 127.0.0.1:${port}`)
  } catch (error) {
    server.kill("SIGKILL")
    throw error
  }
  // Nothing reads the server's log from here on; it must not fill the pipe and block the server.
  server.stdout?.resume()
  // The test workers are started after the global setup and inherit this process's environment.
  process.env.REDIS_URL = `redis://127.0.0.1:${port}`
  return async () => {
    delete process.env.REDIS_URL
    server.kill("SIGTERM")
    await exited
  }
}
