// A full consistency check of a pnpm v11 store, for tests that damage, share or interrupt
// stores (corruption, concurrency, kills):
//
//   import { checkStore, inspectStore, readIndexRows, decodeRow } from './helpers/store-check.mjs'
//   assert.deepEqual(await checkStore(storeDir), [])          // [] = consistent
//   const { problems, blobs, rows, files } = await inspectStore(storeDir)
//
// What is checked (each failure is one line in `problems`):
//   - every entry under files/<xx>/ is a blob named by the SHA-512 of its bytes
//     (`<xx><126 hex>`), plus `-exec` for an executable one, which must have an execute bit;
//     anything else there (a temporary file a writer left) is a problem;
//   - index.db passes SQLite's integrity_check, and every package_index row decodes with
//     msgpackr configured as pnpm configures it (records, moreTypes) into what pnpm reads:
//     `algo: 'sha512'`, `files` (and each `sideEffects[…].added`) a Map of
//     { digest (128 hex), mode, size, checkedAt? (a number) }, and each file's blob present
//     with that size (its bytes are checked by the blob re-hash above);
//   - a row keyed `<integrity>\t<name>@<version>` has a manifest naming that package (what
//     pnpm's strictStorePkgContentCheck demands);
//   - every package_index_alias row (pnpm 12) points at an existing package_index row;
//   - nothing is left in the store's tmp/ directory, and no file beside index.db but its
//     WAL and shared-memory files.
//
// index.db is read with node:sqlite: in this process when it has it (Node >= 22.13), else in a
// child process on the Node.js the parity suite runs pnpm 11 with (PACQUET_PARITY_NODE, see
// ./pnpm.mjs); without either, checkStore throws with the reason.
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { Packr } from 'msgpackr'
import { run } from './fixture.mjs'
import { findNodeForPnpm } from './pnpm.mjs'

// pnpm 11's store index codec (its store/index package): records on, moreTypes on.
const packr = new Packr({ useRecords: true, moreTypes: true })

/** One index.db value decoded as pnpm 11 decodes it. */
export function decodeRow (data) {
  return packr.unpack(data)
}

/** `<storeDir>/v11`, unless the path already ends in v11 (as pnpm and the addon do). */
export function storeRoot (storeDir) {
  return path.basename(storeDir) === 'v11' ? storeDir : path.join(storeDir, 'v11')
}

const BLOB_NAME = /^[0-9a-f]{126}(-exec)?$/
const SHARD = /^[0-9a-f]{2}$/
const HEX128 = /^[0-9a-f]{128}$/
const ROOT_ENTRIES = new Set(['files', 'index.db', 'index.db-wal', 'index.db-shm', 'tmp', 'links', 'projects'])

// Run by a Node.js that has node:sqlite: prints { integrity, rows: [[key, base64]], aliases }.
const DUMP_SCRIPT = `
const { DatabaseSync } = require('node:sqlite')
const db = new DatabaseSync(process.argv[1], { readOnly: true })
const out = { integrity: db.prepare('PRAGMA integrity_check').all().map(r => Object.values(r)[0]), rows: [], aliases: [] }
for (const r of db.prepare('SELECT key, data FROM package_index').all()) out.rows.push([r.key, Buffer.from(r.data).toString('base64')])
const hasAlias = db.prepare("SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'package_index_alias'").get().n > 0
if (hasAlias) for (const r of db.prepare('SELECT key, target FROM package_index_alias').all()) out.aliases.push([r.key, r.target])
db.close()
process.stdout.write(JSON.stringify(out))
`

let inProcessSqlite // undefined: not tried; null: unavailable
async function sqliteHere () {
  if (inProcessSqlite === undefined) {
    try {
      inProcessSqlite = await import('node:sqlite')
    } catch {
      inProcessSqlite = null
    }
  }
  return inProcessSqlite
}

/**
 * The raw rows of `<store>/v11/index.db`: { integrity: ['ok'], rows: Map<key, Buffer>,
 * aliases: Map<key, target> }, or null when there is no index.db.
 */
