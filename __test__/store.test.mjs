// One store for pnpm and @pacquet/native (issue 4): the store is shared with real pnpm 11 and
// pnpm 12 both ways, survives damage, and stays consistent under concurrent installs.
//
//   - rows pnpm 11 / pnpm 12 write (a registry package, a tarball-URL package, a package with
//     a `sideEffects` entry written after its postinstall ran) are read by our offline install,
//     which downloads nothing and hardlinks the very blobs pnpm wrote;
//   - rows we write decode with msgpackr configured as pnpm configures it and equal, field by
//     field (`checkedAt` aside), the rows pnpm 11 writes for the same packages; pnpm 11 and
//     pnpm 12 then install offline from a store only we filled;
//   - a changed, a removed and a truncated blob are repaired by the next install, whose
//     node_modules is then identical to a clean install's;
//   - 4 installs of different, overlapping projects (CLI processes) share a fresh store at once,
//     20 rounds, plus our install beside a pnpm 11 install into one store; after each round
//     every blob is re-hashed and every row decoded (helpers/store-check.mjs).
//
// Everything runs against a registry on 127.0.0.1 serving tarballs generated here.
// Needs, for the pnpm parts (else they skip with the reason; with PACQUET_PARITY_REQUIRED=1,
// as .ci/run sets it, a missing piece fails instead):
//   pnpm 11          the `pnpm` devDependency, and a Node.js >= 22.13 for it (PACQUET_PARITY_NODE)
//   pnpm 12          PACQUET_PNPM12 = its native binary (.ci/run installs @pnpm/exe.<platform>);
//                    PACQUET_PNPM12_UNAVAILABLE = why it could not be installed here (a skip)
// Reading index.db also needs node:sqlite, from this Node.js or the one PACQUET_PARITY_NODE names.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { test } from 'node:test'
import zlib from 'node:zlib'
import { diffListings, formatDiff, listTree } from '../scripts/tree-diff.mjs'
import { findNodeForPnpm, findPnpm, ROOT, toolEnv } from './helpers/pnpm.mjs'
import { depPathToFilename, makeProject, renderLockfile, run, tarballPath, tempDir } from './helpers/fixture.mjs'
import { startRegistry } from './helpers/registry.mjs'
import { checkStore, inspectStore, storeRoot } from './helpers/store-check.mjs'

const require = createRequire(import.meta.url)
const CLI = path.join(ROOT, 'cli', 'pacquet-native.js')
const REQUIRED = process.env.PACQUET_PARITY_REQUIRED === '1'
const PROCESS_TIMEOUT = 120_000 // a hang guard per process, not a speed requirement

function addon () {
  return require('../index.js')
}

// ---------------------------------------------------------------------------------------
// The tools

const pnpm11 = findPnpm()

/** pnpm 12's binary from PACQUET_PNPM12: { bin, version } or { reason, required }. */
function findPnpm12 (env = process.env) {
  if (env.PACQUET_PNPM12) {
    const r = spawnSync(env.PACQUET_PNPM12, ['--version'], { encoding: 'utf8', timeout: 30_000 })
    const version = r.status === 0 ? r.stdout.trim() : null
    if (/^12\./.test(version ?? '')) return { bin: env.PACQUET_PNPM12, version }
    return { reason: `PACQUET_PNPM12=${env.PACQUET_PNPM12} is not pnpm 12 (${version ?? r.error?.message ?? r.stderr})`, required: true }
  }
  // .ci/run could not install it on this platform: a reason to skip, even in CI.
  if (env.PACQUET_PNPM12_UNAVAILABLE) return { reason: `pnpm 12: ${env.PACQUET_PNPM12_UNAVAILABLE}`, required: false }
  return { reason: 'PACQUET_PNPM12 is not set (.ci/run installs @pnpm/exe.<platform> and sets it)', required: true }
}
const pnpm12 = findPnpm12()

