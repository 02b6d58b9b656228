// Checks that msgpackr (as pnpm 11 configures it) decodes the Rust encoder's bytes to the
// expected JS value. Input: the file written by the `dump_encodings_for_node` test.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import { Packr } from 'msgpackr'
import { buildCanonical } from './rows.mjs'

const packr = new Packr({ useRecords: true, moreTypes: true })

// pnpm 11 writes `manifest: undefined`; drop undefined properties before comparing shapes.
function dropUndefined (v) {
  if (v instanceof Map) return new Map([...v].map(([k, x]) => [k, dropUndefined(x)]))
  if (Array.isArray(v)) return v.map(dropUndefined)
  if (v && typeof v === 'object') {
    const o = {}
    for (const [k, x] of Object.entries(v)) if (x !== undefined) o[k] = dropUndefined(x)
    return o
  }
  return v
}

function checkTypes (v) {
  // files / sideEffects / added must be Maps, every other object a plain object, and no BigInt.
  assert.ok(v.files instanceof Map)
  assert.equal(Object.getPrototypeOf(v), Object.prototype)
  if (v.manifest !== undefined) assert.equal(Object.getPrototypeOf(v.manifest), Object.prototype)
  for (const f of v.files.values()) {
    assert.equal(Object.getPrototypeOf(f), Object.prototype)
    for (const x of Object.values(f)) assert.equal(typeof x === 'string' || typeof x === 'number', true)
  }
  if (v.sideEffects !== undefined) {
    assert.ok(v.sideEffects instanceof Map)
    for (const d of v.sideEffects.values()) if (d.added) assert.ok(d.added instanceof Map)
  }
}

const dump = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'))
let n = 0
for (const { name, flavor, row, ours, theirs } of dump) {
  const decoded = packr.unpack(Buffer.from(ours, 'hex'))
  checkTypes(decoded)
  assert.deepStrictEqual(decoded, buildCanonical(row), name)
  // Legacy plain-map rows decode to Maps in msgpackr (the bug records fix), so they have no
  // object-shaped reference to compare with.
  if (theirs && flavor !== 'legacy') {
    const reference = packr.unpack(Buffer.from(theirs, 'hex'))
    assert.deepStrictEqual(dropUndefined(decoded), dropUndefined(reference), name)
    // Same property order for canonical rows (deepStrictEqual ignores order).
    if (flavor === 'canonical') {
      assert.equal(ours, theirs, name)
      assert.deepEqual(JSON.stringify(dropUndefined(decoded), (k, x) => x instanceof Map ? [...x] : x), JSON.stringify(dropUndefined(reference), (k, x) => x instanceof Map ? [...x] : x))
    }
  }
  n++
}
console.log(`msgpackr decoded all ${n} Rust encodings to the expected values`)
