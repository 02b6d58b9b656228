// End-to-end tests of linkVirtualStore(): a fixture project, a loopback registry, a temp
// store, and assertions on the resulting node_modules, store and events.
// Run: node --test --test-concurrency=1 __test__/
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import { fileURLToPath, pathToFileURL } from 'node:url'
import {
  casPath, cleanEnv, depPathToFilename, integrityOf, listFiles, makeProject, readStoreIndex, refToDepPath,
  run, storeIndexKey, tarballPath, tempDir
} from './helpers/fixture.mjs'
import { makeTarball } from './helpers/tarball.mjs'
import { startRegistry } from './helpers/registry.mjs'

const require = createRequire(import.meta.url)
const HERE = path.dirname(fileURLToPath(import.meta.url))
const ROOT = path.resolve(HERE, '..')

// Loaded per test so that a missing build fails each test with the reason, not the file.
function addon () {
  return require('../index.js')
}

const TIMEOUT = { timeout: 60_000 } // a hang guard, not a speed requirement

// Small retry delays so that a test that does retry never waits pnpm's default 10 s.
const FAST_RETRIES = { fetchRetryMintimeout: 10, fetchRetryMaxtimeout: 100 }

/** tmp/{project,store}, the fixture, its registry, an event log and an options builder. */
async function setup (t, spec, registryOptions = {}) {
  let registry
  const tmp = tempDir(t, undefined, () => registry?.close())
  const dir = path.join(tmp, 'project')
  const storeDir = path.join(tmp, 'store')
  const project = makeProject(dir, spec)
  registry = await startRegistry({ tarballs: project.tarballs, ...registryOptions })
  const events = []
  const options = (extra = {}) => ({
    storeDir,
    registries: { default: registry.url },
    ...FAST_RETRIES,
    onProgress: (e) => events.push(e),
    ...extra
  })
  return { tmp, dir, storeDir, project, registry, events, options }
}

/** Awaits a rejection and checks the pnpm-style error contract: Error, code, string hint. */
async function rejectsWith (promise, code) {
  let err
  try {
    const value = await promise
    assert.fail(`expected a rejection with ${code}, but it resolved with ${JSON.stringify(value)}`)
  } catch (e) {
    if (e instanceof assert.AssertionError) throw e
    err = e
  }
  assert.ok(err instanceof Error, `rejected with a non-Error: ${String(err)}`)
  assert.equal(err.code, code, `wrong code; message: ${err.message}`)
  assert.equal(typeof err.hint, 'string', 'err.hint must be a string (possibly empty)')
  assert.ok(err.message.length > 0, 'err.message must not be empty')
  return err
}

const progress = (events, status) => events.filter(e => e.name === 'pnpm:progress' && e.status === status)

// A dep with its own deps, a scoped package, an alias (foo -> bar), a peer-suffixed
// snapshot, an executable bin, and paths long enough to need the ustar prefix field
// and a pax header in the tarball.
const LONG_PAX = `lib/${'x'.repeat(120)}.js`
const LONG_PREFIX = `${'deep/'.repeat(25)}f.txt`
const GRAPH = {
  packages: [
    {
      name: 'a',
      version: '1.0.0',
      dependencies: { b: '1.0.0', '@scope/c': '2.0.0' },
      bin: { 'a-cli': 'bin/cli.js' },
      files: { [LONG_PAX]: 'module.exports = 1\n', [LONG_PREFIX]: 'deep\n', 'README.md': '# a\n' }
    },
    { name: 'b', version: '1.0.0' },
    { name: '@scope/c', version: '2.0.0' },
    { name: 'bar', version: '1.0.0' },
    { name: 'host', version: '2.0.0' },
    {
      name: 'plugin',
      version: '1.0.0',
      peerDependencies: { host: '^2.0.0' },
      snapshots: [{ peers: '(host@2.0.0)', dependencies: { host: '2.0.0' } }]
    }
  ],
  importer: {
    dependencies: { a: '1.0.0', '@scope/c': '2.0.0', foo: 'bar@1.0.0', host: '2.0.0', plugin: '1.0.0(host@2.0.0)' }
  }
}
const GRAPH_SIZE = 6 // snapshots, all distinct packages

function sumOf (values) {
  let n = 0
  for (const v of values) n += v
  return n
}

/** Asserts files, modes, store blobs and symlinks of every snapshot of a project. */
function assertTree (s, result, { vsd = s.project.virtualStoreDir, maxLength = 120 } = {}) {
  const { project, storeDir } = s
  for (const snap of project.snapshots.values()) {
    if (result.skipped?.includes(snap.key)) continue
    const pkg = project.packages.get(snap.pkgKey)
    const pkgDir = project.pkgDir(snap.key, vsd, maxLength)
    assert.deepEqual(
      listFiles(pkgDir).filter(f => !f.startsWith('node_modules/')),
      Object.keys(pkg.files).sort(),
      `files of ${snap.key} in ${pkgDir}`
    )
    for (const [rel, { content, mode }] of Object.entries(pkg.files)) {
      const file = path.join(pkgDir, rel)
      assert.deepEqual(fs.readFileSync(file), content, `bytes of ${snap.key}/${rel}`)
      const st = fs.statSync(file)
      assert.equal(Boolean(st.mode & 0o111), Boolean(mode & 0o111), `exec bit of ${snap.key}/${rel} (mode ${st.mode.toString(8)})`)
      const blob = casPath(storeDir, content, mode)
      assert.ok(fs.existsSync(blob), `store blob of ${snap.key}/${rel}: ${blob}`)
      assert.deepEqual(fs.readFileSync(blob), content, `store blob bytes of ${snap.key}/${rel}`)
      if (result.importMethod === 'hardlink') {
        assert.equal(st.ino, fs.statSync(blob).ino, `${snap.key}/${rel} is a hardlink of its store blob`)
      }
    }
    // Each dependency is a relative symlink <slot>/node_modules/<alias> -> <depSlot>/node_modules/<depName>.
    const edges = { ...snap.dependencies, ...snap.optionalDependencies }
    for (const [alias, ref] of Object.entries(edges)) {
      const depKey = refToDepPath(alias, ref)
      if (result.skipped?.includes(depKey)) continue
      const link = path.join(project.slotDir(snap.key, vsd, maxLength), 'node_modules', alias)
      assertRelativeLink(link, project.pkgDir(depKey, vsd, maxLength), `${snap.key} -> ${alias}`)
    }
  }
}

function assertRelativeLink (link, target, what) {
  let st
  try { st = fs.lstatSync(link) } catch { assert.fail(`${what}: ${link} does not exist`) }
  assert.ok(st.isSymbolicLink(), `${what}: ${link} is not a symlink`)
  const expected = path.relative(path.dirname(link), target)
  assert.equal(fs.readlinkSync(link), expected, `${what}: link text`)
  assert.equal(fs.realpathSync(link), fs.realpathSync(target), `${what}: resolves to the slot`)
}