// node:sqlite, here or in the Node.js for pnpm 11, to read index.db.
const sqliteNode = (() => {
  const [major, minor] = process.versions.node.split('.').map(Number)
  if (major > 22 || (major === 22 && minor >= 13)) return {}
  return findNodeForPnpm()
})()

const skip11 = pnpm11.reason ?? false
const skip12 = pnpm12.reason ?? false
const skipSqlite = sqliteNode.reason ? `reading index.db needs node:sqlite: ${sqliteNode.reason}` : false

if (REQUIRED) {
  // A missing prerequisite fails here instead of skipping (pnpm 12 where .ci/run said why not aside).
  const missing = [skip11, pnpm12.required && skip12, skipSqlite].filter(Boolean)
  if (missing.length) test('store interop: prerequisites (PACQUET_PARITY_REQUIRED=1)', () => assert.fail(missing.join('\n')))
}

/** Runs one pnpm (11 or 12) in `cwd` with a HOME of its own under `home`. */
function pnpmRunner (tool, home) {
  const nodeDir = pnpm11.nodeDir ?? findNodeForPnpm().dir // pnpm runs `node` for the postinstall
  return (args, cwd) => {
    const env = toolEnv(home, nodeDir)
    return tool === 11
      ? run(pnpm11.node, [pnpm11.pnpm, ...args], { cwd, env, timeout: PROCESS_TIMEOUT })
      : run(pnpm12.bin, args, { cwd, env, timeout: PROCESS_TIMEOUT })
  }
}

function assertOk (r, what) {
  assert.equal(r.status, 0, `${what} failed (${r.status ?? r.signal}${r.timedOut ? ', timed out' : ''}):\n${r.stdout}\n${r.stderr}`)
}

// ---------------------------------------------------------------------------------------
// Fixtures

const BUILT_FILE = 'built.txt'
// Writes a file into the package directory, as a real build leaves an artifact behind.
const POSTINSTALL = `node -e "require('fs').writeFileSync('${BUILT_FILE}', 'made by postinstall\\n')"`

/**
 * The interop project: a registry package with a dependency, a bin and a shared file, a scoped
 * one, a package fetched from a tarball URL (no registry path) and one with a postinstall
 * that builds are allowed to run (pnpm records its result as a `sideEffects` entry).
 * The registry must be up first: the tarball URL (in the lockfile) names its port.
 */
function interopProject (registry) {
  const spec = {
    packages: [
      { name: 'reg-a', version: '1.0.0', dependencies: { 'reg-b': '1.0.0' }, bin: { 'reg-a': 'bin/cli.js' }, files: { LICENSE: 'MIT\n', 'lib/a.js': 'module.exports = "a"\n' } },
      { name: 'reg-b', version: '1.0.0', files: { LICENSE: 'MIT\n', 'data.json': '{"b":true}\n' } },
      { name: '@scope/reg-c', version: '2.0.0', files: { 'README.md': '# c\n' } },
      { name: 'tar-pkg', version: '1.0.0', files: { 'tar.js': 'module.exports = "from a tarball URL"\n' } },
      { name: 'built', version: '1.0.0', scripts: { postinstall: POSTINSTALL } }
    ],
    importer: { dependencies: { 'reg-a': '1.0.0', '@scope/reg-c': '2.0.0', 'tar-pkg': '1.0.0', built: '1.0.0' } }
  }
  const base = makeProject('/nonexistent', { ...spec, write: false })
  const lock = base.lockfile
  // tar-pkg as pnpm records a dependency on a tarball URL: keyed by the URL, version aside.
  const tar = base.packages.get('tar-pkg@1.0.0')
  const url = `${registry.url}downloads/tar-pkg-1.0.0.tgz`
  const tarKey = `tar-pkg@${url}`
  delete lock.packages['tar-pkg@1.0.0']
  delete lock.snapshots['tar-pkg@1.0.0']
  lock.packages[tarKey] = { resolution: { integrity: tar.integrity, tarball: url }, version: '1.0.0' }
  lock.snapshots[tarKey] = {}
  lock.importers['.'].dependencies['tar-pkg'] = { specifier: url, version: url }
  lock.packages = sortKeys(lock.packages)
  lock.snapshots = sortKeys(lock.snapshots)
  const packageJson = { ...base.packageJson, dependencies: { ...base.packageJson.dependencies, 'tar-pkg': url } }
  for (const [urlPath, body] of base.tarballs) {
    if (urlPath !== tarballPath('tar-pkg', '1.0.0')) registry.tarballs.set(urlPath, body)
  }
  registry.tarballs.set('/downloads/tar-pkg-1.0.0.tgz', tar.tarball)
  // Row keys as pnpm forms them: `<integrity>\t<name>@<version>`, the URL for a tarball.
  const keys = {}
  for (const p of base.packages.values()) keys[p.name] = `${p.integrity}\t${p.name === 'tar-pkg' ? url : `${p.name}@${p.version}`}`
  return { lockfileText: renderLockfile(lock), packageJson, packages: base.packages, keys, url }
}

