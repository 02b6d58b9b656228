// Builds a test project from a compact description of fake packages:
//   - pnpm-lock.yaml in the v9 format, written the way pnpm 9+ writes it,
//   - package.json,
//   - the tarballs a registry must serve for it (Map<urlPath, Buffer>).
//
//   const project = makeProject(dir, {
//     packages: [
//       { name: 'a', version: '1.0.0', dependencies: { b: '1.0.0' }, bin: { 'a-cli': 'bin/cli.js' } },
//       { name: 'b', version: '1.0.0' },
//       { name: 'bar', version: '1.0.0' },
//       { name: 'host', version: '2.0.0' },
//       { name: 'plugin', version: '1.0.0', peerDependencies: { host: '^2.0.0' },
//         snapshots: [{ peers: '(host@2.0.0)', dependencies: { host: '2.0.0' } }] },
//     ],
//     importer: { dependencies: { a: '1.0.0', foo: 'bar@1.0.0', host: '2.0.0', plugin: '1.0.0(host@2.0.0)' } },
//   })
//   const registry = await startRegistry({ tarballs: project.tarballs })
//
// Dependency references use the lockfile's own notation (what a v9 snapshot or importer
// `version:` holds): '1.0.0', '1.0.0(host@2.0.0)' (peer suffix), or 'bar@1.0.0' (an alias:
// the key is the dependency's real name and version).
//
// Package descriptor fields:
//   name, version                 required
//   files                         { path: string|Buffer|{content, mode}|null }; null removes a default file
//   dependencies, optionalDependencies   { alias: ref } (snapshot edges; package.json gets ranges)
//   peerDependencies, peerDependenciesMeta, bin, os, cpu, libc, engines, scripts, deprecated
//   snapshots                     [{ peers: '(x@1.0.0)', dependencies?, optionalDependencies?, optional? }]
//                                 default: one snapshot `name@version` with the package's edges
//   integrity                     lockfile integrity override (e.g. to force a mismatch)
//   resolution                    full lockfile resolution override
//   tarball                       Buffer served instead of the generated tarball
//   serve: false                  leave the tarball out of the registry map (a 404)
// Project options: lockfileVersion, settings, omitPackages: [key], omitSnapshots: [key],
//   extraLockfile (merged into the top level), packageJson (merged), write: false.
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { integrityOf, makeTarball, normalizeFile, sha512Hex } from './tarball.mjs'

export { integrityOf, sha512Hex }

/** '/<name>/-/<bare-name>-<version>.tgz', the path pnpm derives for registry packages. */
export function tarballPath (name, version) {
  const bare = name.startsWith('@') ? name.slice(name.indexOf('/') + 1) : name
  return `/${name}/-/${bare}-${version}.tgz`
}

/**
 * pnpm's slot directory name for a dep path (`depPathToFilename`): `/` etc. -> `+`, peer
 * parentheses -> `_`, and names that are too long or contain uppercase letters are cut and
 * suffixed with a short sha256. So is a URL or path whose escape is lossy (a port's `:`, a
 * `+` of its own), with the hash of the dep path itself; trailing dots/spaces become `+`.
 */
