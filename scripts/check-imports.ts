/**
 * `npm run check:imports` (part of `npm run lint`): the import graph of src/ runs one way, and the folders
 * around it keep apart.
 *
 * - No import circle between the modules of src/ through imports that load a module at run time
 *   (`import type` and `export type` do not; under `verbatimModuleSyntax` an `import { type A }` still
 *   loads its module, so it counts).
 * - No module of src/internal/ loads a public module (src/*.ts) at run time: internal code imports public
 *   modules as `import type` only; a tag, error class or constant internal code needs is made in
 *   src/internal/ and re-exported by the public module.
 *
 * - Outside src/: bench/ never imports test/, test/ never imports bench/, and support/ (what both share: the
 *   real processes of the store tests and benchmark, the loopback server, the bench report's format) imports
 *   neither.
 *
 * Fails with the offending files named.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import ts from "typescript"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const srcDir = path.join(root, "src")

const sourceFiles = (dir: string): Array<string> =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name)
    if (entry.isDirectory()) return sourceFiles(full)
    return entry.name.endsWith(".ts") ? [full] : []
  })

const rel = (file: string): string => path.relative(root, file)

/** Whether an import or export declaration loads its module at run time. */
const loadsAtRunTime = (node: ts.ImportDeclaration | ts.ExportDeclaration): boolean => {
  if (ts.isImportDeclaration(node)) return node.importClause?.isTypeOnly !== true
  return !node.isTypeOnly
}

/** The relative imports of `file` (only those that load at run time, with `runTimeOnly`), as absolute paths. */
const relativeImports = (file: string, runTimeOnly: boolean): Array<string> => {
  const source = ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.ES2022, false)
  const targets: Array<string> = []
  for (const statement of source.statements) {
    if (!ts.isImportDeclaration(statement) && !ts.isExportDeclaration(statement)) continue
    const specifier = statement.moduleSpecifier
    if (specifier === undefined || !ts.isStringLiteral(specifier) || !specifier.text.startsWith(".")) continue
    if (runTimeOnly && !loadsAtRunTime(statement)) continue
    targets.push(path.resolve(path.dirname(file), specifier.text.replace(/\.js$/, ".ts")))
  }
  return targets
}

const files = sourceFiles(srcDir).sort()
const graph = new Map(files.map((file) => [file, relativeImports(file, true)]))
const isInternal = (file: string): boolean => file.startsWith(path.join(srcDir, "internal") + path.sep)

const problems: Array<string> = []

for (const [file, targets] of graph) {
  if (!isInternal(file)) continue
  for (const target of targets) {
    if (!isInternal(target)) {
      problems.push(`${rel(file)} loads the public module ${rel(target)} at run time (use import type)`)
    }
  }
}

// Circles: a depth-first search that reports each back edge with the path that closes it.
const state = new Map<string, "open" | "done">()
const stack: Array<string> = []
const visit = (file: string): void => {
  state.set(file, "open")
  stack.push(file)
  for (const target of graph.get(file) ?? []) {
    const seen = state.get(target)
    if (seen === "open") {
      const circle = [...stack.slice(stack.indexOf(target)), target].map(rel)
      problems.push(`import circle: ${circle.join(" -> ")}`)
    } else if (seen === undefined && graph.has(target)) {
      visit(target)
    }
  }
  stack.pop()
  state.set(file, "done")
}
for (const file of files) if (!state.has(file)) visit(file)

// Folders outside src/ that must not import each other, type-only imports included.
const forbidden: ReadonlyArray<readonly [string, ReadonlyArray<string>]> = [
  ["bench", ["test"]],
  ["test", ["bench"]],
  ["support", ["test", "bench"]]
]
const inFolder = (file: string, folder: string): boolean =>
  file.startsWith(path.join(root, folder) + path.sep)
for (const [folder, banned] of forbidden) {
  const dir = path.join(root, folder)
  if (!existsSync(dir)) continue
  for (const file of sourceFiles(dir)) {
    for (const target of relativeImports(file, false)) {
      const into = banned.find((other) => inFolder(target, other))
      if (into !== undefined)
        problems.push(`${rel(file)} imports ${rel(target)}: ${folder}/ never imports ${into}/`)
    }
  }
}

if (problems.length > 0) {
  for (const problem of problems) console.error(problem)
  console.error(`check:imports: ${problems.length} problem(s) in the import graph`)
  process.exit(1)
}
console.log(
  `check:imports: ${files.length} modules of src/, no circle, nothing loaded back up from internal/; ` +
    "bench/, test/ and support/ keep apart"
)
