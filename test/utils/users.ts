import * as ChildProcess from "node:child_process"

/** The user the file store tests run as when the test runner is root; created on first use. */
export const TEST_USER = "erb-store-test"

/** How to run a process as a user that is not root, or why this machine does not allow it. */
export type NonRootUser =
  | {
      readonly _tag: "Available"
      readonly uid: number
      readonly gid: number
      readonly prefix: ReadonlyArray<string>
    }
  | { readonly _tag: "Unavailable"; readonly why: string }

const run = (command: string, args: ReadonlyArray<string>) =>
  ChildProcess.spawnSync(command, [...args], { encoding: "utf8", timeout: 10_000 })

const idOf = (flag: "-u" | "-g") => {
  const result = run("id", [flag, TEST_USER])
  return result.status === 0 ? Number(result.stdout.trim()) : undefined
}

/**
 * A non-root user to run a child process as. Already not root: the current user, no prefix. Root: the user
 * `TEST_USER` (created with `useradd` if missing, a system user without home or shell), entered with
 * `setpriv`. Unavailable (with the reason) where the platform has no user ids or the machine refuses.
 */
export const nonRootUser = (): NonRootUser => {
  const uid = process.getuid?.()
  const gid = process.getgid?.()
  if (uid === undefined || gid === undefined)
    return { _tag: "Unavailable", why: "this platform has no user ids" }
  if (uid !== 0) return { _tag: "Available", uid, gid, prefix: [] }
  if (idOf("-u") === undefined) {
    const created = run("useradd", [
      "--system",
      "--no-create-home",
      "--shell",
      "/usr/sbin/nologin",
      TEST_USER
    ])
    if (created.status !== 0 && idOf("-u") === undefined)
      return {
        _tag: "Unavailable",
        why: `useradd ${TEST_USER} failed: ${created.stderr || created.error?.message}`
      }
  }
  const userId = idOf("-u")
  const groupId = idOf("-g")
  if (userId === undefined || groupId === undefined)
    return { _tag: "Unavailable", why: `the user ${TEST_USER} has no id` }
  const prefix = ["setpriv", `--reuid=${userId}`, `--regid=${groupId}`, "--clear-groups", "--"]
  const probe = run(prefix[0], [...prefix.slice(1), "id", "-u"])
  if (probe.status !== 0 || probe.stdout.trim() !== String(userId))
    return {
      _tag: "Unavailable",
      why: `setpriv cannot switch to ${TEST_USER}: ${probe.stderr || probe.error?.message}`
    }
  return { _tag: "Available", uid: userId, gid: groupId, prefix }
}