const versionOf = (name) => name === '@scope/reg-c' ? '2.0.0' : '1.0.0'

function sortKeys (obj) {
  return Object.fromEntries(Object.entries(obj).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
}

/** A project directory as pnpm reads it: lockfile, package.json, pnpm-workspace.yaml, .npmrc. */
function writeProject (dir, fixture, { storeDir, registry }) {
  fs.mkdirSync(dir, { recursive: true })
  fs.writeFileSync(path.join(dir, 'pnpm-lock.yaml'), fixture.lockfileText)
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify(fixture.packageJson, null, 2) + '\n')
  fs.writeFileSync(path.join(dir, 'pnpm-workspace.yaml'), [
    `storeDir: ${storeDir}`,
    'minimumReleaseAge: 0',
    'updateNotifier: false',
    // hardlinks make "pnpm used our blob" (and the other way round) visible as one inode
    'packageImportMethod: hardlink',
    'sideEffectsCache: true',
    'allowBuilds:',
    '  built: true',
    ''
  ].join('\n'))
  fs.writeFileSync(path.join(dir, '.npmrc'), `registry=${registry}\n`)
  return path.join(dir, 'pnpm-lock.yaml')
}

/** `<dir>/node_modules/.pnpm/<slot>/node_modules/<name>` of a package of the interop project. */
function slotPkgDir (dir, fixture, name) {
  const depPath = name === 'tar-pkg' ? `tar-pkg@${fixture.url}` : `${name}@${versionOf(name)}`
  return path.join(dir, 'node_modules', '.pnpm', depPathToFilename(depPath), 'node_modules', name)
}

function blobPath (storeDir, info) {
  return path.join(storeRoot(storeDir), 'files', info.digest.slice(0, 2), info.digest.slice(2) + ((info.mode & 0o111) ? '-exec' : ''))
}

/**
 * Every file of `row` in `pkgDir` is the store's blob itself (same inode); for a package that
 * needs a build, a copy of it (pnpm copies those, and so do we, so a build cannot write into
 * the store).
 */
function assertFromStore (pkgDir, row, storeDir, what) {
  for (const [rel, info] of row.files) {
    const file = path.join(pkgDir, rel)
    const blob = blobPath(storeDir, info)
    if (row.requiresBuild) {
      assert.deepEqual(fs.readFileSync(file), fs.readFileSync(blob), `${what}: ${file} has the blob's bytes`)
      assert.notEqual(fs.statSync(file).ino, fs.statSync(blob).ino, `${what}: ${file} is a copy`)
    } else {
      assert.equal(fs.statSync(file).ino, fs.statSync(blob).ino, `${what}: ${file} is not the store's blob`)
    }
  }
}

/** A row as compared across tools: files as a sorted object without checkedAt. */
function comparable (row) {
  const { sideEffects, tarIntegrity, files, ...rest } = row
  const sorted = [...files].sort(([a], [b]) => (a < b ? -1 : 1))
  return { ...rest, files: Object.fromEntries(sorted.map(([k, { checkedAt, ...info }]) => [k, info])) }
}

