/**
 * `npm run check:docs`: every TypeScript code block of the documentation compiles.
 *
 * It collects
 *
 * - each ```ts (or ```typescript) block of README.md and docs/*.md, and
 * - each ```ts block inside an `@example` of the JSDoc in src/ (not src/internal/),
 *
 * writes each one as a module into .tmp/doc-blocks/ (gitignored), and type-checks them all in one program
 * with the repository's tsconfig.json, so `import … from "effect-renewable-bearer"` resolves to src/ exactly
 * as in the tests. Errors are reported at their line in the Markdown or source file.
 *
 * Two markers in a block's info string:
 *
 * - ```ts file=test/x.test.ts   the block must equal that file (which the test suite compiles and runs);
 * - ```ts no-check              a deliberate fragment, not compiled (use sparingly).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import ts from "typescript"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const outDir = path.join(root, ".tmp", "doc-blocks")

interface Block {
  /** Where it comes from, relative to the root. */
  readonly file: string
  /** 1-based line of the block's first code line in `file`. */
  readonly line: number
  readonly info: string
  readonly code: string
}

const fence = /^(\s*)(`{3,})\s*([^\n`]*)$/

/** Fenced blocks of a Markdown text (or of JSDoc lines with the ` * ` prefix already stripped). */
const fencedBlocks = (
  file: string,
  lines: ReadonlyArray<string>,
  lineOf: (i: number) => number
): Array<Block> => {
  const blocks: Array<Block> = []
  for (let i = 0; i < lines.length; i++) {
    const open = fence.exec(lines[i]!)
    if (open === null) continue
    const [, indent, ticks, info] = open
    const body: Array<string> = []
    let j = i + 1
    for (; j < lines.length; j++) {
      const close = /^(\s*)(`{3,})\s*$/.exec(lines[j]!)
      if (close !== null && close[2]!.length >= ticks!.length) break
      body.push(lines[j]!.startsWith(indent!) ? lines[j]!.slice(indent!.length) : lines[j]!)
    }
    const lang = info!.trim().split(/\s+/)[0] ?? ""
    if (lang === "ts" || lang === "typescript") {
      blocks.push({ file, line: lineOf(i + 1), info: info!.trim(), code: body.join("\n") })
    }
    i = j
  }
  return blocks
}

const markdownFiles = (): Array<string> => {
  const docs = path.join(root, "docs")
  const inDocs = existsSync(docs)
    ? readdirSync(docs)
        .filter((name) => name.endsWith(".md"))
        .map((name) => path.join("docs", name))
    : []
  return ["README.md", ...inDocs.sort()].filter((file) => existsSync(path.join(root, file)))
}

const sourceFiles = (): Array<string> =>
  readdirSync(path.join(root, "src"))
    .filter((name) => name.endsWith(".ts"))
    .sort()
    .map((name) => path.join("src", name))

const fromMarkdown = (file: string): Array<Block> => {
  const lines = readFileSync(path.join(root, file), "utf8").split("\n")
  return fencedBlocks(file, lines, (i) => i + 1)
}

/** The ```ts blocks of every `@example` in the JSDoc comments of a source file. */
const fromJsDoc = (file: string): Array<Block> => {
  const lines = readFileSync(path.join(root, file), "utf8").split("\n")
  const blocks: Array<Block> = []
  for (let i = 0; i < lines.length; i++) {
    if (!/^\s*\/\*\*/.test(lines[i]!)) continue
    let end = i
    while (end < lines.length && !lines[end]!.includes("*/")) end++
    const comment = lines.slice(i, end + 1)
    const at = comment.findIndex((l) => /^\s*\*\s*@example\b/.test(l))
    if (at >= 0) {
      const stripped = comment.map((l) => l.replace(/^\s*\*\s?/, "").replace(/^\s*\/\*\*\s?/, ""))
      // Only the part of the comment after `@example` and before the next tag.
      let stop = at + 1
      while (stop < stripped.length && !/^@\w+/.test(stripped[stop]!)) stop++
      const first = i + at + 1
      blocks.push(...fencedBlocks(file, stripped.slice(at + 1, stop), (k) => first + k + 1))
    }
    i = end
  }
  return blocks
}

const slug = (block: Block) => `${block.file.replace(/[^A-Za-z0-9]+/g, "_")}_L${block.line}.ts`

const main = () => {
  const blocks = [...markdownFiles().flatMap(fromMarkdown), ...sourceFiles().flatMap(fromJsDoc)]
  const problems: Array<string> = []

  // Blocks that mirror a file must equal it.
  const toCompile: Array<Block> = []
  for (const block of blocks) {
    const mirror = /(?:^|\s)file=(\S+)/.exec(block.info)?.[1]
    if (mirror !== undefined) {
      const target = path.join(root, mirror)
      if (!existsSync(target)) problems.push(`${block.file}:${block.line}: file=${mirror} does not exist`)
      else if (readFileSync(target, "utf8").trim() !== block.code.trim())
        problems.push(`${block.file}:${block.line}: the block differs from ${mirror}; copy the file into it`)
      continue
    }
    if (/(?:^|\s)no-check(?:\s|$)/.test(block.info)) continue
    toCompile.push(block)
  }

  rmSync(outDir, { recursive: true, force: true })
  mkdirSync(outDir, { recursive: true })
  const byPath = new Map<string, Block>()
  for (const block of toCompile) {
    const file = path.join(outDir, slug(block))
    writeFileSync(file, `${block.code}\n`)
    byPath.set(path.normalize(file), block)
  }
  writeFileSync(
    path.join(outDir, "tsconfig.json"),
    JSON.stringify(
      {
        extends: "../../tsconfig.json",
        compilerOptions: {
          // A snippet may declare what it does not use, and each block is a module of its own.
          noUnusedLocals: false,
          noUnusedParameters: false,
          moduleDetection: "force",
          noEmit: true,
          declaration: false,
          declarationMap: false,
          sourceMap: false
        },
        include: ["./*.ts"]
      },
      null,
      2
    )
  )

  const config = ts.getParsedCommandLineOfConfigFile(path.join(outDir, "tsconfig.json"), undefined, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => {
      throw new Error(ts.flattenDiagnosticMessageText(d.messageText, "\n"))
    }
  })!
  const program = ts.createProgram({ rootNames: config.fileNames, options: config.options })
  for (const diagnostic of ts.getPreEmitDiagnostics(program)) {
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n")
    const source = diagnostic.file
    if (source === undefined || diagnostic.start === undefined) {
      problems.push(`error TS${diagnostic.code}: ${message}`)
      continue
    }
    const { line, character } = source.getLineAndCharacterOfPosition(diagnostic.start)
    const block = byPath.get(path.normalize(source.fileName))
    const where =
      block === undefined
        ? `${path.relative(root, source.fileName)}:${line + 1}:${character + 1}`
        : `${block.file}:${block.line + line}:${character + 1}`
    problems.push(`${where} error TS${diagnostic.code}: ${message}`)
  }

  const files = new Set(blocks.map((b) => b.file))
  if (problems.length > 0) {
    process.stderr.write(`${problems.join("\n")}\n\ncheck:docs: ${problems.length} problem(s)\n`)
    process.exitCode = 1
  } else {
    // Kept on failure, to look at; removed on success so that linters never see the snippets.
    rmSync(outDir, { recursive: true, force: true })
    process.stdout.write(
      `check:docs: ${toCompile.length} code blocks compile, ${blocks.length - toCompile.length} mirrored or skipped, in ${files.size} files\n`
    )
  }
}

main()