/** require()s each name from the project dir in a fresh node and returns the exports. */
async function requireFromProject (dir, names) {
  const script = `const o = {}; for (const n of ${JSON.stringify(names)}) o[n] = require(n); process.stdout.write(JSON.stringify(o))`
  const r = await run(process.execPath, ['-e', script], { cwd: dir })
  assert.equal(r.status, 0, `require() from the project failed:\n${r.stderr}`)
  return JSON.parse(r.stdout)
}

test('installs a small graph with pnpm\'s layout', TIMEOUT, async (t) => {
  const s = await setup(t, GRAPH)
  const { linkVirtualStore } = addon()
  const result = await linkVirtualStore(s.project.lockfilePath, s.options())

  const pkgs = [...s.project.packages.values()]
  assert.equal(result.added, GRAPH_SIZE, 'added')
  assert.equal(result.fetched, GRAPH_SIZE, 'fetched')
  assert.equal(result.reused, 0, 'reused')
  assert.deepEqual(result.skipped, [], 'skipped')
  assert.equal(result.bytesDownloaded, sumOf(pkgs.map(p => p.tarball.length)), 'bytesDownloaded = sum of tarball sizes')
  assert.equal(result.filesImported, sumOf(pkgs.map(p => Object.keys(p.files).length)), 'filesImported')
  assert.equal(result.virtualStoreDir, s.project.virtualStoreDir, 'virtualStoreDir')
  assert.ok([s.storeDir, path.join(s.storeDir, 'v11')].includes(result.storeDir), `storeDir: ${result.storeDir}`)
  assert.ok(['hardlink', 'clone', 'copy'].includes(result.importMethod), `importMethod: ${result.importMethod}`)
  assert.equal(typeof result.timings?.totalMs, 'number', 'timings.totalMs')

  assertTree(s, result)

  // Direct dependencies: <dir>/node_modules/<alias> -> .pnpm/<slot>/node_modules/<name>.
  for (const [alias, ref] of Object.entries(GRAPH.importer.dependencies)) {
    assertRelativeLink(path.join(s.dir, 'node_modules', alias), s.project.pkgDir(refToDepPath(alias, ref)), `direct ${alias}`)
  }
  assert.equal(fs.readlinkSync(path.join(s.dir, 'node_modules', 'foo')), path.join('.pnpm', 'bar@1.0.0', 'node_modules', 'bar'))
  assert.ok(fs.existsSync(path.join(s.project.virtualStoreDir, 'plugin@1.0.0_host@2.0.0', 'node_modules', 'plugin', 'package.json')))
  assert.ok(fs.existsSync(path.join(s.project.virtualStoreDir, '@scope+c@2.0.0', 'node_modules', '@scope', 'c', 'package.json')))

  // The exec bit of the bin survives (the tree check covers it; this names it).
  const cli = fs.statSync(path.join(s.project.pkgDir('a@1.0.0'), 'bin', 'cli.js'))
  assert.ok(cli.mode & 0o100, 'bin/cli.js is executable')
  assert.ok(fs.existsSync(casPath(s.storeDir, s.project.packages.get('a@1.0.0').files['bin/cli.js'].content, 0o755)))

  // Node resolves every direct dependency, and through them their own dependencies and peers.
  const mods = await requireFromProject(s.dir, Object.keys(GRAPH.importer.dependencies))
  assert.deepEqual(mods.a, { name: 'a', version: '1.0.0', deps: { b: '1.0.0', '@scope/c': '2.0.0' } })
  assert.deepEqual(mods['@scope/c'], { name: '@scope/c', version: '2.0.0', deps: {} })
  assert.deepEqual(mods.foo, { name: 'bar', version: '1.0.0', deps: {} })
  assert.deepEqual(mods.host, { name: 'host', version: '2.0.0', deps: {} })
  assert.deepEqual(mods.plugin, { name: 'plugin', version: '1.0.0', deps: { host: '2.0.0' } })

  // One index row per package, keyed "<integrity>\t<name>@<version>".
  const index = await readStoreIndex(s.storeDir)
  assert.ok(index.exists, 'store index.db exists')
  for (const p of pkgs) assert.ok(index.has(storeIndexKey(p.integrity, p.name, p.version)), `index row for ${p.key} (${index.method})`)
  if (index.method === 'sqlite') assert.equal(index.count, GRAPH_SIZE, 'index.db row count')
  else t.diagnostic(`node:sqlite unavailable on ${process.version}: rows checked by scanning index.db bytes, count not checked`)

  // One tarball request per package, nothing else.
  assert.deepEqual(s.registry.requests.map(r => r.path).sort(), pkgs.map(p => p.urlPath).sort())

  // Events: pnpm's shapes and counts.
  assert.equal(progress(s.events, 'resolved').length, GRAPH_SIZE, 'resolved events')
  assert.equal(progress(s.events, 'fetched').length, GRAPH_SIZE, 'fetched events')
  assert.equal(progress(s.events, 'found_in_store').length, 0, 'found_in_store events')
  assert.equal(progress(s.events, 'imported').length, GRAPH_SIZE, 'imported events')
  for (const e of s.events.filter(e => e.name === 'pnpm:progress')) {
    assert.equal(e.level, 'debug')
    if (e.status !== 'imported') assert.equal(typeof e.packageId, 'string', `packageId in ${JSON.stringify(e)}`)
  }
  const stages = s.events.filter(e => e.name === 'pnpm:stage').map(e => e.stage)
  assert.ok(stages.includes('importing_started') && stages.includes('importing_done'), `stages: ${stages}`)
  assert.ok(stages.indexOf('importing_started') < stages.lastIndexOf('importing_done'), 'importing_started before importing_done')
  const stats = s.events.filter(e => e.name === 'pnpm:stats' && typeof e.added === 'number')
  assert.equal(sumOf(stats.map(e => e.added)), GRAPH_SIZE, 'pnpm:stats added')
  const started = s.events.filter(e => e.name === 'pnpm:fetching-progress' && e.status === 'started')
  assert.equal(started.length, GRAPH_SIZE, 'fetching-progress started events')
})

test('a second install with node_modules removed fetches nothing and reuses the store', TIMEOUT, async (t) => {
  const s = await setup(t, GRAPH)
  const { linkVirtualStore } = addon()
  await linkVirtualStore(s.project.lockfilePath, s.options())
  fs.rmSync(path.join(s.dir, 'node_modules'), { recursive: true })
  s.registry.clearRequests()
  s.events.length = 0

  const result = await linkVirtualStore(s.project.lockfilePath, s.options())
  assert.deepEqual(s.registry.requests.map(r => r.url), [], 'no request reached the registry')
  assert.equal(result.reused, GRAPH_SIZE, 'reused')
  assert.equal(result.fetched, 0, 'fetched')
  assert.equal(result.bytesDownloaded, 0, 'bytesDownloaded')
  assert.equal(result.added, GRAPH_SIZE, 'added')
  assert.equal(progress(s.events, 'found_in_store').length, GRAPH_SIZE, 'found_in_store events')
  assert.equal(progress(s.events, 'fetched').length, 0, 'fetched events')
  assertTree(s, result)
  const mods = await requireFromProject(s.dir, ['a', 'foo', 'plugin'])
  assert.equal(mods.a.deps.b, '1.0.0')
})