// ---------------------------------------------------------------------------------------
// Interop with pnpm 11 and pnpm 12

test('store interop with pnpm 11 and pnpm 12: rows either writes the other reads, slots named alike', { skip: skip11 || skipSqlite, timeout: 600_000 }, async (t) => {
  const registry = await startRegistry({ tarballs: new Map() })
  const tmp = tempDir(t, 'pacquet-store-interop-', () => registry.close())
  const fixture = interopProject(registry)
  const names = ['reg-a', 'reg-b', '@scope/reg-c', 'tar-pkg', 'built']
  const home = (label) => path.join(tmp, `home-${label}`)
  const { linkVirtualStore } = addon()

  /** Our offline install of the fixture from `storeDir` into `dir`: zero requests, zero fetches. */
  const installOffline = async (dir, storeDir) => {
    const lockfile = writeProject(dir, fixture, { storeDir, registry: registry.url })
    const before = registry.requests.length
    const result = await linkVirtualStore(lockfile, { storeDir, offline: true, packageImportMethod: 'hardlink', registries: { default: registry.url } })
    assert.deepEqual(registry.requests.slice(before).map(r => r.url), [], 'no request')
    assert.equal(result.fetched, 0, 'nothing fetched')
    assert.equal(result.reused, names.length, 'every package from the store')
    return result
  }

  /** pnpm `tool` fills a fresh store; returns its rows after checking them. */
  const pnpmFills = async (tool) => {
    const storeDir = path.join(tmp, `store-pnpm${tool}`)
    const dir = path.join(tmp, `pnpm${tool}-project`)
    writeProject(dir, fixture, { storeDir, registry: registry.url })
    const r = await pnpmRunner(tool, home(`pnpm${tool}`))(['install', '--frozen-lockfile'], dir)
    assertOk(r, `pnpm ${tool} install`)
    assert.equal(fs.readFileSync(path.join(slotPkgDir(dir, fixture, 'built'), BUILT_FILE), 'utf8'), 'made by postinstall\n', 'pnpm ran the postinstall')
    const store = await inspectStore(storeDir)
    assert.deepEqual(store.problems, [], `pnpm ${tool}'s store as the checker sees it`)
    for (const name of names) assert.ok(store.decoded.has(fixture.keys[name]), `pnpm ${tool} wrote the row ${fixture.keys[name]}; it has ${[...store.decoded.keys()].join(', ')}`)
    const built = store.decoded.get(fixture.keys.built)
    assert.ok(built.sideEffects instanceof Map && built.sideEffects.size > 0, `pnpm ${tool} recorded the build as sideEffects`)
    const added = [...built.sideEffects.values()].flatMap(d => [...(d.added?.keys() ?? [])])
    assert.ok(added.includes(BUILT_FILE), `the build's file is in sideEffects: ${added}`)
    t.diagnostic(`pnpm ${tool}: ${store.rows} rows (${store.aliases} aliases), ${store.blobs} blobs, sideEffects keys ${[...built.sideEffects.keys()]}`)
    return { storeDir, rows: store.decoded }
  }

  const fromPnpm = {}
  for (const tool of [11, 12]) {
    await t.test(`rows pnpm ${tool} writes (registry, tarball URL, sideEffects) are used offline, nothing downloaded`, { skip: tool === 12 && skip12 }, async () => {
      fromPnpm[tool] = await pnpmFills(tool)
      const { storeDir, rows } = fromPnpm[tool]
      const dir = path.join(tmp, `ours-from-pnpm${tool}`)
      await installOffline(dir, storeDir)
      for (const name of names) assertFromStore(slotPkgDir(dir, fixture, name), rows.get(fixture.keys[name]), storeDir, name)
      assert.deepEqual(await checkStore(storeDir), [], 'the store is as consistent after our install')
      // The tarball URL's slot name holds a hash (its port's `:` escapes like a `/`).
      const slots = (d) => fs.readdirSync(path.join(d, 'node_modules', '.pnpm')).sort()
      assert.deepEqual(slots(dir), slots(path.join(tmp, `pnpm${tool}-project`)), 'the virtual store has pnpm\'s slot names')
    })
  }

  // Ours fills a store of its own, online.
  const ourStore = path.join(tmp, 'store-ours')
  const ourDir = path.join(tmp, 'ours')
  const lockfile = writeProject(ourDir, fixture, { storeDir: ourStore, registry: registry.url })
  const result = await linkVirtualStore(lockfile, { storeDir: ourStore, packageImportMethod: 'hardlink', registries: { default: registry.url } })
  assert.equal(result.fetched, names.length)
  const ours = await inspectStore(ourStore)

  await t.test('rows we write decode as pnpm decodes them, with nothing the checker objects to', () => {
    assert.deepEqual(ours.problems, [])
    assert.deepEqual([...ours.decoded.keys()].sort(), names.map(n => fixture.keys[n]).sort(), 'one row per package, keyed as pnpm keys it')
  })

  for (const tool of [11, 12]) {
    await t.test(`rows we write equal pnpm ${tool}'s field by field (checkedAt and the build's sideEffects aside)`, { skip: tool === 12 && skip12 }, () => {
      assert.ok(fromPnpm[tool], `pnpm ${tool}'s store was filled above`)
      for (const name of names) {
        const theirs = fromPnpm[tool].rows.get(fixture.keys[name])
        const mine = ours.decoded.get(fixture.keys[name])
        assert.deepEqual(comparable(mine), comparable(theirs), `row of ${name}`)
        // pnpm 12 adds the SHA-512 of the uncompressed tar (and an alias row under it), which
        // pnpm 11 does not write and pnpm 12 does not need to use a row (see the offline
        // install from our store below).
        if (tool === 12) {
          const tar = zlib.gunzipSync(fixture.packages.get(`${name}@${versionOf(name)}`).tarball)
          assert.equal(theirs.tarIntegrity, `sha512-${createHash('sha512').update(tar).digest('base64')}`, `pnpm 12's tarIntegrity of ${name}`)
        }
        assert.equal(theirs.tarIntegrity === undefined, tool === 11, `tarIntegrity only in pnpm 12's row of ${name}`)
        // pnpm records the sideEffects of the build it ran; we run no builds and record none.
        assert.equal(mine.sideEffects, undefined, `no sideEffects in our row of ${name}`)
        if (name !== 'built') assert.equal(theirs.sideEffects, undefined, `no sideEffects in pnpm ${tool}'s row of ${name}`)
      }
    })
  }

  // Each pnpm gets its own copy of the store only we filled (each rewrites the built row).
  for (const tool of [11, 12]) {
    await t.test(`pnpm ${tool} install --frozen-lockfile --offline from a store only we filled`, { skip: tool === 12 && skip12 }, async () => {
      const storeDir = path.join(tmp, `store-ours-for-pnpm${tool}`)
      fs.cpSync(ourStore, storeDir, { recursive: true, preserveTimestamps: true })
      const dir = path.join(tmp, `pnpm${tool}-from-ours`)
      writeProject(dir, fixture, { storeDir, registry: registry.url })
      const before = registry.requests.length
      const r = await pnpmRunner(tool, home(`pnpm${tool}-offline`))(['install', '--frozen-lockfile', '--offline'], dir)
      assertOk(r, `pnpm ${tool} install --offline`)
      assert.deepEqual(registry.requests.slice(before).map(q => q.url), [], 'pnpm made no request')
      const rows = (await inspectStore(storeDir)).decoded
      for (const name of names) {
        const pkgDir = slotPkgDir(dir, fixture, name)
        assert.ok(fs.existsSync(path.join(pkgDir, 'package.json')), `pnpm ${tool} installed ${name}`)
        assertFromStore(pkgDir, ours.decoded.get(fixture.keys[name]), storeDir, `pnpm ${tool}'s ${name}`)
        assert.ok(rows.has(fixture.keys[name]), `the row of ${name} is still there`)
      }
      assert.equal(fs.readFileSync(path.join(slotPkgDir(dir, fixture, 'built'), BUILT_FILE), 'utf8'), 'made by postinstall\n', `pnpm ${tool} built the package from our row`)
      assert.deepEqual(await checkStore(storeDir), [], `the store after pnpm ${tool} used (and updated) it`)
    })
  }
})

