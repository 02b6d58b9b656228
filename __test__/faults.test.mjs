// Faults as JS sees them: a registry on 127.0.0.1 that misbehaves, hostile tarballs and
// broken lockfiles. Checks the rejected promise (`code`, `hint`, message), the
// `pnpm:request-retry` events, and that a failed install leaves no row in the store and a
// later install against a healthy registry succeeds.
// Run: node --test --test-concurrency=1 __test__/faults.test.mjs
import assert from 'node:assert/strict'
import { once } from 'node:events'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { test } from 'node:test'
import zlib from 'node:zlib'
import { makeProject, readStoreIndex, storeIndexKey, tarballPath, tempDir } from './helpers/fixture.mjs'
import { integrityOf, makeTar, makeTarball } from './helpers/tarball.mjs'
import { startRegistry } from './helpers/registry.mjs'

const require = createRequire(import.meta.url)
const { linkVirtualStore } = require('../index.js')

const TIMEOUT = { timeout: 60_000 } // a hang guard, not a speed requirement

// `ok` is always served; `flaky` is the package the registry misbehaves for.
const FLAKY = tarballPath('flaky', '1.0.0')
const SPEC = {
  packages: [
    { name: 'ok', version: '1.0.0' },
    { name: 'flaky', version: '1.0.0', files: { 'data.bin': Buffer.alloc(100_000, 7) } }
  ],
  importer: { dependencies: { ok: '1.0.0', flaky: '1.0.0' } }
}

/** A project from `spec`, its registry (with `registryOptions`), a store, an event log. */
async function faulty (t, registryOptions = {}, spec = SPEC) {
  const servers = []
  const tmp = tempDir(t, undefined, () => Promise.all(servers.map(s => s.close())))
  const project = makeProject(path.join(tmp, 'project'), spec)
  const registry = await startRegistry({ tarballs: project.tarballs, ...registryOptions })
  servers.push(registry)
  const storeDir = path.join(tmp, 'store')
  const events = []
  const install = (extra = {}) => linkVirtualStore(project.lockfilePath, {
    storeDir,
    registries: { default: registry.url },
    fetchRetryMintimeout: 10,
    fetchRetryMaxtimeout: 100,
    onProgress: (e) => events.push(e),
    ...extra
  })
  const retries = () => events.filter(e => e.name === 'pnpm:request-retry')
  return { tmp, project, registry, servers, storeDir, events, retries, install }
}

async function rejection (promise) {
  try {
    await promise
  } catch (err) {
    assert.ok(err instanceof Error)
    assert.equal(typeof err.hint, 'string')
    return err
  }
  assert.fail('the install succeeded')
}

/** No row for `flaky`, nothing of it in node_modules; a healthy registry then completes it. */
async function recovers (s, healthy) {
  const flaky = s.project.packages.get('flaky@1.0.0')
  const index = await readStoreIndex(s.storeDir)
  assert.ok(!index.has(storeIndexKey(flaky.integrity, 'flaky', '1.0.0')), 'no row for the failed package')
  assert.ok(!fs.existsSync(path.join(s.project.pkgDir('flaky@1.0.0'), 'package.json')))
  const leftovers = [...walk(s.storeDir)].filter(f => f.endsWith('.tmp'))
  assert.deepEqual(leftovers, [], 'no temporary file in the store')
  healthy()
  await s.install()
  const data = fs.readFileSync(path.join(s.project.pkgDir('flaky@1.0.0'), 'data.bin'))
  assert.equal(data.length, 100_000)
  assert.ok((await readStoreIndex(s.storeDir)).has(storeIndexKey(flaky.integrity, 'flaky', '1.0.0')))
}

function * walk (dir) {
  let entries
  try { entries = fs.readdirSync(dir, { withFileTypes: true }) } catch { return }
  for (const e of entries) {
    const p = path.join(dir, e.name)
    if (e.isDirectory()) yield * walk(p)
    else yield p
  }
}

test('a 503 that never ends: retries with events, then ERR_PNPM_FETCH_503', TIMEOUT, async (t) => {
  const s = await faulty(t, { faults: { [FLAKY]: [503, 503, 503] } })
  const err = await rejection(s.install())
  assert.equal(err.code, 'ERR_PNPM_FETCH_503')
  assert.ok(err.message.includes(FLAKY), err.message)
  assert.ok(err.hint.length > 0)
  assert.deepEqual(s.registry.requestsTo(FLAKY).map(r => r.status), [503, 503, 503])
  assert.deepEqual(s.retries().map(e => [e.attempt, e.maxRetries, e.error.httpStatusCode]), [[1, 2, 503], [2, 2, 503]])
  await recovers(s, () => s.registry.faults.delete(FLAKY))
})