export async function readIndexRows (storeDir, { env = process.env } = {}) {
  const db = path.join(storeRoot(storeDir), 'index.db')
  if (!fs.existsSync(db)) return null
  let dump
  const sqlite = await sqliteHere()
  if (sqlite) {
    const conn = new sqlite.DatabaseSync(db, { readOnly: true })
    try {
      dump = {
        integrity: conn.prepare('PRAGMA integrity_check').all().map(r => Object.values(r)[0]),
        rows: conn.prepare('SELECT key, data FROM package_index').all().map(r => [r.key, Buffer.from(r.data)]),
        aliases: []
      }
      const hasAlias = conn.prepare("SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'package_index_alias'").get().n > 0
      if (hasAlias) dump.aliases = conn.prepare('SELECT key, target FROM package_index_alias').all().map(r => [r.key, r.target])
    } finally {
      conn.close()
    }
  } else {
    const node = findNodeForPnpm(env)
    if (node.reason) throw new Error(`cannot read ${db}: this Node.js has no node:sqlite and ${node.reason}`)
    const childEnv = { ...process.env, NODE_OPTIONS: '', NODE_NO_WARNINGS: '1' }
    delete childEnv.NODE_TEST_CONTEXT
    const r = await run(node.node, ['-e', DUMP_SCRIPT, db], { env: childEnv, timeout: 120_000 })
    if (r.status !== 0) throw new Error(`reading ${db} with ${node.node} failed (${r.status ?? r.signal}): ${r.stderr}`)
    const parsed = JSON.parse(r.stdout)
    dump = { ...parsed, rows: parsed.rows.map(([k, b64]) => [k, Buffer.from(b64, 'base64')]) }
  }
  return { integrity: dump.integrity, rows: new Map(dump.rows), aliases: new Map(dump.aliases) }
}

/** Every problem of the store (see the top of this file); [] when it is consistent. */
export async function checkStore (storeDir, options) {
  return (await inspectStore(storeDir, options)).problems
}

/**
 * The check, with figures: { problems, blobs (re-hashed), rows (decoded), files (row entries
 * checked), aliases, decoded: Map<key, row> }.
 */
export async function inspectStore (storeDir, options = {}) {
  const root = storeRoot(storeDir)
  const problems = []
  const blobSizes = new Map() // '<xx>/<name>' -> size, for blobs whose name matches their bytes
  let blobs = 0

  if (!fs.existsSync(root)) return { problems: [`${root} does not exist`], blobs: 0, rows: 0, files: 0, aliases: 0, decoded: new Map() }
  for (const name of fs.readdirSync(root)) {
    if (!ROOT_ENTRIES.has(name)) problems.push(`unexpected entry in the store root: ${name}`)
  }
  const tmp = path.join(root, 'tmp')
  if (fs.existsSync(tmp)) {
    for (const name of fs.readdirSync(tmp)) problems.push(`leftover in tmp/: ${name}`)
  }

  const filesDir = path.join(root, 'files')
  const shards = fs.existsSync(filesDir) ? fs.readdirSync(filesDir, { withFileTypes: true }) : []
  for (const shard of shards) {
    if (!shard.isDirectory() || !SHARD.test(shard.name)) {
      problems.push(`unexpected entry in files/: ${shard.name}`)
      continue
    }
    for (const ent of fs.readdirSync(path.join(filesDir, shard.name), { withFileTypes: true })) {
      const rel = `${shard.name}/${ent.name}`
      if (!ent.isFile() || !BLOB_NAME.test(ent.name)) {
        problems.push(`not a blob (a temporary file left behind?): files/${rel}`)
        continue
      }
      const file = path.join(filesDir, rel)
      const bytes = fs.readFileSync(file)
      blobs++
      const hex = createHash('sha512').update(bytes).digest('hex')
      if (hex !== shard.name + ent.name.slice(0, 126)) {
        problems.push(`blob files/${rel} holds other bytes (${bytes.length} bytes, sha512 ${hex.slice(0, 16)}…)`)
        continue
      }
      if (ent.name.endsWith('-exec') && process.platform !== 'win32' && (fs.statSync(file).mode & 0o111) === 0) {
        problems.push(`executable blob files/${rel} has no execute bit`)
      }
      blobSizes.set(rel, bytes.length)
    }
  }

  const index = await readIndexRows(root, options)
  const decoded = new Map()
  let files = 0
  if (index) {
    if (index.integrity.join('\n') !== 'ok') problems.push(`index.db integrity_check: ${index.integrity.join('; ')}`)
    for (const [key, data] of index.rows) {
      let row
      try {
        row = decodeRow(data)
      } catch (e) {
        problems.push(`row ${key}: does not decode: ${e.message}`)
        continue
      }
      decoded.set(key, row)
      files += checkRow(key, row, filesDir, blobSizes, problems)
    }
    for (const [key, target] of index.aliases) {
      if (!index.rows.has(target)) problems.push(`alias ${key} points at a missing row ${target}`)
    }
  }
  return { problems, blobs, rows: decoded.size, files, aliases: index?.aliases.size ?? 0, decoded }
}