export function depPathToFilename (depPath, maxLength = 120) {
  let filename = (depPath.startsWith('file:') ? depPath.replace(':', '+') : depPath).replace(/[\\/:*?"<>|#]/g, '+')
  if (filename.includes('(')) {
    filename = filename.replace(/\)$/, '').replace(/\)\(|\(|\)/g, '_')
  }
  const ambiguous = escapesAmbiguously(depPath)
  const hashInput = ambiguous ? depPath : filename
  const kept = filename.replace(/[. ]+$/, '').length
  const trailing = kept < filename.length
  if (trailing) filename = filename.slice(0, kept) + '+'.repeat(filename.length - kept)
  if (ambiguous || trailing || filename.length > maxLength || (filename !== filename.toLowerCase() && !filename.startsWith('file+'))) {
    const hash = createHash('sha256').update(hashInput).digest('hex').slice(0, 32)
    return `${filename.substring(0, maxLength - 33)}_${hash}`
  }
  return filename
}

function escapesAmbiguously (depPath) {
  const pkgId = depPath.split('(', 1)[0].replace(/^\//, '')
  const at = pkgId.indexOf('@', 1)
  if (!pkgId.startsWith('file:') && at === -1) return false
  const version = pkgId.startsWith('file:') ? pkgId : pkgId.slice(at + 1)
  const colon = version.indexOf(':')
  if (colon === -1) return false
  // `<registry name>:<semver>` (a named registry) is no location
  const registry = version.slice(0, colon)
  const reserved = /^(bitbucket|catalog|custom|file|git|github|gitlab|https?|jsr|link|npm|runtime|ssh|workspace)$/i
  if (/^[a-z][\w.-]*$/i.test(registry) && !reserved.test(registry) &&
    /^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9a-z-]+(\.[0-9a-z-]+)*)?(\+[0-9a-z-]+(\.[0-9a-z-]+)*)?$/i.test(version.slice(colon + 1))) return false
  return /[+\\:*?"<>|#]/.test(version.slice(colon + 1).replace(/^\/\//, ''))
}

/** Splits 'name@version(peers)' (scoped or not) into its parts. */
export function parseDepPath (depPath) {
  const at = depPath.indexOf('@', 1)
  const name = depPath.slice(0, at)
  const rest = depPath.slice(at + 1)
  const paren = rest.indexOf('(')
  return { name, version: paren === -1 ? rest : rest.slice(0, paren), peers: paren === -1 ? '' : rest.slice(paren) }
}

/** Snapshot key an edge `alias: ref` points to. */
export function refToDepPath (alias, ref) {
  // 'bar@1.0.0' / '@s/bar@1.0.0(x@1)' are aliases (the ref names the real package);
  // '1.0.0' / '1.0.0(x@1)' are versions of the alias itself.
  return /^(@[^/@()]+\/)?[^@/()]+@/.test(ref) ? ref : `${alias}@${ref}`
}

function rangeFor (ref) {
  const { name, version } = /^(@[^/@()]+\/)?[^@/()]+@/.test(ref) ? parseDepPath(ref) : { version: ref.split('(')[0] }
  return name ? `npm:${name}@^${version}` : `^${version}`
}

export function makeProject (dir, spec) {
  const lockfileVersion = spec.lockfileVersion ?? '9.0'
  const pkgs = new Map()
  const tarballs = new Map()

  for (const p of spec.packages ?? []) {
    const key = `${p.name}@${p.version}`
    if (pkgs.has(key)) throw new Error(`duplicate package ${key}`)
    const files = buildFiles(p)
    const tarball = p.tarball ?? makeTarball(files)
    const urlPath = tarballPath(p.name, p.version)
    const integrity = p.integrity ?? integrityOf(tarball)
    if (p.serve !== false) tarballs.set(urlPath, tarball)
    pkgs.set(key, {
      key,
      name: p.name,
      version: p.version,
      files: Object.fromEntries(Object.entries(files).map(([k, v]) => [k, normalizeFile(v)])),
      tarball,
      urlPath,
      integrity,
      descriptor: p
    })
  }

  // Snapshots: one per package unless peer variants are described.
  const snapshots = new Map()
  for (const info of pkgs.values()) {
    const p = info.descriptor
    const variants = p.snapshots ?? [{}]
    for (const v of variants) {
      const key = `${info.key}${v.peers ?? ''}`
      snapshots.set(key, {
        key,
        pkgKey: info.key,
        name: info.name,
        version: info.version,
        dependencies: { ...(p.dependencies ?? {}), ...(v.dependencies ?? {}) },
        optionalDependencies: { ...(p.optionalDependencies ?? {}), ...(v.optionalDependencies ?? {}) },
        transitivePeerDependencies: v.transitivePeerDependencies,
        forcedOptional: v.optional,
        slot: depPathToFilename(key),
        optional: false
      })
    }
  }

  // A snapshot is `optional: true` when no path of plain (non-optional) edges reaches it
  // from the importer's dependencies/devDependencies, as pnpm records it.
  const importer = spec.importer ?? {}
  const required = new Set()
  const stack = []
  for (const field of ['dependencies', 'devDependencies']) {
    for (const [alias, ref] of Object.entries(importer[field] ?? {})) stack.push(refToDepPath(alias, refOf(ref)))
  }
  while (stack.length) {
    const k = stack.pop()
    if (required.has(k)) continue
    required.add(k)
    const snap = snapshots.get(k)
    if (!snap) continue
    for (const [alias, ref] of Object.entries(snap.dependencies)) stack.push(refToDepPath(alias, ref))
  }
  for (const snap of snapshots.values()) snap.optional = snap.forcedOptional ?? !required.has(snap.key)

  const lockfile = buildLockfileObject({ spec, lockfileVersion, pkgs, snapshots, importer })
  const lockfileText = renderLockfile(lockfile)

  const packageJson = {
    name: 'fixture-project',
    version: '1.0.0',
    private: true,
    ...Object.fromEntries(['dependencies', 'devDependencies', 'optionalDependencies']
      .filter(f => importer[f] && Object.keys(importer[f]).length)
      .map(f => [f, Object.fromEntries(Object.entries(importer[f]).map(([a, r]) => [a, specifierOf(r)]))])),
    ...(spec.packageJson ?? {})
  }

  const lockfilePath = path.join(dir, 'pnpm-lock.yaml')
  if (spec.write !== false) {
    fs.mkdirSync(dir, { recursive: true })
    fs.writeFileSync(lockfilePath, lockfileText)
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify(packageJson, null, 2) + '\n')
  }

  const virtualStoreDir = path.join(dir, 'node_modules', '.pnpm')
  return {
    dir,
    lockfilePath,
    lockfileText,
    lockfile,
    packageJson,
    tarballs,
    packages: pkgs,
    snapshots,
    virtualStoreDir,
    /** `<vsd>/<slot>` of a snapshot key. */
    slotDir (key, vsd = virtualStoreDir, maxLength = 120) {
      return path.join(vsd, depPathToFilename(key, maxLength))
    },
    /** `<vsd>/<slot>/node_modules/<name>`: where the package's files land. */
    pkgDir (key, vsd = virtualStoreDir, maxLength = 120) {
      return path.join(vsd, depPathToFilename(key, maxLength), 'node_modules', parseDepPath(key).name)
    }
  }
}

