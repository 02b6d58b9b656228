#!/usr/bin/env node
// Run after `napi build` (the `build` script does): napi's generated index.js ends a failed
// load with a generic "Cannot find native binding" that names no package. Users of
// @pacquet/native need to know which platform package is missing and what to do, so the
// error is replaced by one with a code, the package name and a hint. The generated loader
// is otherwise kept as napi writes it; if its text changes, this script fails loudly.
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const file = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', process.argv[2] ?? 'index.js')
const text = fs.readFileSync(file, 'utf8')
const MARK = '/* @pacquet/native: platform package error */'
if (text.includes(MARK)) process.exit(0)

const generic = /    const error = new Error\(\n {6}`Cannot find native binding\. ` \+\n[^\n]*\n[^\n]*\n {4}\)\n/
if (!generic.test(text)) {
  console.error(`${file}: napi's "Cannot find native binding" error was not found; update scripts/loader-error.mjs`)
  process.exit(1)
}

const replacement = `    ${MARK}
    // The loader tried this platform's package; the first "cannot find" names it.
    const missing = loadErrors
      .map((e) => /Cannot find module '(@pacquet\\/native-[^'/]+)'/.exec(String(e && e.message))?.[1])
      .find(Boolean)
    const target = \`\${process.platform}-\${process.arch}\${process.platform === 'linux' ? (isMusl() ? ' (musl)' : ' (glibc)') : ''}\`
    const error = new Error(missing
      ? \`@pacquet/native has no binary for \${target}: the package \${missing} is not installed.\`
      : \`@pacquet/native could not load its binary for \${target}.\`)
    error.code = 'ERR_PACQUET_NATIVE_BINDING'
    error.hint = missing
      ? \`Install it: run the install again with optional dependencies enabled (not --omit=optional or --no-optional; with pnpm, supportedArchitectures must include this platform), or add \${missing}@\${require('./package.json').version} to your dependencies. NAPI_RS_NATIVE_LIBRARY_PATH may point at a .node file built for this platform.\`
      : 'See the causes below; NAPI_RS_NATIVE_LIBRARY_PATH may point at a .node file built for this platform.'
`
fs.writeFileSync(file, text.replace(generic, replacement))
