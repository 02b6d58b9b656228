#!/usr/bin/env node
// tree-diff: list a directory tree (without following symlinks) and compare two trees.
// Node >= 20, no dependencies. Built to check that an install lays out node_modules
// exactly as pnpm does.
//
//   node scripts/tree-diff.mjs list <dir|listing> [selection...] [--nlink] [--no-hash]
//   node scripts/tree-diff.mjs diff <A> <B> [selection...] [--no-mode] [--no-hash]
//                                   [--no-collapse] [--limit N] [--summary]
//
// <dir|listing>: a directory, or a file written by `list` (so a baseline can be kept).
//
// One entry a line, in tree order (sorted by path, '/' first), tab-separated:
//   <path>  dir
//   <path>  symlink  <target as readlink returns it>
//   <path>  file     <mode, octal permission bits>  <size>  <sha256 hex>
// Absolute symlink targets inside the listed root are printed as $ROOT/... so that two
// trees at different places compare equal. --nlink adds the file's link count (listing only).
//
// Selection (patterns are /-separated, relative to the root; `*` and `?` match within one
// segment and also match dot-names, `**` matches zero or more segments; list-valued options
// take a comma-separated list and may be repeated):
//   --only P,...    keep an entry only if its path matches one of the patterns EXACTLY
//                   (write `dir/**` for a directory and everything below it)
//   --ignore P,...  drop every entry whose path, or one of whose ancestors, matches
//                   (ignoring a directory drops its subtree)
//   --ignore-entry P,...  drop the matching entries only (their subtrees stay listed)
//   --preset slots  the pnpm parity selection: every entry below node_modules/.pnpm/<slot>/node_modules
//                   and the importer's direct links node_modules/<alias> and node_modules/@scope/<alias>,
//                   minus .bin dirs, hoisting (.pnpm/node_modules), .modules.yaml, .pnpm/lock.yaml,
//                   .pnpm-workspace-state*.json, and the <pkg>/node_modules directory pnpm makes to
//                   hold .bin (see PRESETS below). Can be combined with more
//                   --only/--ignore.
// Diff options: --no-mode / --no-hash skip those comparisons; --nlink also reports files that
// are hardlinked (nlink > 1) on one side and a single copy (nlink 1) on the other; a directory present on one side
// only is printed once with the count of entries below it unless --no-collapse; --limit N
// prints at most N difference lines; --summary prints only the counts.
// Exit status of diff: 0 equal, 1 different, 2 usage error.
import * as crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { pathToFileURL } from 'node:url'

export const PRESETS = {
  slots: {
    only: [
      'node_modules/.pnpm/*/node_modules/**',
      'node_modules/*',
      'node_modules/@*/*',
    ],
    ignore: [
      'node_modules/.bin',
      'node_modules/.modules.yaml',
      'node_modules/.pnpm-workspace-state*.json',
      'node_modules/.pnpm/node_modules',
      'node_modules/.pnpm/lock.yaml',
      'node_modules/.pnpm/*/node_modules/*/node_modules/.bin',
      'node_modules/.pnpm/*/node_modules/@*/*/node_modules/.bin',
    ],
    // pnpm creates <pkg>/node_modules only to hold .bin: drop that directory's own line,
    // but still list anything else inside it (bundled dependencies)
    ignoreEntry: [
      'node_modules/.pnpm/*/node_modules/*/node_modules',
      'node_modules/.pnpm/*/node_modules/@*/*/node_modules',
    ],
  },
}

// ---------- patterns ----------