test('a connection reset mid-body is retried, with ECONNRESET in the event', TIMEOUT, async (t) => {
  const s = await faulty(t, { faults: { [FLAKY]: ['reset-mid-body'] } })
  const result = await s.install()
  assert.equal(result.added, 2)
  const [retry, ...more] = s.retries()
  assert.equal(more.length, 0)
  assert.equal(retry.error.code, 'ECONNRESET')
  assert.equal(retry.error.httpStatusCode, undefined)
})

test('a body cut short of its Content-Length: ERR_PNPM_TARBALL_FETCH_FAILED after the retries', TIMEOUT, async (t) => {
  const s = await faulty(t, { faults: { [FLAKY]: ['cut-short', 'cut-short', 'cut-short'] } })
  const err = await rejection(s.install())
  assert.equal(err.code, 'ERR_PNPM_TARBALL_FETCH_FAILED')
  assert.match(err.message, /3 attempt\(s\)/)
  assert.match(err.message, /of \d+ bytes/)
  assert.equal(s.retries().length, 2)
  await recovers(s, () => s.registry.faults.delete(FLAKY))
})

test('a body that stalls is cut off by fetchTimeout', TIMEOUT, async (t) => {
  const stall = { [FLAKY]: 10 } // the tarball is a few hundred bytes
  const s = await faulty(t, { stall })
  const err = await rejection(s.install({ fetchTimeout: 200 }))
  assert.equal(err.code, 'ERR_PNPM_TARBALL_FETCH_FAILED')
  assert.match(err.message, /fetchTimeout/)
  assert.deepEqual(s.retries().map(e => e.error.code), ['ETIMEDOUT', 'ETIMEDOUT'])
  await recovers(s, () => delete stall[FLAKY])
})

test('a server that never answers is cut off by fetchTimeout', TIMEOUT, async (t) => {
  let hold = true
  const s = await faulty(t, { delay: (req) => (hold && req.path === FLAKY ? Infinity : 0) })
  const err = await rejection(s.install({ fetchTimeout: 200 }))
  assert.equal(err.code, 'ERR_PNPM_TARBALL_FETCH_FAILED')
  assert.equal(s.registry.requestsTo(FLAKY).length, 3)
  await recovers(s, () => { hold = false })
})

test('a slow body that keeps coming succeeds', TIMEOUT, async (t) => {
  const s = await faulty(t, { faults: { [FLAKY]: [{ trickle: 2048 }] } })
  const result = await s.install({ fetchTimeout: 5000 })
  assert.equal(result.added, 2)
  assert.equal(s.retries().length, 0)
  assert.equal(fs.readFileSync(path.join(s.project.pkgDir('flaky@1.0.0'), 'data.bin')).length, 100_000)
})

test('403 is final like 401 and 404; 410 is retried as pnpm does', TIMEOUT, async (t) => {
  for (const [status, requests] of [[403, 1], [410, 3]]) {
    const s = await faulty(t, { faults: { [FLAKY]: [status, status, status] } })
    const err = await rejection(s.install())
    assert.equal(err.code, `ERR_PNPM_FETCH_${status}`)
    assert.equal(s.registry.requestsTo(FLAKY).length, requests)
    assert.equal(s.retries().length, requests - 1)
  }
})

test('the Authorization header does not follow a redirect to another host', TIMEOUT, async (t) => {
  const s = await faulty(t)
  const mirror = await startRegistry({ tarballs: { '/mirror/flaky.tgz': s.project.tarballs.get(FLAKY) } })
  s.servers.push(mirror)
  s.registry.faults.set(FLAKY, [{ redirect: `${mirror.url}mirror/flaky.tgz` }])
  const result = await s.install({ authHeaderByUri: { [s.registry.nerfDart]: 'Bearer secret' } })
  assert.equal(result.added, 2)
  assert.equal(s.registry.requestsTo(FLAKY)[0].headers.authorization, 'Bearer secret')
  assert.deepEqual(mirror.requests.map(r => [r.path, r.headers.authorization]), [['/mirror/flaky.tgz', undefined]])
})