// ---------------------------------------------------------------------------------------
// Corruption

test('a changed, a removed and a truncated blob are repaired by the next install; node_modules as a clean one', { skip: skipSqlite, timeout: 120_000 }, async (t) => {
  const packages = ['one', 'two', 'three', 'four'].map(name => ({
    name,
    version: '1.0.0',
    files: { LICENSE: 'ISC\n', 'data.txt': `the data of ${name}\n`.repeat(50) }
  }))
  const spec = { packages, importer: { dependencies: Object.fromEntries(packages.map(p => [p.name, '1.0.0'])) } }
  let registry
  const tmp = tempDir(t, 'pacquet-store-corrupt-', () => registry?.close())
  const dir = path.join(tmp, 'project')
  const storeDir = path.join(tmp, 'store')
  const project = makeProject(dir, spec)
  registry = await startRegistry({ tarballs: project.tarballs })
  const { linkVirtualStore } = addon()
  const install = () => linkVirtualStore(project.lockfilePath, { storeDir, packageImportMethod: 'hardlink', registries: { default: registry.url } })
  const listing = () => listTree(dir)

  await install()
  const { decoded } = await inspectStore(storeDir)
  const dataBlob = (name) => {
    const p = project.packages.get(`${name}@1.0.0`)
    const info = decoded.get(`${p.integrity}\t${name}@1.0.0`).files.get('data.txt')
    return { file: blobPath(storeDir, info), info, content: Buffer.from(`the data of ${name}\n`.repeat(50)) }
  }
  const [changed, removed, truncated] = ['one', 'two', 'three'].map(dataBlob)
  const buf = fs.readFileSync(changed.file)
  buf[10] ^= 0x20 // same size, one byte different
  fs.writeFileSync(changed.file, buf)
  fs.rmSync(removed.file)
  fs.truncateSync(truncated.file, 7)
  // Damage comes long after a blob was checked; pnpm (and we) trust a blob modified within
  // 100 ms of its checkedAt without reading it, so date the damage a second after that.
  for (const b of [changed, truncated]) {
    const when = new Date(Math.max(Date.now(), b.info.checkedAt + 1000))
    fs.utimesSync(b.file, when, when)
  }
  const damage = await checkStore(storeDir)
  // two blobs hold other bytes, and the three rows name a damaged or missing blob
  assert.equal(damage.length, 2 + 3, `the checker sees the damage:\n${damage.join('\n')}`)
  for (const name of ['one', 'two', 'three']) assert.ok(damage.some(l => l.includes(`\t${name}@1.0.0: files data.txt: blob`)), `${name}'s row is flagged`)

  fs.rmSync(path.join(dir, 'node_modules'), { recursive: true })
  registry.clearRequests()
  const repaired = await install()
  assert.equal(repaired.fetched, 3, 'the three damaged packages are fetched again')
  assert.equal(repaired.reused, 1, 'the intact one comes from the store')
  assert.deepEqual(registry.requests.map(r => r.path).sort(), ['one', 'three', 'two'].map(n => tarballPath(n, '1.0.0')))
  for (const b of [changed, removed, truncated]) assert.deepEqual(fs.readFileSync(b.file), b.content, `${b.file} holds its bytes again`)
  assert.deepEqual(await checkStore(storeDir), [], 'the store is whole again')
  const afterRepair = await listing()

  // A clean install at the same path (absolute links and .modules.yaml name it) into a
  // fresh store at the same path.
  fs.renameSync(dir, path.join(tmp, 'repaired'))
  fs.renameSync(storeDir, path.join(tmp, 'repaired-store'))
  makeProject(dir, spec)
  await install()
  const clean = await listing()
  const diff = diffListings(clean, afterRepair, { mode: true, hash: true, nlink: true })
  // .modules.yaml records when the install ran (prunedAt); everything else must be equal.
  diff.differ = diff.differ.filter(d => d.path !== 'node_modules/.modules.yaml')
  const lines = formatDiff(diff, clean, afterRepair, { labels: ['clean', 'repaired'] })
  assert.deepEqual(lines, [], `the repaired project differs from a clean one:\n${lines.join('\n')}`)
  const modulesYaml = (d) => { const m = JSON.parse(fs.readFileSync(path.join(d, 'node_modules', '.modules.yaml'), 'utf8')); delete m.prunedAt; return m }
  assert.deepEqual(modulesYaml(path.join(tmp, 'repaired')), modulesYaml(dir))
  assert.ok(clean.size > 20, `${clean.size} entries compared`)
})

