// Builds JS values from the logical row description shared with the Rust tests.
import { Packr } from 'msgpackr'

// > 65535 UTF-8 bytes, forces str32; tests substitute it for the literal "$HUGE".
export const HUGE = '0123456789'.repeat(7000) + 'é'

const s = (v) => (v === '$HUGE' ? HUGE : v)
function substDeep (v) {
  if (typeof v === 'string') return s(v)
  if (Array.isArray(v)) return v.map(substDeep)
  if (v && typeof v === 'object') {
    for (const k of Object.keys(v)) v[k] = substDeep(v[k])
  }
  return v
}
export const parseManifest = (json) => substDeep(JSON.parse(json))

// Field order of the Rust encoder (and of pnpm 12's writer).
function canonFi (f) {
  const o = { digest: s(f.digest), mode: f.mode, size: f.size }
  if (f.checkedAt !== undefined) o.checkedAt = f.checkedAt
  return o
}
export function buildCanonical (row) {
  const obj = { algo: row.algo }
  if (row.requiresBuild !== undefined) obj.requiresBuild = row.requiresBuild
  if (row.manifestJson !== undefined) obj.manifest = parseManifest(row.manifestJson)
  obj.files = new Map(row.files.map(([p, f]) => [s(p), canonFi(f)]))
  if (row.sideEffects !== undefined) {
    obj.sideEffects = new Map(row.sideEffects.map(([k, d]) => {
      const diff = {}
      if (d.added !== undefined) diff.added = new Map(d.added.map(([p, f]) => [s(p), canonFi(f)]))
      if (d.deleted !== undefined) diff.deleted = d.deleted.map(s)
      return [k, diff]
    }))
  }
  return obj
}

// Exactly how pnpm 11 builds the objects (pnpm11/worker/src/start.ts):
// processFilesIndex -> { checkedAt, digest, mode, size };
// addTarballToStore -> { requiresBuild, manifest, algo, files };
// side effects: unpack the stored row, append sideEffects, calculateDiff -> { deleted?, added? }.
const p11Fi = (f) => ({ checkedAt: f.checkedAt, digest: s(f.digest), mode: f.mode, size: f.size })
export function buildPnpm11 (packr, row) {
  const pkgFilesIndex = {
    requiresBuild: row.requiresBuild,
    manifest: row.manifestJson !== undefined ? parseManifest(row.manifestJson) : undefined,
    algo: row.algo,
    files: new Map(row.files.map(([p, f]) => [s(p), p11Fi(f)])),
  }
  let bytes = Buffer.from(packr.pack(pkgFilesIndex))
  if (row.sideEffects !== undefined) {
    const existing = packr.unpack(bytes)
    if (!existing.sideEffects) existing.sideEffects = new Map()
    for (const [k, d] of row.sideEffects) {
      const diff = {}
      if (d.deleted !== undefined) diff.deleted = d.deleted.map(s)
      if (d.added !== undefined) diff.added = new Map(d.added.map(([p, f]) => [s(p), p11Fi(f)]))
      existing.sideEffects.set(k, diff)
    }
    bytes = Buffer.from(packr.pack(existing))
  }
  return bytes
}

// Plain msgpack (no records), like rows an older rmp_serde-based writer produced:
// every struct is a map, None is nil, positive fixints go up to 127, u64 is 64-bit.
const plain = new Packr({ useRecords: false, variableMapSize: true })
const legacyFi = (f) => ({ digest: s(f.digest), mode: f.mode, size: f.size, checkedAt: f.checkedAt === undefined ? null : BigInt(f.checkedAt) })
export function buildLegacy (row) {
  return Buffer.from(plain.pack({
    algo: row.algo,
    requiresBuild: row.requiresBuild ?? null,
    manifest: row.manifestJson !== undefined ? parseManifest(row.manifestJson) : null,
    files: new Map(row.files.map(([p, f]) => [s(p), legacyFi(f)])),
    sideEffects: row.sideEffects === undefined
      ? null
      : new Map(row.sideEffects.map(([k, d]) => [k, {
        added: d.added === undefined ? null : new Map(d.added.map(([p, f]) => [s(p), legacyFi(f)])),
        deleted: d.deleted === undefined ? null : d.deleted.map(s),
      }])),
  }))
}