function checkRow (key, row, filesDir, blobSizes, problems) {
  const bad = (what) => problems.push(`row ${key}: ${what}`)
  if (!key.includes('\t')) bad('key has no tab between integrity and package id')
  if (row === null || typeof row !== 'object' || row instanceof Map) {
    bad(`decodes to ${row instanceof Map ? 'a Map' : typeof row}, not an object`)
    return 0
  }
  if (row.algo !== 'sha512') bad(`algo is ${JSON.stringify(row.algo)}`)
  if (!(row.files instanceof Map)) {
    bad('files is not a Map (pnpm iterates it)')
    return 0
  }
  let n = checkFiles(`files`, row.files, filesDir, blobSizes, bad)
  if (row.sideEffects !== undefined) {
    if (!(row.sideEffects instanceof Map)) bad('sideEffects is not a Map')
    else {
      for (const [cacheKey, diff] of row.sideEffects) {
        if (diff.added !== undefined) {
          if (diff.added instanceof Map) n += checkFiles(`sideEffects[${cacheKey}].added`, diff.added, filesDir, blobSizes, bad)
          else bad(`sideEffects[${cacheKey}].added is not a Map`)
        }
        if (diff.deleted !== undefined && !Array.isArray(diff.deleted)) bad(`sideEffects[${cacheKey}].deleted is not an array`)
      }
    }
  }
  if (row.requiresBuild !== undefined && typeof row.requiresBuild !== 'boolean') bad('requiresBuild is not a boolean')
  // '<integrity>\t<name>@<version>' (registry packages): the manifest must say the same.
  const [integrity, pkgId] = key.split('\t')
  const m = /^((?:@[^/@]+\/)?[^@/:]+)@([^:/@]+)$/.exec(pkgId ?? '')
  if (m && /^sha\d+-/.test(integrity) && row.manifest) {
    if (String(row.manifest.name).toLowerCase() !== m[1].toLowerCase() || row.manifest.version !== m[2]) {
      bad(`manifest names ${row.manifest.name}@${row.manifest.version}`)
    }
  }
  return n
}

function checkFiles (label, map, filesDir, blobSizes, bad) {
  let n = 0
  for (const [rel, info] of map) {
    n++
    if (!info || typeof info !== 'object') { bad(`${label} ${rel}: not an object`); continue }
    const { digest, mode, size, checkedAt } = info
    if (typeof digest !== 'string' || !HEX128.test(digest)) { bad(`${label} ${rel}: digest ${JSON.stringify(digest)}`); continue }
    if (typeof mode !== 'number' || typeof size !== 'number') { bad(`${label} ${rel}: mode/size are not numbers`); continue }
    if (checkedAt !== undefined && typeof checkedAt !== 'number') bad(`${label} ${rel}: checkedAt is a ${typeof checkedAt}, not a number`)
    const blob = `${digest.slice(0, 2)}/${digest.slice(2)}${(mode & 0o111) ? '-exec' : ''}`
    const have = blobSizes.get(blob)
    if (have === undefined) {
      bad(`${label} ${rel}: blob files/${blob} is ${fs.existsSync(path.join(filesDir, blob)) ? 'damaged' : 'missing'}`)
    } else if (have !== size) {
      bad(`${label} ${rel}: size ${size}, blob has ${have}`)
    }
  }
  return n
}