// ---------------------------------------------------------------------------------------
// Concurrency

/**
 * Projects that overlap: every one has the common packages, and two of its own; packages
 * share files with each other (LICENSE, a common helper), so the same blobs are written by
 * several installs at once.
 */
function overlappingProjects (tmp, count) {
  const file = (name, i) => `// ${name} part ${i}\n` + 'x'.repeat(2000 + i * 97) + '\n'
  const pkg = (name, extra = {}) => {
    const files = { LICENSE: 'MIT License\n', 'lib/common.js': 'module.exports = 42\n' }
    for (let i = 0; i < 12; i++) files[`lib/part${i}.js`] = file(name, i)
    return { name, version: '1.0.0', files, ...extra }
  }
  const common = ['common-a', 'common-b', 'common-c'].map(n => pkg(n))
  const own = Array.from({ length: count + 1 }, (_, i) => pkg(`own-${i}`, { bin: { [`own-${i}`]: 'bin/cli.js' } }))
  const all = [...common, ...own]
  return Array.from({ length: count }, (_, i) => {
    // project i: the common packages, own-i and own-(i+1), so neighbours share those too
    const deps = [...common.map(p => p.name), own[i].name, own[i + 1].name]
    return makeProject(path.join(tmp, `project-${i}`), {
      packages: all,
      importer: { dependencies: Object.fromEntries(deps.map(d => [d, '1.0.0'])) }
    })
  })
}