test('a repeat install over an existing node_modules fetches nothing', TIMEOUT, async (t) => {
  const s = await setup(t, GRAPH)
  const { linkVirtualStore } = addon()
  await linkVirtualStore(s.project.lockfilePath, s.options())
  s.registry.clearRequests()
  const result = await linkVirtualStore(s.project.lockfilePath, s.options())
  assert.equal(s.registry.requests.length, 0, 'no request reached the registry')
  assert.equal(result.fetched, 0)
  assertTree(s, result)
})

test('offline: a warm store installs, a cold store fails with ERR_PNPM_NO_OFFLINE_TARBALL', TIMEOUT, async (t) => {
  const s = await setup(t, GRAPH)
  const { linkVirtualStore } = addon()

  const cold = await rejectsWith(linkVirtualStore(s.project.lockfilePath, s.options({ offline: true })), 'ERR_PNPM_NO_OFFLINE_TARBALL')
  assert.equal(s.registry.requests.length, 0, `offline made requests: ${s.registry.requests.map(r => r.url)} (${cold.message})`)

  await linkVirtualStore(s.project.lockfilePath, s.options())
  fs.rmSync(path.join(s.dir, 'node_modules'), { recursive: true })
  s.registry.clearRequests()
  const result = await linkVirtualStore(s.project.lockfilePath, s.options({ offline: true }))
  assert.equal(s.registry.requests.length, 0)
  assert.equal(result.reused, GRAPH_SIZE)
  assertTree(s, result)
})

test('a pre-aborted signal rejects with ABORT_ERR before any work', TIMEOUT, async (t) => {
  const s = await setup(t, GRAPH)
  const { linkVirtualStore } = addon()
  await rejectsWith(linkVirtualStore(s.project.lockfilePath, s.options({ signal: AbortSignal.abort() })), 'ABORT_ERR')
  assert.equal(s.registry.requests.length, 0, 'nothing fetched')
  assert.ok(!fs.existsSync(path.join(s.dir, 'node_modules')), 'nothing linked')
})

test('an abort while a tarball request is pending rejects with ABORT_ERR', TIMEOUT, async (t) => {
  // The registry never answers, so the install can only end through the abort.
  const s = await setup(t, GRAPH, { delay: Infinity })
  const { linkVirtualStore } = addon()
  const controller = new AbortController()
  s.registry.waitForRequest().then(() => controller.abort())
  await rejectsWith(linkVirtualStore(s.project.lockfilePath, s.options({ signal: controller.signal })), 'ABORT_ERR')
  assert.ok(s.registry.requests.length > 0)
})

test('an abort while a tarball body is streaming rejects with ABORT_ERR', TIMEOUT, async (t) => {
  // Headers and a few bytes are sent, then the body stalls forever. When exactly the abort
  // lands does not matter: the only possible outcome is ABORT_ERR.
  const spec = { packages: [{ name: 'big', version: '1.0.0', files: { 'data.bin': crypto.randomBytes(64 * 1024) } }], importer: { dependencies: { big: '1.0.0' } } }
  const s = await setup(t, spec, { stall: { [tarballPath('big', '1.0.0')]: 1024 } })
  const { linkVirtualStore } = addon()
  const controller = new AbortController()
  s.registry.waitForRequest().then(() => setTimeout(() => controller.abort(), 100))
  await rejectsWith(linkVirtualStore(s.project.lockfilePath, s.options({ signal: controller.signal })), 'ABORT_ERR')
  const index = await readStoreIndex(s.storeDir)
  const big = s.project.packages.get('big@1.0.0')
  assert.ok(!index.has(storeIndexKey(big.integrity, 'big', '1.0.0')), 'no index row for an aborted download')
})

test('an integrity mismatch rejects with ERR_PNPM_TARBALL_INTEGRITY and stores nothing for it', TIMEOUT, async (t) => {
  const bogus = integrityOf(Buffer.from('not the tarball'))
  const spec = {
    packages: [
      { name: 'a', version: '1.0.0', dependencies: { b: '1.0.0' } },
      { name: 'b', version: '1.0.0', integrity: bogus }
    ],
    importer: { dependencies: { a: '1.0.0' } }
  }
  const s = await setup(t, spec)
  const { linkVirtualStore } = addon()
  const err = await rejectsWith(linkVirtualStore(s.project.lockfilePath, s.options()), 'ERR_PNPM_TARBALL_INTEGRITY')
  assert.ok(err.message.includes('b'), `message names the package: ${err.message}`)
  const b = s.project.packages.get('b@1.0.0')
  const index = await readStoreIndex(s.storeDir)
  assert.ok(!index.has(storeIndexKey(bogus, 'b', '1.0.0')), 'no row under the lockfile integrity')
  assert.ok(!index.has(storeIndexKey(integrityOf(b.tarball), 'b', '1.0.0')), 'no row under the real integrity')
  assert.ok(!fs.existsSync(path.join(s.project.pkgDir('b@1.0.0'), 'package.json')), 'b is not linked')
})

const V6_LOCKFILE = `lockfileVersion: '6.0'

settings:
  autoInstallPeers: true
  excludeLinksFromLockfile: false

dependencies:
  a:
    specifier: ^1.0.0
    version: 1.0.0

packages:

  /a@1.0.0:
    resolution: {integrity: ${integrityOf(Buffer.from('a'))}}
    dev: false
`

for (const version of ['6.0', '10.0']) {
  test(`lockfileVersion '${version}' rejects with ERR_PNPM_LOCKFILE_BREAKING_CHANGE and writes nothing`, TIMEOUT, async (t) => {
    const s = await setup(t, { packages: [], importer: {} })
    fs.writeFileSync(s.project.lockfilePath, V6_LOCKFILE.replace("'6.0'", `'${version}'`))
    const { linkVirtualStore } = addon()
    await rejectsWith(linkVirtualStore(s.project.lockfilePath, s.options()), 'ERR_PNPM_LOCKFILE_BREAKING_CHANGE')
    assert.deepEqual(fs.readdirSync(s.dir).sort(), ['package.json', 'pnpm-lock.yaml'], 'nothing written under the project')
    assert.equal(s.registry.requests.length, 0)
  })
}

test('a lockfile that is not valid YAML rejects with ERR_PNPM_BROKEN_LOCKFILE', TIMEOUT, async (t) => {
  const s = await setup(t, { packages: [], importer: {} })
  fs.writeFileSync(s.project.lockfilePath, [
    "lockfileVersion: '9.0'",
    '',
    'importers:',
    '  .:',
    '    dependencies:',
    '      a: {specifier: ^1.0.0, version: 1.0.0',
    '  packages: [',
    ''
  ].join('\n'))
  const { linkVirtualStore } = addon()
  await rejectsWith(linkVirtualStore(s.project.lockfilePath, s.options()), 'ERR_PNPM_BROKEN_LOCKFILE')
  assert.deepEqual(fs.readdirSync(s.dir).sort(), ['package.json', 'pnpm-lock.yaml'])
})

