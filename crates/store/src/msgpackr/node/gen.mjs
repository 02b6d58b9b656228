// Generates crates/store/src/msgpackr/vectors.json with msgpackr configured as pnpm 11 does.
// Run from a scratch directory holding these scripts and `npm install msgpackr@2.0.5` (the version
// pnpm 11 pins): `node gen.mjs <repo>/crates/store/src/msgpackr/vectors.json`.
// Then `PACQUET_MSGPACKR_DUMP=/tmp/ours.json cargo test -p pacquet-store msgpackr::tests::dump`
// and `node verify.mjs /tmp/ours.json` checks msgpackr's view of the Rust encoder's bytes.
import crypto from 'node:crypto'
import fs from 'node:fs'
import { Packr } from 'msgpackr'
import { HUGE, buildCanonical, buildPnpm11, buildLegacy } from './rows.mjs'

// Same options as pnpm11/store/index/src/index.ts.
const packr = new Packr({ useRecords: true, moreTypes: true })

const sha = (s) => crypto.createHash('sha512').update(s).digest('hex')
const D = ['package.json', 'index.js', 'lib/a.js', 'bin/cli.js'].map(sha)

const realManifest = `{"version":"1.2.3","bin":{"foo":"bin/cli.js","foo-x":"bin/x.js"},"bundledDependencies":["a","b"],"cpu":["x64","arm64"],"dependencies":{"a":"^1.0.0","b":"2.x","@scope/c":"npm:c@3"},"directories":{"bin":"./bin"},"engines":{"node":">=18","npm":">=9"},"name":"foo","optionalDependencies":{"d":"1"},"os":["linux","darwin"],"peerDependencies":{"react":"*","vue":"*"},"peerDependenciesMeta":{"react":{"optional":true},"vue":{"optional":true}},"scripts":{"postinstall":"node build.js"}}`

const fi = (digest, mode, size, checkedAt) => (checkedAt === undefined ? { digest, mode, size } : { digest, mode, size, checkedAt })

// Integers around every msgpack width boundary; many of them are in 64..127, where a
// positive fixint would collide with record slot bytes.
const sizes = [0, 1, 31, 32, 63, 64, 65, 100, 127, 128, 200, 255, 256, 4096, 65535, 65536, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 5, 2 ** 53 - 1]
const manyFiles = []
for (let i = 0; i < 42; i++) {
  const size = sizes[i % sizes.length]
  const mode = [420, 493, 64, 127, 0o100644, 0o100755, 511][i % 7]
  // Alternate the two FileInfo shapes, with checkedAt values of different widths.
  const checkedAt = i % 3 === 0 ? undefined : [1700000000123, 1.5, 0, 100, 4294967296, -1, 1745000000000.25][i % 7]
  manyFiles.push([`f/${i}.js`, fi(`d${i}`, mode, size, checkedAt)])
}

// 70 distinct object shapes in the manifest push msgpackr past its 64 own record ids,
// so it cycles back to 0x40 and redefines slots.
const shapes = []
for (let i = 0; i < 70; i++) shapes.push(`{"k${i}":${i}}`)
shapes.push('{"k0":1000}', '{"k69":-5}', '{"k5":5}')
const slotWrapManifest = `{"version":"0.0.1","name":"wrap","many":[${shapes.join(',')}],"engines":{"node":"*"}}`

const numbersManifest = `{"version":"1.0.0","name":"nums","n":[0,1,63,64,127,128,255,256,65535,65536,4294967295,4294967296,-1,-32,-33,-128,-129,-32768,-32769,-2147483648,-2147483649,1.5,-0.25,1e300,9007199254740991,12345678901234],"t":true,"f":false,"z":null,"o":{},"a":[],"nested":{"x":{"y":{"z":[{"w":1},{"w":2}]}}},"dependencies":{${Array.from({ length: 20 }, (_, i) => `"dep-${i}":"^${i}.0.0"`).join(',')}}}`

// JS orders integer-like keys first; serde_json keeps text order.
const intKeysManifest = `{"version":"1.0.0","name":"ints","dependencies":{"b":"1","10":"x","2":"y","a":"z","4294967295":"big","01":"lead"}}`

const utf8Name = 'é'.repeat(20) + '/日本語/😀.js'
const long300 = 'p/' + 'x'.repeat(298)

const seFiles = [
  ['package.json', fi(D[0], 420, 321, 1700000000000)],
  ['build/Release/addon.node', fi(D[1], 493, 70000, 1700000000001)],
]