const ROUNDS = 20
const PROJECTS = 4 // CLI processes; one more install runs in this process beside them

test(`${PROJECTS} CLI installs and one in-process install of overlapping projects into one fresh store at once, ${ROUNDS} rounds: all succeed, the store re-hashes clean`, { skip: skipSqlite, timeout: 300_000 }, async (t) => {
  let registry
  const tmp = tempDir(t, 'pacquet-store-concurrent-', () => registry?.close())
  const projects = overlappingProjects(tmp, PROJECTS + 1)
  const { linkVirtualStore } = addon()
  registry = await startRegistry({ tarballs: projects[0].tarballs })
  const env = { ...process.env }
  delete env.NODE_TEST_CONTEXT
  let reference = null
  const totals = { installs: 0, blobs: 0, rows: 0 }
  for (let round = 1; round <= ROUNDS; round++) {
    const storeDir = path.join(tmp, `store-${round}`)
    for (const p of projects) fs.rmSync(path.join(p.dir, 'node_modules'), { recursive: true, force: true })
    const inProcess = projects[PROJECTS]
    const [inProcessResult, ...results] = await Promise.allSettled([
      linkVirtualStore(inProcess.lockfilePath, { storeDir, registries: { default: registry.url } }),
      ...projects.slice(0, PROJECTS).map(p => run(process.execPath, [
        CLI, 'install', '--dir', p.dir, '--store-dir', storeDir, '--registry', registry.url, '--reporter', 'silent'
      ], { env, timeout: PROCESS_TIMEOUT }))
    ])
    results.forEach((r, i) => {
      assert.equal(r.status, 'fulfilled', `round ${round}, project ${i}: ${r.reason?.stack}`)
      assertOk(r.value, `round ${round}, project ${i}`)
    })
    assert.equal(inProcessResult.status, 'fulfilled', `round ${round}, the install in this process: ${inProcessResult.reason?.stack}`)
    totals.installs += projects.length
    const store = await inspectStore(storeDir)
    assert.deepEqual(store.problems, [], `round ${round}: the store`)
    totals.blobs += store.blobs
    totals.rows += store.rows
    // Every project's tree is the same, byte for byte, in every round (but the state files,
    // which name the round's store or the time of the install).
    const listings = await Promise.all(projects.map(p => listTree(path.join(p.dir, 'node_modules'), {
      ignore: ['.modules.yaml', '.pacquet-native-state.json', '.pnpm-workspace-state-v1.json']
    })))
    if (!reference) reference = listings
    listings.forEach((l, i) => {
      const lines = formatDiff(diffListings(reference[i], l, { mode: true, hash: true }), reference[i], l, { labels: ['round 1', `round ${round}`] })
      assert.deepEqual(lines, [], `round ${round}, project ${i}`)
    })
    fs.rmSync(storeDir, { recursive: true })
  }
  t.diagnostic(`${ROUNDS} rounds, ${totals.installs} installs, ${totals.blobs} blobs re-hashed, ${totals.rows} rows decoded`)
})