test('a snapshot without a packages entry rejects with ERR_PNPM_LOCKFILE_MISSING_DEPENDENCY', TIMEOUT, async (t) => {
  const spec = {
    packages: [{ name: 'a', version: '1.0.0', dependencies: { b: '1.0.0' } }, { name: 'b', version: '1.0.0' }],
    importer: { dependencies: { a: '1.0.0' } },
    omitPackages: ['b@1.0.0']
  }
  const s = await setup(t, spec)
  assert.ok(s.project.lockfileText.includes('\n  b@1.0.0: {}\n'), 'the snapshot is still there')
  const { linkVirtualStore } = addon()
  const err = await rejectsWith(linkVirtualStore(s.project.lockfilePath, s.options()), 'ERR_PNPM_LOCKFILE_MISSING_DEPENDENCY')
  assert.ok(err.message.includes('b@1.0.0'), `message names the dep path: ${err.message}`)
})

test('a dependency without a snapshot rejects with ERR_PNPM_LOCKFILE_MISSING_DEPENDENCY', TIMEOUT, async (t) => {
  const spec = {
    packages: [{ name: 'a', version: '1.0.0', dependencies: { b: '1.0.0' } }, { name: 'b', version: '1.0.0' }],
    importer: { dependencies: { a: '1.0.0' } },
    omitPackages: ['b@1.0.0'],
    omitSnapshots: ['b@1.0.0']
  }
  const s = await setup(t, spec)
  const { linkVirtualStore } = addon()
  const err = await rejectsWith(linkVirtualStore(s.project.lockfilePath, s.options()), 'ERR_PNPM_LOCKFILE_MISSING_DEPENDENCY')
  assert.ok(err.message.includes('b@1.0.0'), `message names the dep path: ${err.message}`)
})

test('a 404 rejects with ERR_PNPM_FETCH_404 without retrying', TIMEOUT, async (t) => {
  const spec = {
    packages: [{ name: 'a', version: '1.0.0', dependencies: { b: '1.0.0' } }, { name: 'b', version: '1.0.0', serve: false }],
    importer: { dependencies: { a: '1.0.0' } }
  }
  const s = await setup(t, spec)
  const { linkVirtualStore } = addon()
  const err = await rejectsWith(linkVirtualStore(s.project.lockfilePath, s.options()), 'ERR_PNPM_FETCH_404')
  const url = tarballPath('b', '1.0.0')
  assert.equal(s.registry.requestsTo(url).length, 1, 'exactly one request for the missing tarball')
  assert.ok(err.message.includes(url), `message names the URL: ${err.message}`)
  assert.equal(s.events.filter(e => e.name === 'pnpm:request-retry').length, 0, 'no retry event')
})

test('a 500 is retried and the install succeeds, with a pnpm:request-retry event', TIMEOUT, async (t) => {
  const url = tarballPath('b', '1.0.0')
  const spec = {
    packages: [{ name: 'a', version: '1.0.0', dependencies: { b: '1.0.0' } }, { name: 'b', version: '1.0.0' }],
    importer: { dependencies: { a: '1.0.0' } }
  }
  const s = await setup(t, spec, { faults: { [url]: [500] } })
  const { linkVirtualStore } = addon()
  const result = await linkVirtualStore(s.project.lockfilePath, s.options())
  assert.equal(result.fetched, 2)
  assert.deepEqual(s.registry.requestsTo(url).map(r => r.status), [500, 200])
  const retries = s.events.filter(e => e.name === 'pnpm:request-retry')
  assert.equal(retries.length, 1, `retry events: ${JSON.stringify(retries)}`)
  const [retry] = retries
  assert.equal(retry.level, 'debug')
  assert.equal(retry.method, 'GET')
  assert.equal(retry.url, new URL(url.slice(1), s.registry.url).href)
  assert.equal(retry.attempt, 1)
  assert.equal(retry.maxRetries, 2, 'pnpm default fetchRetries')
  assert.equal(typeof retry.error?.message, 'string')
  assert.equal(retry.error.httpStatusCode, 500)
  assertTree(s, result)
})

test('a dropped connection is retried and the install succeeds', TIMEOUT, async (t) => {
  const url = tarballPath('b', '1.0.0')
  const spec = {
    packages: [{ name: 'a', version: '1.0.0', dependencies: { b: '1.0.0' } }, { name: 'b', version: '1.0.0' }],
    importer: { dependencies: { a: '1.0.0' } }
  }
  const s = await setup(t, spec, { faults: { [url]: ['reset', 503] } })
  const { linkVirtualStore } = addon()
  const result = await linkVirtualStore(s.project.lockfilePath, s.options())
  assert.equal(result.fetched, 2)
  assert.equal(s.registry.requestsTo(url).length, 3)
  assert.equal(s.events.filter(e => e.name === 'pnpm:request-retry').length, 2)
})

test('fetchRetries: 0 turns a 500 into an error after one request', TIMEOUT, async (t) => {
  const url = tarballPath('a', '1.0.0')
  const s = await setup(t, { packages: [{ name: 'a', version: '1.0.0' }], importer: { dependencies: { a: '1.0.0' } } }, { faults: { [url]: [500, 500, 500] } })
  const { linkVirtualStore } = addon()
  await rejectsWith(linkVirtualStore(s.project.lockfilePath, s.options({ fetchRetries: 0 })), 'ERR_PNPM_FETCH_500')
  assert.equal(s.registry.requestsTo(url).length, 1)
})

test('every progress event is delivered before the promise settles', TIMEOUT, async (t) => {
  // Enough packages that undelivered callbacks would show (they come in batches per tick).
  const N = 40
  const packages = []
  for (let i = 0; i < N; i++) {
    packages.push({ name: `p${i}`, version: '1.0.0', dependencies: i + 1 < N ? { [`p${i + 1}`]: '1.0.0' } : undefined })
  }
  const s = await setup(t, { packages, importer: { dependencies: { p0: '1.0.0', p20: '1.0.0' } } })
  const { linkVirtualStore } = addon()
  const result = await linkVirtualStore(s.project.lockfilePath, s.options())
  // Counted synchronously on resumption: anything still queued would be missing here.
  const imported = progress(s.events, 'imported').length
  const total = s.events.length
  assert.equal(imported, N, 'imported events when the promise resolved')
  assert.equal(result.added, N)
  // And nothing trickles in afterwards.
  await new Promise(resolve => setTimeout(resolve, 200))
  assert.equal(s.events.length, total, 'no event after the promise settled')
})

test('events are delivered before a rejection too', TIMEOUT, async (t) => {
  const spec = {
    packages: [{ name: 'a', version: '1.0.0', dependencies: { b: '1.0.0' } }, { name: 'b', version: '1.0.0', serve: false }],
    importer: { dependencies: { a: '1.0.0' } }
  }
  const s = await setup(t, spec)
  const { linkVirtualStore } = addon()
  await rejectsWith(linkVirtualStore(s.project.lockfilePath, s.options()), 'ERR_PNPM_FETCH_404')
  const total = s.events.length
  await new Promise(resolve => setTimeout(resolve, 200))
  assert.equal(s.events.length, total, 'no event after the promise settled')
})