function segmentMatcher (seg) {
  if (seg === '**') return '**'
  if (!/[*?]/.test(seg)) return (s) => s === seg
  const re = new RegExp('^' + seg.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$', 's')
  return (s) => re.test(s)
}

export function compilePattern (pattern) {
  const segs = pattern.split('/').filter((s, i, a) => s !== '' && !(s === '.' && a.length > 1))
  return { source: pattern, segs: segs.map(segmentMatcher) }
}

// mode 'exact': the whole path matches; 'prefix': some path starting with `parts` could match.
function matchSegs (pat, pi, parts, i, prefix) {
  while (pi < pat.length) {
    const m = pat[pi]
    if (m === '**') {
      if (pi === pat.length - 1) return true
      for (let k = i; k <= parts.length; k++) if (matchSegs(pat, pi + 1, parts, k, prefix)) return true
      return false
    }
    if (i >= parts.length) return prefix
    if (!m(parts[i])) return false
    pi++; i++
  }
  return i === parts.length
}

export function compileSelection ({ only = [], ignore = [], ignoreEntry = [], preset } = {}) {
  only = [...only]; ignore = [...ignore]; ignoreEntry = [...ignoreEntry]
  for (const p of [preset ?? []].flat()) {
    const def = PRESETS[p]
    if (!def) throw new Error(`unknown preset ${p} (known: ${Object.keys(PRESETS).join(', ')})`)
    only.push(...def.only); ignore.push(...def.ignore); ignoreEntry.push(...(def.ignoreEntry ?? []))
  }
  const ignoreEntryP = ignoreEntry.map(compilePattern)
  const onlyP = only.map(compilePattern)
  const ignoreP = ignore.map(compilePattern)
  return {
    only, ignore, ignoreEntry,
    // the entry itself is listed
    selected (parts) {
      return (onlyP.length === 0 || onlyP.some((p) => matchSegs(p.segs, 0, parts, 0, false))) &&
        !ignoreEntryP.some((p) => matchSegs(p.segs, 0, parts, 0, false))
    },
    // the entry and its subtree are dropped (checked top-down, so ancestors are covered)
    ignored (parts) {
      return ignoreP.some((p) => matchSegs(p.segs, 0, parts, 0, false))
    },
    // something at or below this directory could be selected
    mayDescend (parts) {
      return onlyP.length === 0 || onlyP.some((p) => matchSegs(p.segs, 0, parts, 0, true))
    },
  }
}

// ---------- listing ----------

// crypto.hash (one-shot) is Node >= 20.12; a named import of it would fail to link on older 20.x
const sha256 = typeof crypto.hash === 'function'
  ? (buf) => crypto.hash('sha256', buf, 'hex')
  : (buf) => crypto.createHash('sha256').update(buf).digest('hex')

/**
 * List a tree. Returns a Map path -> entry, entry = {type:'dir'} | {type:'symlink', target}
 * | {type:'file', mode, size, hash?, nlink}; paths are '/'-separated and relative to `root`.
 * Options: only, ignore, preset (see compileSelection), hash (default true).
 */
export async function listTree (root, opts = {}) {
  const sel = opts.selection ?? compileSelection(opts)
  const wantHash = opts.hash !== false
  const absRoot = path.resolve(root)
  const entries = new Map()
  const files = []
  const stack = [[absRoot, []]]
  while (stack.length) {
    const [abs, parts] = stack.pop()
    let dirents
    try { dirents = fs.readdirSync(abs, { withFileTypes: true }) } catch (e) {
      if (parts.length === 0) throw e
      entries.set(parts.join('/'), { type: 'error', error: e.code }); continue
    }
    for (const d of dirents) {
      const p = [...parts, d.name]
      if (sel.ignored(p)) continue
      const rel = p.join('/')
      const full = abs + '/' + d.name
      const take = sel.selected(p)
      if (d.isDirectory()) {
        if (take) entries.set(rel, { type: 'dir' })
        if (sel.mayDescend(p)) stack.push([full, p])
      } else if (d.isSymbolicLink()) {
        if (!take) continue
        let target = fs.readlinkSync(full)
        if (path.isAbsolute(target) && (target === absRoot || target.startsWith(absRoot + '/'))) target = '$ROOT' + target.slice(absRoot.length)
        entries.set(rel, { type: 'symlink', target })
      } else if (take) {
        const st = fs.lstatSync(full)
        if (!st.isFile()) { entries.set(rel, { type: 'other', mode: st.mode & 0o7777 }); continue }
        const e = { type: 'file', mode: st.mode & 0o7777, size: st.size, nlink: st.nlink, ino: `${st.dev}:${st.ino}` }
        entries.set(rel, e)
        if (wantHash) files.push([full, e])
      }
    }
  }
  if (wantHash) await hashFiles(files, opts.concurrency ?? 16)
  for (const e of entries.values()) delete e.ino
  return new Map([...entries].sort((a, b) => comparePaths(a[0], b[0])))
}

async function hashFiles (files, concurrency) {
  const byIno = new Map() // hardlinks inside the tree are read once
  let next = 0
  async function worker () {
    while (next < files.length) {
      const [full, e] = files[next++]
      let pending = byIno.get(e.ino)
      if (!pending) {
        pending = fs.promises.readFile(full).then(sha256)
        byIno.set(e.ino, pending)
      }
      e.hash = await pending
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, files.length) }, worker))
}

// Tree order: a directory's entries follow it directly ('/' sorts before every other character).
export function comparePaths (x, y) {
  const a = x.replaceAll('/', '\0'); const b = y.replaceAll('/', '\0')
  return a < b ? -1 : a > b ? 1 : 0
}