function refOf (r) {
  return typeof r === 'object' ? r.version : r
}

function specifierOf (r) {
  if (typeof r === 'object') return r.specifier ?? rangeFor(r.version)
  return rangeFor(r)
}

function buildFiles (p) {
  const manifest = {
    name: p.name,
    version: p.version,
    main: 'index.js',
    ...(p.bin ? { bin: p.bin } : {}),
    ...(p.dependencies ? { dependencies: mapValues(p.dependencies, rangeFor) } : {}),
    ...(p.optionalDependencies ? { optionalDependencies: mapValues(p.optionalDependencies, rangeFor) } : {}),
    ...(p.peerDependencies ? { peerDependencies: p.peerDependencies } : {}),
    ...(p.os ? { os: p.os } : {}),
    ...(p.cpu ? { cpu: p.cpu } : {}),
    ...(p.libc ? { libc: p.libc } : {}),
    ...(p.engines ? { engines: p.engines } : {}),
    ...(p.scripts ? { scripts: p.scripts } : {})
  }
  // index.js reports its identity and the versions of the deps it can require, so a test
  // that require()s it proves the symlinks resolve the way Node will use them.
  const deps = [...new Set([
    ...Object.keys(p.dependencies ?? {}),
    ...Object.keys(p.peerDependencies ?? {}),
    ...Object.keys(p.optionalDependencies ?? {})
  ])]
  const index = [
    "'use strict'",
    `exports.name = ${JSON.stringify(p.name)}`,
    `exports.version = ${JSON.stringify(p.version)}`,
    'exports.deps = {}',
    `for (const dep of ${JSON.stringify(deps)}) {`,
    "  try { exports.deps[dep] = require(dep).version } catch (e) { exports.deps[dep] = 'MISSING ' + e.code }",
    '}',
    ''
  ].join('\n')
  const files = { 'package.json': JSON.stringify(manifest, null, 2) + '\n', 'index.js': index }
  for (const binPath of Object.values(typeof p.bin === 'string' ? { [p.name]: p.bin } : p.bin ?? {})) {
    const rel = binPath.replace(/^\.\//, '')
    files[rel] = { content: `#!/usr/bin/env node\nconsole.log(${JSON.stringify(`${p.name} bin`)})\n`, mode: 0o755 }
  }
  for (const [rel, value] of Object.entries(p.files ?? {})) {
    if (value === null) delete files[rel]
    else files[rel] = value
  }
  return files
}

function mapValues (obj, fn) {
  return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, fn(v)]))
}