const OTHER_OS = process.platform === 'win32' ? 'linux' : 'win32'
const OTHER_CPU = process.arch === 'arm64' ? 'x64' : 'arm64'
const PLATFORM_SPEC = {
  packages: [
    { name: 'a', version: '1.0.0', optionalDependencies: { 'native-os': '1.0.0', 'native-cpu': '1.0.0' } },
    { name: 'native-os', version: '1.0.0', os: [OTHER_OS] },
    { name: 'native-cpu', version: '1.0.0', cpu: [OTHER_CPU] },
    { name: 'direct-opt', version: '1.0.0', os: [OTHER_OS] }
  ],
  importer: { dependencies: { a: '1.0.0' }, optionalDependencies: { 'direct-opt': '1.0.0' } }
}

test('optional packages for another os/cpu are skipped and listed in result.skipped', TIMEOUT, async (t) => {
  const s = await setup(t, PLATFORM_SPEC)
  assert.ok(s.project.lockfileText.includes('  native-os@1.0.0:\n    optional: true\n'), 'fixture marks the snapshot optional')
  const { linkVirtualStore } = addon()
  const result = await linkVirtualStore(s.project.lockfilePath, s.options())
  const skipped = ['direct-opt@1.0.0', 'native-cpu@1.0.0', 'native-os@1.0.0']
  assert.deepEqual([...result.skipped].sort(), skipped)
  assert.equal(result.added, 1)
  for (const key of skipped) {
    assert.ok(!fs.existsSync(s.project.slotDir(key)), `no slot for ${key}`)
    assert.equal(s.registry.requestsTo(s.project.packages.get(key).urlPath).length, 0, `${key} not fetched`)
  }
  assert.ok(!fs.existsSync(path.join(s.dir, 'node_modules', 'direct-opt')), 'no direct link to a skipped package')
  for (const alias of ['native-os', 'native-cpu']) {
    assert.throws(() => fs.lstatSync(path.join(s.project.slotDir('a@1.0.0'), 'node_modules', alias)), { code: 'ENOENT' })
  }
  const events = s.events.filter(e => e.name === 'pnpm:skipped-optional-dependency')
  assert.deepEqual(events.map(e => e.package?.name).sort(), ['direct-opt', 'native-cpu', 'native-os'])
  for (const e of events) {
    assert.equal(e.reason, 'unsupported_platform')
    assert.equal(e.package.version, '1.0.0')
  }
  assertTree(s, result)
})

test('supportedArchitectures makes packages for other platforms installable', TIMEOUT, async (t) => {
  const s = await setup(t, PLATFORM_SPEC)
  const { linkVirtualStore } = addon()
  const result = await linkVirtualStore(s.project.lockfilePath, s.options({
    supportedArchitectures: { os: ['current', OTHER_OS], cpu: ['current', OTHER_CPU] }
  }))
  assert.deepEqual(result.skipped, [])
  assert.equal(result.added, 4)
  assertTree(s, result)
  assertRelativeLink(path.join(s.dir, 'node_modules', 'direct-opt'), s.project.pkgDir('direct-opt@1.0.0'), 'direct-opt')
})

test('include: devDependencies off leaves dev-only packages out', TIMEOUT, async (t) => {
  const spec = {
    packages: [{ name: 'a', version: '1.0.0' }, { name: 'd', version: '1.0.0', dependencies: { e: '1.0.0' } }, { name: 'e', version: '1.0.0' }],
    importer: { dependencies: { a: '1.0.0' }, devDependencies: { d: '1.0.0' } }
  }
  const s = await setup(t, spec)
  const { linkVirtualStore } = addon()
  const prod = await linkVirtualStore(s.project.lockfilePath, s.options({
    include: { dependencies: true, devDependencies: false, optionalDependencies: true }
  }))
  assert.equal(prod.added, 1)
  assert.ok(fs.existsSync(path.join(s.dir, 'node_modules', 'a')))
  assert.ok(!fs.existsSync(path.join(s.dir, 'node_modules', 'd')), 'no dev dependency link')
  assert.ok(!fs.existsSync(s.project.slotDir('d@1.0.0')) && !fs.existsSync(s.project.slotDir('e@1.0.0')), 'no dev-only slots')
  assert.deepEqual(s.registry.requests.map(r => r.path), [tarballPath('a', '1.0.0')])

  const tmp2 = path.join(s.tmp, 'dev-only')
  const p2 = makeProject(tmp2, spec)
  const dev = await linkVirtualStore(p2.lockfilePath, s.options({
    include: { dependencies: false, devDependencies: true, optionalDependencies: false }
  }))
  assert.equal(dev.added, 2)
  assert.ok(fs.existsSync(path.join(tmp2, 'node_modules', 'd')))
  assert.ok(!fs.existsSync(path.join(tmp2, 'node_modules', 'a')))
})

test('packageImportMethod copy: independent files, exec bit kept', TIMEOUT, async (t) => {
  const s = await setup(t, GRAPH)
  const { linkVirtualStore } = addon()
  const result = await linkVirtualStore(s.project.lockfilePath, s.options({ packageImportMethod: 'copy' }))
  assert.equal(result.importMethod, 'copy')
  assertTree(s, result)
  const a = s.project.packages.get('a@1.0.0')
  for (const [rel, { content, mode }] of Object.entries(a.files)) {
    const st = fs.statSync(path.join(s.project.pkgDir('a@1.0.0'), rel))
    assert.notEqual(st.ino, fs.statSync(casPath(s.storeDir, content, mode)).ino, `${rel} is a copy`)
  }
})

test('packageImportMethod hardlink: files share the store blob inode', TIMEOUT, async (t) => {
  const s = await setup(t, GRAPH)
  const { linkVirtualStore } = addon()
  const result = await linkVirtualStore(s.project.lockfilePath, s.options({ packageImportMethod: 'hardlink' }))
  assert.equal(result.importMethod, 'hardlink')
  assertTree(s, result) // checks inode equality when importMethod is hardlink
  const methods = s.events.filter(e => e.name === 'pnpm:package-import-method').map(e => e.method)
  assert.ok(methods.every(m => m === 'hardlink'), `package-import-method events: ${methods}`)
})

test('a custom virtualStoreDir holds the slots', TIMEOUT, async (t) => {
  const s = await setup(t, GRAPH)
  const vsd = path.join(s.dir, 'custom-vs')
  const { linkVirtualStore } = addon()
  const result = await linkVirtualStore(s.project.lockfilePath, s.options({ virtualStoreDir: vsd }))
  assert.equal(result.virtualStoreDir, vsd)
  assert.ok(!fs.existsSync(path.join(s.dir, 'node_modules', '.pnpm')), 'default virtual store not used')
  assertTree(s, result, { vsd })
  assertRelativeLink(path.join(s.dir, 'node_modules', 'a'), s.project.pkgDir('a@1.0.0', vsd), 'direct a')
  const mods = await requireFromProject(s.dir, ['a', 'plugin'])
  assert.deepEqual(mods.plugin.deps, { host: '2.0.0' })
})