const rows = [
  {
    name: 'real-manifest-requires-build-true',
    row: {
      algo: 'sha512',
      requiresBuild: true,
      manifestJson: realManifest,
      files: [
        ['package.json', fi(D[0], 420, 1234, 1700000000000)],
        ['index.js', fi(D[1], 420, 64, 1700000000001)],
        ['lib/a.js', fi(D[2], 420, 127, 1700000000002)],
        ['bin/cli.js', fi(D[3], 493, 5000000000, 1700000000003)],
      ],
    },
  },
  {
    name: 'requires-build-false-no-checked-at',
    row: {
      algo: 'sha512',
      requiresBuild: false,
      manifestJson: '{"version":"2.0.0","name":"bar"}',
      files: [['package.json', fi(D[0], 420, 30)], ['README.md', fi(D[1], 420, 99)]],
    },
  },
  {
    name: 'requires-build-absent-no-manifest',
    row: { algo: 'sha512', files: [['a', fi('aaa', 420, 1, 1700000000000)]] },
  },
  { name: 'empty-files', row: { algo: 'sha512', requiresBuild: false, files: [] } },
  {
    name: 'mixed-shapes-many-files',
    row: { algo: 'sha512', requiresBuild: false, manifestJson: '{"version":"1.0.0","name":"many"}', files: manyFiles },
  },
  {
    name: 'side-effects',
    row: {
      algo: 'sha512',
      requiresBuild: true,
      manifestJson: '{"version":"1.0.0","name":"native","scripts":{"install":"node-gyp rebuild"}}',
      files: seFiles,
      sideEffects: [
        ['linux;x64;node20', { added: [['build/Release/addon.node', fi(D[2], 493, 80000, 1700000000500)], ['build/config.gypi', fi(D[3], 420, 77, 1700000000501)]], deleted: ['build/old.o'] }],
        ['darwin;arm64;node22;deps=abc', { added: [['build/Release/addon.node', fi(D[3], 493, 1, 1700000000600)]] }],
        ['win32;x64;node20', { deleted: ['build/Release/addon.node', 'package.json'] }],
        ['linux;arm64;node20', {}],
        ['linux;x64;node18', { added: [['x', fi('xx', 420, 3)]] }],
      ],
    },
  },
  {
    name: 'strings-utf8-and-str16',
    row: {
      algo: 'sha512',
      requiresBuild: false,
      manifestJson: JSON.stringify({ version: '1.0.0', name: 'strs', description: 'd'.repeat(256), bin: { [utf8Name]: long300 } }),
      files: [[utf8Name, fi('é'.repeat(31), 420, 5, 1700000000000)], [long300, fi(D[0], 420, 300, 1700000000000)], ['s'.repeat(31), fi('t'.repeat(32), 420, 6, 1700000000000)]],
    },
  },
  {
    name: 'str32',
    huge: true,
    row: {
      algo: 'sha512',
      requiresBuild: false,
      manifestJson: JSON.stringify({ version: '1.0.0', name: 'huge', description: '$HUGE' }),
      files: [['$HUGE', fi('$HUGE', 420, 7, 1700000000000)]],
    },
  },
  { name: 'slot-wrap', row: { algo: 'sha512', requiresBuild: false, manifestJson: slotWrapManifest, files: [['package.json', fi(D[0], 420, 10, 1700000000000)], ['x.js', fi(D[1], 420, 11, 1700000000000)]] } },
  { name: 'manifest-numbers', row: { algo: 'sha512', requiresBuild: false, manifestJson: numbersManifest, files: [['package.json', fi(D[0], 420, 10, 1700000000000)]] } },
  { name: 'manifest-integer-keys', row: { algo: 'sha512', requiresBuild: false, manifestJson: intKeysManifest, files: [['package.json', fi(D[0], 420, 10, 1700000000000)]] } },
]

// pnpm 11 always writes checkedAt (Date.now()) and requiresBuild, so its rows are a subset.
const pnpm11Rows = [
  rows[0],
  { name: 'pnpm11-no-manifest', row: { algo: 'sha512', requiresBuild: false, files: [['a.js', fi(D[1], 420, 70, 1700000000000)]] } },
  { name: 'pnpm11-many-files', row: { algo: 'sha512', requiresBuild: false, manifestJson: '{"version":"1.0.0","name":"many"}', files: manyFiles.map(([p, f]) => [p, { ...f, checkedAt: f.checkedAt ?? 1700000000999 }]) } },
  {
    name: 'pnpm11-side-effects',
    row: {
      algo: 'sha512',
      requiresBuild: true,
      manifestJson: '{"version":"1.0.0","name":"native","scripts":{"install":"node-gyp rebuild"}}',
      files: seFiles,
      sideEffects: [
        ['linux;x64;node20', { added: [['build/Release/addon.node', fi(D[2], 493, 80000, 1700000000500)]], deleted: ['build/old.o'] }],
        ['win32;x64;node20', { deleted: ['package.json'] }],
        ['linux;arm64;node20', {}],
      ],
    },
  },
  rows[8],
]

const legacyRows = [
  {
    name: 'legacy-plain-maps',
    row: {
      algo: 'sha512',
      requiresBuild: false,
      manifestJson: '{"version":"1.0.0","name":"old","bin":{"old":"cli.js"},"engines":{"node":">=14"}}',
      files: [['package.json', fi(D[0], 420, 100, 1700000000000)], ['cli.js', fi(D[1], 493, 64)], ['b', fi('b', 127, 127, 5)]],
      sideEffects: [['linux;x64;node20', { added: [['b', fi('c', 64, 65, 1700000000000)]], deleted: ['cli.js'] }]],
    },
  },
]

function emit (name, flavor, row, bytes, huge) {
  const entry = { name, flavor, row }
  if (huge) {
    entry.len = bytes.length
    entry.sha512 = crypto.createHash('sha512').update(bytes).digest('hex')
  } else {
    entry.hex = Buffer.from(bytes).toString('hex')
  }
  return entry
}

const out = []
for (const { name, row, huge } of rows) {
  out.push(emit(name, 'canonical', row, packr.pack(buildCanonical(row)), huge))
}
for (const { name, row } of pnpm11Rows) {
  out.push(emit(name.startsWith('pnpm11') ? name : `pnpm11-${name}`, 'pnpm11', row, buildPnpm11(packr, row)))
}
for (const { name, row } of legacyRows) {
  out.push(emit(name, 'legacy', row, buildLegacy(row)))
}
fs.writeFileSync(process.argv[2], '[\n' + out.map((e) => JSON.stringify(e)).join(',\n') + '\n]\n')
console.log(`wrote ${out.length} vectors, HUGE length ${HUGE.length}`)