function buildLockfileObject ({ spec, lockfileVersion, pkgs, snapshots, importer }) {
  const omitPackages = new Set(spec.omitPackages ?? [])
  const omitSnapshots = new Set(spec.omitSnapshots ?? [])
  const importerEntry = {}
  for (const field of ['dependencies', 'devDependencies', 'optionalDependencies']) {
    const deps = importer[field]
    if (!deps || !Object.keys(deps).length) continue
    importerEntry[field] = Object.fromEntries(sortedEntries(deps).map(([alias, r]) => [
      alias, { specifier: specifierOf(r), version: refOf(r) }
    ]))
  }
  const packages = {}
  for (const [key, info] of sortedEntries(Object.fromEntries(pkgs))) {
    if (omitPackages.has(key)) continue
    const p = info.descriptor
    const entry = { resolution: p.resolution ?? { integrity: info.integrity } }
    if (p.engines) entry.engines = p.engines
    if (p.cpu) entry.cpu = p.cpu
    if (p.os) entry.os = p.os
    if (p.libc) entry.libc = p.libc
    if (p.deprecated) entry.deprecated = p.deprecated
    if (p.bin) entry.hasBin = true
    if (p.peerDependencies) entry.peerDependencies = sortObject(p.peerDependencies)
    if (p.peerDependenciesMeta) entry.peerDependenciesMeta = p.peerDependenciesMeta
    packages[key] = entry
  }
  const snaps = {}
  for (const [key, s] of sortedEntries(Object.fromEntries(snapshots))) {
    if (omitSnapshots.has(key)) continue
    const entry = {}
    if (Object.keys(s.dependencies).length) entry.dependencies = sortObject(s.dependencies)
    if (Object.keys(s.optionalDependencies).length) entry.optionalDependencies = sortObject(s.optionalDependencies)
    if (s.transitivePeerDependencies) entry.transitivePeerDependencies = s.transitivePeerDependencies
    if (s.optional) entry.optional = true
    snaps[key] = entry
  }
  return {
    lockfileVersion,
    settings: spec.settings ?? { autoInstallPeers: true, excludeLinksFromLockfile: false },
    ...(spec.extraLockfile ?? {}),
    importers: { '.': importerEntry },
    packages,
    snapshots: snaps
  }
}

function sortedEntries (obj) {
  return Object.entries(obj).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
}

function sortObject (obj) {
  return Object.fromEntries(sortedEntries(obj))
}

// ---------------------------------------------------------------------------------------
// YAML output in pnpm's lockfile style: block mappings, blank lines between top-level
// sections and between the entries of importers/packages/snapshots, flow style for
// `resolution`, `engines` and scalar lists such as `os: [darwin]`.

const SPACED_SECTIONS = new Set(['importers', 'packages', 'snapshots'])
const FLOW_KEYS = new Set(['resolution', 'engines', 'cpu', 'os', 'libc'])