test('long and uppercase slot names are shortened like pnpm', TIMEOUT, async (t) => {
  const long = 'a-package-with-a-name-long-enough-to-need-hashing'
  const spec = {
    packages: [
      { name: long, version: '1.0.0', dependencies: { UpperCase: '1.0.0' } },
      { name: 'UpperCase', version: '1.0.0' },
      { name: 'short', version: '1.0.0' }
    ],
    importer: { dependencies: { [long]: '1.0.0', short: '1.0.0' } }
  }
  const s = await setup(t, spec)
  const max = 40
  // Spelled out once so the rule itself is checked, not only the helper.
  const expectedLong = `${`${long}@1.0.0`.slice(0, max - 33)}_${crypto.createHash('sha256').update(`${long}@1.0.0`).digest('hex').slice(0, 32)}`
  assert.equal(depPathToFilename(`${long}@1.0.0`, max), expectedLong)
  const { linkVirtualStore } = addon()
  const result = await linkVirtualStore(s.project.lockfilePath, s.options({ virtualStoreDirMaxLength: max }))
  const vsd = s.project.virtualStoreDir
  assert.ok(fs.existsSync(path.join(vsd, expectedLong, 'node_modules', long, 'package.json')), `slot ${expectedLong}`)
  assert.ok(fs.existsSync(path.join(vsd, 'short@1.0.0')), 'short names are kept')
  assert.ok(!fs.existsSync(path.join(vsd, 'UpperCase@1.0.0')), 'uppercase names are hashed')
  assertTree(s, result, { maxLength: max })
  const mods = await requireFromProject(s.dir, [long])
  assert.deepEqual(mods[long].deps, { UpperCase: '1.0.0' })
})

test('the lockfile may be given as the directory that holds it', TIMEOUT, async (t) => {
  const s = await setup(t, GRAPH)
  const { linkVirtualStore } = addon()
  const opts = s.options()
  const result = await linkVirtualStore(s.dir, opts) // no `dir`: defaults to the lockfile's directory
  assert.equal(result.added, GRAPH_SIZE)
  assertTree(s, result)
  assert.ok(fs.existsSync(path.join(s.dir, 'node_modules', 'a')))
})

test('the lockfile may be given as an already-parsed object', TIMEOUT, async (t) => {
  let registry
  const tmp = tempDir(t, undefined, () => registry?.close())
  const dir = path.join(tmp, 'project')
  // Only used for its tarballs; the lockfile below is written by hand.
  const fixture = makeProject(dir, {
    packages: [{ name: 'a', version: '1.0.0', dependencies: { b: '1.0.0' } }, { name: 'b', version: '1.0.0' }],
    importer: { dependencies: { a: '1.0.0' } },
    write: false
  })
  fs.mkdirSync(dir, { recursive: true })
  registry = await startRegistry({ tarballs: fixture.tarballs })
  const lockfile = {
    lockfileVersion: '9.0',
    settings: { autoInstallPeers: true, excludeLinksFromLockfile: false },
    importers: {
      '.': { dependencies: { a: { specifier: '^1.0.0', version: '1.0.0' } } }
    },
    packages: {
      'a@1.0.0': { resolution: { integrity: integrityOf(fixture.packages.get('a@1.0.0').tarball) } },
      'b@1.0.0': { resolution: { integrity: integrityOf(fixture.packages.get('b@1.0.0').tarball) } }
    },
    snapshots: {
      'a@1.0.0': { dependencies: { b: '1.0.0' } },
      'b@1.0.0': {}
    }
  }
  const { linkVirtualStore } = addon()
  const result = await linkVirtualStore(lockfile, {
    dir,
    storeDir: path.join(tmp, 'store'),
    registries: { default: registry.url },
    ...FAST_RETRIES
  })
  assert.equal(result.added, 2)
  assertRelativeLink(path.join(dir, 'node_modules', 'a'), fixture.pkgDir('a@1.0.0'), 'direct a')
  assertRelativeLink(path.join(fixture.slotDir('a@1.0.0'), 'node_modules', 'b'), fixture.pkgDir('b@1.0.0'), 'a -> b')
  const mods = await requireFromProject(dir, ['a'])
  assert.deepEqual(mods.a.deps, { b: '1.0.0' })
})

test('a directory without pnpm-lock.yaml rejects with ERR_PNPM_NO_LOCKFILE', TIMEOUT, async (t) => {
  const tmp = tempDir(t)
  const { linkVirtualStore } = addon()
  await rejectsWith(linkVirtualStore(tmp, { storeDir: path.join(tmp, 'store'), registries: { default: 'http://127.0.0.1:9/' } }), 'ERR_PNPM_NO_LOCKFILE')
  await rejectsWith(linkVirtualStore(path.join(tmp, 'pnpm-lock.yaml'), { storeDir: path.join(tmp, 'store'), registries: { default: 'http://127.0.0.1:9/' } }), 'ERR_PNPM_NO_LOCKFILE')
})

test('scoped registries and auth headers go to the right hosts', TIMEOUT, async (t) => {
  let main, scope
  const tmp = tempDir(t, undefined, () => Promise.all([main?.close(), scope?.close()]))
  const dir = path.join(tmp, 'project')
  const project = makeProject(dir, {
    packages: [{ name: 'a', version: '1.0.0', dependencies: { '@scope/c': '2.0.0' } }, { name: '@scope/c', version: '2.0.0' }],
    importer: { dependencies: { a: '1.0.0' } }
  })
  const scoped = new Map([...project.tarballs].filter(([p]) => p.startsWith('/@scope/')))
  const plain = new Map([...project.tarballs].filter(([p]) => !p.startsWith('/@scope/')))
  main = await startRegistry({ tarballs: plain, requireAuth: 'Bearer main-token' })
  scope = await startRegistry({ tarballs: scoped })
  const { linkVirtualStore } = addon()
  const result = await linkVirtualStore(project.lockfilePath, {
    storeDir: path.join(tmp, 'store'),
    registries: { default: main.url, '@scope': scope.url },
    authHeaderByUri: { [main.nerfDart]: 'Bearer main-token' },
    ...FAST_RETRIES
  })
  assert.equal(result.added, 2)
  assert.deepEqual(main.requests.map(r => r.path), [tarballPath('a', '1.0.0')])
  assert.deepEqual(scope.requests.map(r => r.path), [tarballPath('@scope/c', '2.0.0')])
  assert.equal(main.requests[0].headers.authorization, 'Bearer main-token')
  assert.equal(scope.requests[0].headers.authorization, undefined, 'the token is not sent to another registry')
})