test('a body that fails its integrity is fetched again, then rejects with ERR_PNPM_TARBALL_INTEGRITY', TIMEOUT, async (t) => {
  const s = await faulty(t)
  const good = s.project.tarballs.get(FLAKY)
  s.registry.tarballs.set(FLAKY, makeTarball({ 'package.json': '{"name":"flaky","version":"1.0.0"}' }))
  const err = await rejection(s.install())
  assert.equal(err.code, 'ERR_PNPM_TARBALL_INTEGRITY')
  assert.equal(s.registry.requestsTo(FLAKY).length, 3)
  assert.deepEqual(s.retries().map(e => e.error.code), ['ERR_PNPM_TARBALL_INTEGRITY', 'ERR_PNPM_TARBALL_INTEGRITY'])
  await recovers(s, () => s.registry.tarballs.set(FLAKY, good))
})

/** `head`, then `mib` MiB of zeros, gzipped as they are written (~1000×, as a bomb is). */
async function gzipWithZeros (head, mib) {
  const gz = zlib.createGzip({ level: 9 })
  const chunks = []
  gz.on('data', (c) => chunks.push(c))
  const ended = once(gz, 'end')
  gz.write(head)
  const zeros = Buffer.alloc(1 << 20)
  for (let i = 0; i < mib; i++) if (!gz.write(zeros)) await once(gz, 'drain')
  gz.end()
  await ended
  return Buffer.concat(chunks)
}

/** A project whose only package `evil@1.0.0` is `tarball` (its integrity in the lockfile). */
function hostileSpec (tarball) {
  return { packages: [{ name: 'evil', version: '1.0.0', tarball }], importer: { dependencies: { evil: '1.0.0' } } }
}

test('hostile tarballs reject with a code and a hint, and record nothing', TIMEOUT, async (t) => {
  const manifest = { 'package.json': '{"name":"evil","version":"1.0.0"}' }
  const cases = [
    ['a character device', makeTarball(manifest, { raw: [{ name: 'package/tty', type: '3', devmajor: 5, devminor: 0 }] }), 'ERR_PNPM_TARBALL_EXTRACT'],
    ['a file that is also a directory', makeTarball({ ...manifest, lib: 'x', 'lib/a.js': 'y' }), 'ERR_PNPM_TARBALL_EXTRACT'],
    ['a truncated gzip', makeTarball(manifest).subarray(0, 40), 'ERR_PNPM_TARBALL_EXTRACT'],
    ['a gzip bomb', await gzipWithZeros(makeTar(manifest), 300), 'ERR_PNPM_TARBALL_TOO_LARGE']
  ]
  for (const [label, tarball, code] of cases) {
    const s = await faulty(t, {}, hostileSpec(tarball))
    const err = await rejection(s.install())
    assert.equal(err.code, code, `${label}: ${err.message}`)
    assert.ok(err.message.includes('evil@1.0.0'), `${label}: ${err.message}`)
    assert.ok(err.hint.length > 0, label)
    const index = await readStoreIndex(s.storeDir)
    assert.ok(!index.has(storeIndexKey(integrityOf(tarball), 'evil', '1.0.0')), label)
    assert.ok(!fs.existsSync(s.project.pkgDir('evil@1.0.0')), label)
  }
})

test('broken lockfiles reject naming the key at fault, with nothing written', TIMEOUT, async (t) => {
  const cases = [
    [{ ...hostileSpec(makeTarball({})), packages: [{ name: 'evil', version: '1.0.0', integrity: 'sha512-!!!' }] }, 'ERR_PNPM_INVALID_INTEGRITY', 'evil@1.0.0'],
    [{ packages: [{ name: 'x', version: '1.0.0' }], importer: { dependencies: { '../../etc': 'x@1.0.0' } } }, 'ERR_PNPM_INVALID_DEPENDENCY_NAME', '../../etc']
  ]
  for (const [spec, code, culprit] of cases) {
    const s = await faulty(t, {}, spec)
    const err = await rejection(s.install())
    assert.equal(err.code, code, err.message)
    assert.ok(err.message.includes(culprit), err.message)
    assert.deepEqual(fs.readdirSync(path.dirname(s.project.lockfilePath)).sort(), ['package.json', 'pnpm-lock.yaml'])
    assert.ok(!fs.existsSync(s.storeDir), 'no store')
    assert.equal(s.registry.requests.length, 0)
  }
})