export function renderLockfile (lock) {
  const out = []
  const keys = Object.keys(lock)
  keys.forEach((key, i) => {
    if (i > 0) out.push('')
    const value = lock[key]
    if (SPACED_SECTIONS.has(key) && isPlainObject(value)) {
      const entries = Object.entries(value)
      if (!entries.length) { out.push(`${yamlKey(key)}: {}`); return }
      out.push(`${yamlKey(key)}:`)
      for (const [k, v] of entries) {
        out.push('')
        renderEntry(out, k, v, 1)
      }
    } else {
      renderEntry(out, key, value, 0)
    }
  })
  return out.join('\n') + '\n'
}

function renderEntry (out, key, value, depth) {
  const pad = '  '.repeat(depth)
  if (isPlainObject(value)) {
    if (!Object.keys(value).length) { out.push(`${pad}${yamlKey(key)}: {}`); return }
    if (FLOW_KEYS.has(key)) { out.push(`${pad}${yamlKey(key)}: ${flow(value)}`); return }
    out.push(`${pad}${yamlKey(key)}:`)
    for (const [k, v] of Object.entries(value)) renderEntry(out, k, v, depth + 1)
    return
  }
  if (Array.isArray(value)) {
    if (!value.length) { out.push(`${pad}${yamlKey(key)}: []`); return }
    if (FLOW_KEYS.has(key)) { out.push(`${pad}${yamlKey(key)}: ${flow(value)}`); return }
    out.push(`${pad}${yamlKey(key)}:`)
    for (const item of value) out.push(`${pad}  - ${scalar(item)}`)
    return
  }
  out.push(`${pad}${yamlKey(key)}: ${scalar(value)}`)
}

function flow (value) {
  if (Array.isArray(value)) return `[${value.map(v => scalar(v, true)).join(', ')}]`
  if (isPlainObject(value)) {
    return `{${Object.entries(value).map(([k, v]) => `${yamlKey(k, true)}: ${flow(v)}`).join(', ')}}`
  }
  return scalar(value, true)
}

function yamlKey (k, inFlow = false) {
  return scalar(String(k), inFlow)
}

function scalar (v, inFlow = false) {
  if (v === null || v === undefined) return 'null'
  if (typeof v === 'boolean' || typeof v === 'number') return String(v)
  const s = String(v)
  const needsQuotes =
    s === '' ||
    /^\s|\s$/.test(s) ||
    /^[-?:,[\]{}#&*!|>'"%@`]/.test(s) ||
    /: |:$| #|\n|\t/.test(s) ||
    (inFlow && /[,[\]{}]/.test(s)) ||
    /^(true|false|null|~|yes|no|on|off|y|n)$/i.test(s) ||
    /^[-+]?(\d[\d_]*(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/.test(s) ||
    /^0[xo]/i.test(s) ||
    /^[-+]?\.(inf|nan)$/i.test(s)
  return needsQuotes ? `'${s.replace(/'/g, "''")}'` : s
}

function isPlainObject (v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !Buffer.isBuffer(v)
}

// ---------------------------------------------------------------------------------------
// Shared test utilities.

/** A fresh temp dir (real path, so it compares equal to what the addon reports). */
export function makeTempDir (prefix = 'pacquet-test-') {
  return fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), prefix)))
}

export function removeDir (dir) {
  fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 })
}

/**
 * A fresh temp dir, removed when the test ends. `before` runs first in the same hook
 * (hooks run in the order they were added), e.g. to close a registry before its files go.
 */
export function tempDir (t, prefix = 'pacquet-test-', before) {
  const dir = makeTempDir(prefix)
  t.after(async () => {
    try { await before?.() } finally { removeDir(dir) }
  })
  return dir
}

/** Store blob path of a file: `<storeDir>/v11/files/xx/<rest of sha512 hex>[-exec]`. */
export function casPath (storeDir, content, mode = 0o644) {
  const hex = sha512Hex(content)
  return path.join(storeDir, 'v11', 'files', hex.slice(0, 2), hex.slice(2) + ((mode & 0o111) ? '-exec' : ''))
}