test('a 401 rejects with ERR_PNPM_FETCH_401 without retrying', TIMEOUT, async (t) => {
  const s = await setup(t, { packages: [{ name: 'a', version: '1.0.0' }], importer: { dependencies: { a: '1.0.0' } } }, { requireAuth: 'Bearer right' })
  const { linkVirtualStore } = addon()
  await rejectsWith(linkVirtualStore(s.project.lockfilePath, s.options({ authHeaderByUri: { [s.registry.nerfDart]: 'Bearer wrong' } })), 'ERR_PNPM_FETCH_401')
  assert.equal(s.registry.requests.length, 1)
  assert.equal(s.registry.requests[0].headers.authorization, 'Bearer wrong')
})

test('two concurrent installs sharing one store both complete', TIMEOUT, async (t) => {
  const s = await setup(t, GRAPH)
  const dir2 = path.join(s.tmp, 'project2')
  const p2 = makeProject(dir2, GRAPH)
  const { linkVirtualStore } = addon()
  const [r1, r2] = await Promise.allSettled([
    linkVirtualStore(s.project.lockfilePath, s.options()),
    linkVirtualStore(p2.lockfilePath, s.options())
  ])
  assert.equal(r1.status, 'fulfilled', r1.reason?.stack)
  assert.equal(r2.status, 'fulfilled', r2.reason?.stack)
  assertTree(s, r1.value)
  assertTree({ ...s, project: p2 }, r2.value)
  const index = await readStoreIndex(s.storeDir)
  for (const p of s.project.packages.values()) assert.ok(index.has(storeIndexKey(p.integrity, p.name, p.version)))
})

test('a blob already in the store is not replaced when another package brings the same file', TIMEOUT, async (t) => {
  // Identical files across packages (licenses, configs) are common. Rewriting the blob
  // would leave every project linked earlier holding an inode the store no longer has.
  const LICENSE = 'MIT License\n'
  const spec = {
    packages: [{ name: 'a', version: '1.0.0', files: { LICENSE } }, { name: 'x', version: '1.0.0', files: { LICENSE } }],
    importer: { dependencies: { a: '1.0.0' } }
  }
  const s = await setup(t, spec)
  const { linkVirtualStore } = addon()
  await linkVirtualStore(s.project.lockfilePath, s.options({ packageImportMethod: 'hardlink' }))
  const blob = casPath(s.storeDir, Buffer.from(LICENSE))
  const first = path.join(s.project.pkgDir('a@1.0.0'), 'LICENSE')
  assert.equal(fs.statSync(first).ino, fs.statSync(blob).ino)

  const p2 = makeProject(path.join(s.tmp, 'project2'), { ...spec, importer: { dependencies: { x: '1.0.0' } } })
  await linkVirtualStore(p2.lockfilePath, s.options({ packageImportMethod: 'hardlink' }))
  assert.equal(fs.statSync(path.join(p2.pkgDir('x@1.0.0'), 'LICENSE')).ino, fs.statSync(blob).ino, 'second project linked to the blob')
  assert.equal(fs.statSync(first).ino, fs.statSync(blob).ino, 'first project still linked to the same blob')
})

test('an optional package whose download fails does not fail the install', TIMEOUT, async (t) => {
  const spec = {
    packages: [
      { name: 'a', version: '1.0.0', optionalDependencies: { gone: '1.0.0' } },
      { name: 'gone', version: '1.0.0', serve: false }
    ],
    importer: { dependencies: { a: '1.0.0' }, optionalDependencies: { gone: '1.0.0' } }
  }
  const s = await setup(t, spec)
  const { linkVirtualStore } = addon()
  const result = await linkVirtualStore(s.project.lockfilePath, s.options())
  assert.deepEqual(result.skipped, ['gone@1.0.0'])
  assert.ok(fs.existsSync(path.join(s.project.pkgDir('a@1.0.0'), 'package.json')))
  // No link to the package that failed: not from the slot that depends on it, not from the
  // importer, not from the hoisting directory; every other link stays.
  const modules = path.join(s.dir, 'node_modules')
  for (const link of [path.join(s.project.slotDir('a@1.0.0'), 'node_modules', 'gone'), path.join(modules, 'gone'), path.join(modules, '.pnpm', 'node_modules', 'gone')]) {
    assert.throws(() => fs.lstatSync(link), { code: 'ENOENT' }, link)
  }
  assert.ok(fs.existsSync(path.join(modules, 'a', 'package.json')))
})

test('the process exits by itself after calls that resolve and reject', TIMEOUT, async (t) => {
  // Leaked threadsafe functions or sockets would keep the child alive until the timeout.
  const tmp = tempDir(t)
  const script = `
    import path from 'node:path'
    import { createRequire } from 'node:module'
    import { startRegistry } from ${JSON.stringify(pathToFileURL(path.join(HERE, 'helpers', 'registry.mjs')).href)}
    import { makeProject } from ${JSON.stringify(pathToFileURL(path.join(HERE, 'helpers', 'fixture.mjs')).href)}
    const require = createRequire(${JSON.stringify(pathToFileURL(path.join(ROOT, 'package.json')).href)})
    const { linkVirtualStore } = require('./index.js')
    const tmp = process.env.TEST_TMP
    const project = makeProject(path.join(tmp, 'project'), JSON.parse(process.env.TEST_SPEC))
    const registry = await startRegistry({ tarballs: project.tarballs })
    let events = 0
    const controller = new AbortController()
    const result = await linkVirtualStore(project.lockfilePath, {
      storeDir: path.join(tmp, 'store'), registries: { default: registry.url },
      onProgress: () => { events++ }, signal: controller.signal
    })
    const code = await linkVirtualStore(path.join(tmp, 'nowhere'), { onProgress: () => { events++ }, signal: controller.signal })
      .then(() => 'resolved', e => e.code)
    await registry.close()
    console.log(JSON.stringify({ added: result.added, events, code }))
  `
  const spec = { packages: [{ name: 'a', version: '1.0.0', dependencies: { b: '1.0.0' } }, { name: 'b', version: '1.0.0' }], importer: { dependencies: { a: '1.0.0' } } }
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, TEST_TMP: tmp, TEST_SPEC: JSON.stringify(spec) },
    encoding: 'utf8',
    timeout: 30_000
  })
  assert.equal(r.error?.code, undefined, `child did not exit by itself: ${r.error?.message}\n${r.stderr}`)
  assert.equal(r.status, 0, r.stderr)
  assert.equal(r.stderr, '', 'nothing printed on stderr (napi-rs prints leaked references there)')
  const out = JSON.parse(r.stdout.trim().split('\n').pop())
  assert.equal(out.added, 2)
  assert.ok(out.events > 0)
  assert.equal(out.code, 'ERR_PNPM_NO_LOCKFILE')
})