export function formatEntry (rel, e, { nlink = false } = {}) {
  switch (e.type) {
    case 'symlink': return `${rel}\tsymlink\t${e.target}`
    case 'file': return `${rel}\tfile\t${e.mode.toString(8).padStart(3, '0')}\t${e.size}\t${e.hash ?? '-'}${nlink ? `\tnlink=${e.nlink}` : ''}`
    case 'other': return `${rel}\tother\t${e.mode.toString(8)}`
    case 'error': return `${rel}\terror\t${e.error}`
    default: return `${rel}\t${e.type}`
  }
}

/** Parse the output of `list` back into a Map (selection applied to it as to a tree). */
export function parseListing (text, opts = {}) {
  const sel = opts.selection ?? compileSelection(opts)
  const entries = new Map()
  for (const line of text.split('\n')) {
    if (!line) continue
    const [rel, type, a, b, c] = line.split('\t')
    const parts = rel.split('/')
    let ign = false
    for (let k = 1; k <= parts.length && !ign; k++) ign = sel.ignored(parts.slice(0, k))
    if (ign || !sel.selected(parts)) continue
    if (type === 'symlink') entries.set(rel, { type, target: a })
    else if (type === 'file') {
      const nl = /^nlink=(\d+)$/.exec(line.split('\t')[5] ?? '')
      entries.set(rel, { type, mode: parseInt(a, 8), size: Number(b), hash: c === '-' ? undefined : c, nlink: nl ? Number(nl[1]) : undefined })
    }
    else entries.set(rel, { type })
  }
  return entries
}

/** A directory is listed; a regular file is read as a listing. */
export async function load (where, opts = {}) {
  const st = fs.statSync(where)
  return st.isDirectory() ? listTree(where, opts) : parseListing(fs.readFileSync(where, 'utf8'), opts)
}

// ---------- diff ----------

/**
 * Compare two listings (Maps from listTree/parseListing). Returns
 * { onlyA: [path], onlyB: [path], differ: [{path, fields: [{field, a, b}]}], counts }.
 * Options: mode (default true), hash (default true).
 */
export function diffListings (a, b, { mode = true, hash = true, nlink = false } = {}) {
  const onlyA = []; const onlyB = []; const differ = []
  for (const [p, ea] of a) {
    const eb = b.get(p)
    if (!eb) { onlyA.push(p); continue }
    const fields = []
    if (ea.type !== eb.type) fields.push({ field: 'type', a: ea.type, b: eb.type })
    else if (ea.type === 'symlink') { if (ea.target !== eb.target) fields.push({ field: 'target', a: ea.target, b: eb.target }) }
    else if (ea.type === 'file') {
      if (mode && ea.mode !== eb.mode) fields.push({ field: 'mode', a: ea.mode.toString(8), b: eb.mode.toString(8) })
      if (ea.size !== eb.size) fields.push({ field: 'size', a: ea.size, b: eb.size })
      else if (hash && ea.hash && eb.hash && ea.hash !== eb.hash) fields.push({ field: 'hash', a: ea.hash.slice(0, 16), b: eb.hash.slice(0, 16) })
      // hardlinked (to the store or elsewhere) on one side, a lone copy on the other
      if (nlink && ea.nlink !== undefined && eb.nlink !== undefined && (ea.nlink > 1) !== (eb.nlink > 1)) {
        fields.push({ field: 'linked', a: `nlink=${ea.nlink}`, b: `nlink=${eb.nlink}` })
      }
    }
    if (fields.length) differ.push({ path: p, fields })
  }
  for (const p of b.keys()) if (!a.has(p)) onlyB.push(p)
  onlyB.sort(comparePaths)
  const counts = { a: a.size, b: b.size, onlyA: onlyA.length, onlyB: onlyB.length, differ: differ.length }
  for (const d of differ) for (const f of d.fields) counts[`differ.${f.field}`] = (counts[`differ.${f.field}`] ?? 0) + 1
  return { onlyA, onlyB, differ, counts, equal: !onlyA.length && !onlyB.length && !differ.length }
}

export async function diffTrees (dirA, dirB, opts = {}) {
  const selection = compileSelection(opts)
  const [a, b] = await Promise.all([load(dirA, { ...opts, selection }), load(dirB, { ...opts, selection })])
  return diffListings(a, b, opts)
}

// Paths present on one side only, with whole missing directories folded into one line.
function collapse (paths, side) {
  const out = []
  let top = null
  for (const p of paths) {
    if (top && p.startsWith(top.path + '/')) { top.below++; continue }
    top = { path: p, below: 0, dir: side.get(p)?.type === 'dir' }
    out.push(top)
  }
  return out
}