test('our install beside a pnpm 11 install into one store at the same time: both succeed, the store stays consistent', { skip: skip11 || skipSqlite, timeout: 300_000 }, async (t) => {
  let registry
  const tmp = tempDir(t, 'pacquet-store-beside-pnpm-', () => registry?.close())
  const [mine, theirs] = overlappingProjects(tmp, 2)
  // pnpm takes a while to start: ours starts once pnpm asks for its first tarball, and pnpm's
  // answers come a little late, so that both write the shared blobs and rows at once.
  const isOurs = (r) => /^pacquet-native\//.test(r.headers['user-agent'] ?? '')
  registry = await startRegistry({ tarballs: mine.tarballs, delay: (r) => isOurs(r) ? 0 : 200 })
  const env = { ...process.env }
  delete env.NODE_TEST_CONTEXT
  const pnpm = pnpmRunner(11, path.join(tmp, 'home'))
  const ROUNDS_BESIDE = 3
  for (let round = 1; round <= ROUNDS_BESIDE; round++) {
    const storeDir = path.join(tmp, `store-${round}`)
    for (const p of [mine, theirs]) {
      fs.rmSync(path.join(p.dir, 'node_modules'), { recursive: true, force: true })
      writeProject(p.dir, { lockfileText: p.lockfileText, packageJson: p.packageJson }, { storeDir, registry: registry.url })
    }
    registry.clearRequests()
    const pnpms = pnpm(['install', '--frozen-lockfile'], theirs.dir)
    await Promise.race([registry.waitForRequest(r => !isOurs(r)), pnpms])
    const ours = await run(process.execPath, [CLI, 'install', '--dir', mine.dir, '--reporter', 'silent'], { env, timeout: PROCESS_TIMEOUT })
    assertOk(ours, `round ${round}: our install`)
    assertOk(await pnpms, `round ${round}: pnpm 11's install`)
    const store = await inspectStore(storeDir)
    assert.deepEqual(store.problems, [], `round ${round}: the store`)
    for (const p of [mine, theirs]) {
      for (const snap of p.snapshots.values()) {
        if (!p.lockfile.importers['.'].dependencies[snap.name]) continue
        const pkg = p.packages.get(snap.pkgKey)
        for (const [rel, { content }] of Object.entries(pkg.files)) {
          assert.deepEqual(fs.readFileSync(path.join(p.pkgDir(snap.key), rel)), content, `round ${round}: ${p.dir} ${snap.key}/${rel}`)
        }
      }
    }
    const fetchedBy = (f) => registry.requests.filter(f).length
    t.diagnostic(`round ${round}: ${fetchedBy(isOurs)} tarballs fetched by ours, ${fetchedBy(r => !isOurs(r))} by pnpm; ${store.blobs} blobs re-hashed, ${store.rows} rows decoded`)
  }
})