// Registry settings from npm config, checked in a child process with a clean environment
// (no npm_config_* variables, its own HOME) so the developer's config cannot leak in.
async function installInCleanEnv (t, { npmrc, env = () => ({}), home } = {}) {
  const spec = { packages: [{ name: 'a', version: '1.0.0' }], importer: { dependencies: { a: '1.0.0' } } }
  const s = await setup(t, spec)
  if (npmrc) fs.writeFileSync(path.join(s.dir, '.npmrc'), npmrc(s.registry))
  const homeDir = path.join(s.tmp, 'home')
  fs.mkdirSync(homeDir, { recursive: true })
  if (home) fs.writeFileSync(path.join(homeDir, '.npmrc'), home(s.registry))
  const script = `
    const { linkVirtualStore } = require(${JSON.stringify(path.join(ROOT, 'index.js'))})
    linkVirtualStore(process.env.TEST_LOCKFILE, { storeDir: process.env.TEST_STORE, fetchRetryMintimeout: 10, fetchRetryMaxtimeout: 100 })
      .then(r => console.log(JSON.stringify({ ok: true, added: r.added })), e => console.log(JSON.stringify({ ok: false, code: e.code, message: e.message })))
  `
  const r = await run(process.execPath, ['-e', script], {
    cwd: s.dir,
    env: cleanEnv(homeDir, { TEST_LOCKFILE: s.project.lockfilePath, TEST_STORE: s.storeDir, ...env(s.registry) })
  })
  assert.equal(r.status, 0, r.stderr)
  return { s, out: JSON.parse(r.stdout.trim().split('\n').pop()) }
}

test('without `registries`, the registry comes from npm_config_registry', TIMEOUT, async (t) => {
  const { s, out } = await installInCleanEnv(t, { env: (reg) => ({ npm_config_registry: reg.url }) })
  assert.deepEqual(out, { ok: true, added: 1 })
  assert.equal(s.registry.requests.length, 1)
})

test('without `registries`, the registry comes from the project .npmrc', TIMEOUT, async (t) => {
  const { s, out } = await installInCleanEnv(t, { env: () => ({}), npmrc: (reg) => `registry=${reg.url}\n` })
  assert.deepEqual(out, { ok: true, added: 1 })
  assert.equal(s.registry.requests.length, 1)
})

test('without `registries`, the registry comes from ~/.npmrc', TIMEOUT, async (t) => {
  const { s, out } = await installInCleanEnv(t, { env: () => ({}), home: (reg) => `registry=${reg.url}\n` })
  assert.deepEqual(out, { ok: true, added: 1 })
  assert.equal(s.registry.requests.length, 1)
})

test('with no registry configured anywhere the call rejects with ERR_PNPM_NO_REGISTRY', TIMEOUT, async (t) => {
  const { s, out } = await installInCleanEnv(t, { env: () => ({}) })
  assert.equal(out.ok, false)
  assert.equal(out.code, 'ERR_PNPM_NO_REGISTRY', out.message)
  assert.equal(s.registry.requests.length, 0)
})

// Tarballs are untrusted input: whatever the outcome, nothing may land outside the
// package directory, and only regular files may be created.
test('hostile tarball entries never escape the package directory', TIMEOUT, async (t) => {
  const cases = [
    { label: 'dot-dot path', raw: (tmp, tag) => [{ name: `package/${'../'.repeat(6)}escape-${tag}.txt`, content: 'x' }] },
    { label: 'dot-dot inside the package', raw: (tmp, tag) => [{ name: `package/sub/../../escape-${tag}.txt`, content: 'x' }] },
    { label: 'absolute path', raw: (tmp, tag) => [{ name: path.join(tmp, `escape-${tag}.txt`), content: 'x' }] },
    {
      label: 'symlink then a write through it',
      raw: (tmp, tag) => [
        { name: 'package/link-out', type: '2', linkname: tmp },
        { name: `package/link-out/escape-${tag}.txt`, content: 'x' }
      ]
    },
    { label: 'hardlink to an outside file', raw: (tmp) => [{ name: 'package/hard', type: '1', linkname: path.join(tmp, 'secret.txt') }] },
    { label: 'character device', raw: () => [{ name: 'package/dev', type: '3', devmajor: 1, devminor: 3 }] },
    { label: 'fifo', raw: () => [{ name: 'package/fifo', type: '6' }] }
  ]
  for (const c of cases) {
    await t.test(c.label, async (t) => {
      let registry
      const tmp = tempDir(t, undefined, () => registry?.close())
      const tag = crypto.randomBytes(6).toString('hex')
      fs.writeFileSync(path.join(tmp, 'secret.txt'), 'secret')
      const files = {
        'package.json': JSON.stringify({ name: 'evil', version: '1.0.0' }),
        'index.js': 'module.exports = 1\n'
      }
      const tarball = makeTarball(files, { raw: c.raw(tmp, tag) })
      const project = makeProject(path.join(tmp, 'project'), {
        packages: [{ name: 'evil', version: '1.0.0', tarball }],
        importer: { dependencies: { evil: '1.0.0' } }
      })
      registry = await startRegistry({ tarballs: project.tarballs })
      const { linkVirtualStore } = addon()
      let outcome
      try {
        await linkVirtualStore(project.lockfilePath, { storeDir: path.join(tmp, 'store'), registries: { default: registry.url }, ...FAST_RETRIES })
        outcome = 'resolved'
      } catch (err) {
        outcome = err.code
        assert.match(String(err.code), /^ERR_PNPM_/, `rejection code: ${err.code} ${err.message}`)
      }
      t.diagnostic(`outcome: ${outcome}`)
      const pkgDir = project.pkgDir('evil@1.0.0')
      // Inside the package dir it is a plain file (e.g. link-out/ became a real directory).
      const escaped = findNamed([tmp, os.tmpdir(), '/'], `escape-${tag}.txt`).filter(p => !p.startsWith(pkgDir + path.sep))
      assert.deepEqual(escaped, [], 'no file escaped')
      for (const name of ['link-out', 'hard', 'dev', 'fifo']) {
        let st
        try { st = fs.lstatSync(path.join(pkgDir, name)) } catch { continue }
        assert.ok(st.isFile() || st.isDirectory(), `${name} is ${st.isSymbolicLink() ? 'a symlink' : 'a special file'}`)
        if (name === 'hard') assert.notEqual(st.ino, fs.statSync(path.join(tmp, 'secret.txt')).ino, 'no hardlink to an outside file')
      }
      assert.equal(fs.readFileSync(path.join(tmp, 'secret.txt'), 'utf8'), 'secret')
      if (outcome === 'resolved') assert.ok(fs.existsSync(path.join(pkgDir, 'index.js')), 'regular files installed')
    })
  }
})

/** Paths named `name` directly in the given dirs or anywhere under the first one. */
function findNamed (dirs, name) {
  const found = []
  for (const d of dirs.slice(1)) if (fs.existsSync(path.join(d, name))) found.push(path.join(d, name))
  const walk = (d) => {
    let ents
    try { ents = fs.readdirSync(d, { withFileTypes: true }) } catch { return }
    for (const e of ents) {
      const p = path.join(d, e.name)
      if (e.name === name) found.push(p)
      if (e.isDirectory()) walk(p)
    }
  }
  walk(dirs[0])
  return [...new Set(found)]
}