/** index.db key of a package: "<integrity>\t<name>@<version>". */
export function storeIndexKey (integrity, name, version) {
  return `${integrity}\t${name}@${version}`
}

let sqliteModule // undefined: not tried yet; null: unavailable
async function loadSqlite () {
  if (sqliteModule !== undefined) return sqliteModule
  try {
    sqliteModule = await import('node:sqlite') // Node >= 22.5 (flagless from 22.13)
  } catch {
    sqliteModule = null
  }
  return sqliteModule
}

/**
 * Reads the keys of `<storeDir>/v11/index.db`. With node:sqlite: `{ method: 'sqlite', keys }`.
 * Without it (Node 20): `{ method: 'scan', has(key) }`, which looks for the key's bytes in
 * index.db and its WAL; SQLite stores TEXT keys verbatim in its pages, so a present row
 * is found and a never-written one is not. `exists` is false when there is no index.db.
 */
export async function readStoreIndex (storeDir) {
  const dbPath = path.join(storeDir, 'v11', 'index.db')
  if (!fs.existsSync(dbPath)) return { method: 'none', exists: false, keys: new Set(), has: () => false, count: 0 }
  const sqlite = await loadSqlite()
  if (sqlite) {
    const db = new sqlite.DatabaseSync(dbPath, { readOnly: true })
    try {
      const keys = new Set(db.prepare('SELECT key FROM package_index').all().map(r => r.key))
      return { method: 'sqlite', exists: true, keys, has: k => keys.has(k), count: keys.size }
    } finally {
      db.close()
    }
  }
  const bufs = [dbPath, dbPath + '-wal'].filter(f => fs.existsSync(f)).map(f => fs.readFileSync(f))
  return {
    method: 'scan',
    exists: true,
    keys: null,
    count: null,
    has: k => bufs.some(b => b.includes(Buffer.from(k)))
  }
}

/**
 * An environment without npm/pnpm configuration: no npm_config_* variables (npm sets them
 * when it runs scripts) and a HOME of our own, so only what a test writes is seen.
 */
export function cleanEnv (home, extra = {}) {
  const env = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(npm|pnpm)_/i.test(k)) continue
    env[k] = v
  }
  fs.mkdirSync(home, { recursive: true })
  env.HOME = home
  env.USERPROFILE = home
  env.XDG_CONFIG_HOME = path.join(home, '.config')
  env.XDG_DATA_HOME = path.join(home, '.local', 'share')
  env.XDG_CACHE_HOME = path.join(home, '.cache')
  env.PNPM_HOME = path.join(home, '.pnpm-home')
  env.NO_COLOR = '1'
  return { ...env, ...extra }
}

/**
 * Runs a child process asynchronously (the test's registry keeps serving meanwhile).
 * Resolves with { status, signal, stdout, stderr, timedOut }. `onSpawn(child)` exposes the child.
 */
export function run (cmd, args, { cwd, env, timeout = 60_000, input, onSpawn } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    let timedOut = false
    child.stdout.setEncoding('utf8').on('data', d => { stdout += d })
    child.stderr.setEncoding('utf8').on('data', d => { stderr += d })
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL') }, timeout)
    child.on('error', err => { clearTimeout(timer); reject(err) })
    child.on('close', (status, signal) => {
      clearTimeout(timer)
      resolve({ status, signal, stdout, stderr, timedOut })
    })
    if (input != null) child.stdin.end(input)
    else child.stdin.end()
    onSpawn?.(child)
  })
}

/** Every regular file under dir (relative paths, `/`-separated), following no symlinks. */
export function listFiles (dir) {
  const out = []
  const walk = (d, rel) => {
    for (const ent of fs.readdirSync(d, { withFileTypes: true })) {
      const r = rel ? `${rel}/${ent.name}` : ent.name
      if (ent.isDirectory()) walk(path.join(d, ent.name), r)
      else out.push(r)
    }
  }
  walk(dir, '')
  return out.sort()
}