export function formatDiff (result, a, b, { collapse: fold = true, limit = Infinity, labels = ['A', 'B'] } = {}) {
  const lines = []
  const missing = (paths, side, sign, label) => {
    for (const m of fold ? collapse(paths, side) : paths.map((p) => ({ path: p, below: 0 }))) {
      const e = side.get(m.path)
      lines.push(`${sign} ${formatEntry(m.path, e)}${m.below ? `\t(+${m.below} entries below)` : ''}\t[only in ${label}]`)
    }
  }
  // interleave by path so related differences sit together
  missing(result.onlyA, a, '-', labels[0])
  missing(result.onlyB, b, '+', labels[1])
  for (const d of result.differ) lines.push(`~ ${d.path}\t${d.fields.map((f) => `${f.field}: ${f.a} | ${f.b}`).join('; ')}`)
  const key = (l) => l.slice(2).split('\t')[0]
  lines.sort((x, y) => comparePaths(key(x), key(y)))
  return lines.length > limit ? [...lines.slice(0, limit), `... ${lines.length - limit} more lines`] : lines
}

// ---------- CLI ----------

function parseArgs (argv) {
  const o = { only: [], ignore: [], ignoreEntry: [], preset: [], pos: [], hash: true, mode: true, collapse: true, limit: Infinity, summary: false, nlink: false }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const val = () => { const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i]; if (v === undefined) throw new Error(`${a} needs a value`); return v }
    const name = a.split('=')[0]
    if (name === '--only' || name === '--include') o.only.push(...val().split(',').filter(Boolean))
    else if (name === '--ignore' || name === '--exclude') o.ignore.push(...val().split(',').filter(Boolean))
    else if (name === '--ignore-entry') o.ignoreEntry.push(...val().split(',').filter(Boolean))
    else if (name === '--preset') o.preset.push(val())
    else if (a === '--no-hash') o.hash = false
    else if (a === '--no-mode') o.mode = false
    else if (a === '--no-collapse') o.collapse = false
    else if (a === '--nlink') o.nlink = true
    else if (a === '--summary') o.summary = true
    else if (name === '--limit') o.limit = Number(val())
    else if (a === '-h' || a === '--help') o.help = true
    else if (a.startsWith('--')) throw new Error(`unknown option ${a}`)
    else o.pos.push(a)
  }
  return o
}

const USAGE = `usage:
  tree-diff.mjs list <dir|listing> [--preset slots] [--only P,..] [--ignore P,..] [--ignore-entry P,..]
                     [--no-hash] [--nlink]
  tree-diff.mjs diff <A> <B> [--preset slots] [--only P,..] [--ignore P,..] [--ignore-entry P,..] [--no-hash] [--no-mode]
                     [--nlink] [--no-collapse] [--limit N] [--summary]
patterns: '*' '?' within a segment, '**' any number of segments; --only matches the path exactly,
--ignore drops the matching path and its subtree, --ignore-entry drops only the matching path. Preset slots = ${JSON.stringify(PRESETS.slots)}`

export async function main (argv) {
  let o
  try { o = parseArgs(argv) } catch (e) { console.error(e.message + '\n' + USAGE); return 2 }
  const [cmd, ...pos] = o.pos
  if (o.help || !cmd) { console.log(USAGE); return o.help ? 0 : 2 }
  let selection
  try { selection = compileSelection(o) } catch (e) { console.error(e.message); return 2 }
  const opts = { ...o, selection }
  const out = (s) => process.stdout.write(s)
  if (cmd === 'list' && pos.length === 1) {
    const entries = await load(pos[0], opts)
    let buf = ''
    for (const [p, e] of entries) {
      buf += formatEntry(p, e, o) + '\n'
      if (buf.length > 1 << 16) { out(buf); buf = '' }
    }
    out(buf)
    return 0
  }
  if (cmd === 'diff' && pos.length === 2) {
    const [a, b] = await Promise.all(pos.map((p) => load(p, opts)))
    const r = diffListings(a, b, o)
    if (!o.summary) {
      const lines = formatDiff(r, a, b, { collapse: o.collapse, limit: o.limit, labels: pos })
      if (lines.length) out(lines.join('\n') + '\n')
    }
    const c = r.counts
    const extra = Object.entries(c).filter(([k]) => k.startsWith('differ.')).map(([k, v]) => `${k.slice(7)} ${v}`).join(', ')
    console.log(`${r.equal ? 'EQUAL' : 'DIFFERENT'}: A ${c.a} entries, B ${c.b} entries; only in A ${c.onlyA}, only in B ${c.onlyB}, differing ${c.differ}${extra ? ` (${extra})` : ''}\n  A = ${pos[0]}\n  B = ${pos[1]}`)
    return r.equal ? 0 : 1
  }
  console.error(USAGE)
  return 2
}

if (process.argv[1] && import.meta.url === pathToFileURL(fs.realpathSync(process.argv[1])).href) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code }, (e) => { console.error(e?.stack ?? e); process.exitCode = 2 })
}
