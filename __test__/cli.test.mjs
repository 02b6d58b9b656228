// Tests of cli/pacquet-native.js: its pure parts in-process, and the command end to end
// against a loopback registry. The CLI always runs with a clean environment (no
// npm_config_* variables, a HOME of its own) so the developer's config cannot leak in.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { casPath, cleanEnv, makeProject, run, tarballPath, tempDir } from './helpers/fixture.mjs'
import { startRegistry } from './helpers/registry.mjs'

const require = createRequire(import.meta.url)
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const CLI = path.join(ROOT, 'cli', 'pacquet-native.js')
const { version: VERSION } = require('../package.json')
const cliModule = require('../cli/pacquet-native.js') // requiring does not run it

const TIMEOUT = { timeout: 60_000 } // a hang guard, not a speed requirement

const SPEC = {
  packages: [
    { name: 'a', version: '1.0.0', dependencies: { b: '1.0.0' }, bin: { 'a-cli': 'bin/cli.js' } },
    { name: 'b', version: '1.0.0' },
    { name: '@scope/c', version: '2.0.0' },
    { name: 'd', version: '1.0.0' }
  ],
  importer: { dependencies: { a: '1.0.0', '@scope/c': '2.0.0' }, devDependencies: { d: '1.0.0' } }
}
const SPEC_SIZE = 4

async function setup (t, spec = SPEC, registryOptions = {}) {
  let registry
  const tmp = tempDir(t, 'pacquet-cli-', () => registry?.close())
  const dir = path.join(tmp, 'project')
  const storeDir = path.join(tmp, 'store')
  const project = makeProject(dir, spec)
  registry = await startRegistry({ tarballs: project.tarballs, ...registryOptions })
  const home = path.join(tmp, 'home')
  const cli = (args, { env = {}, cwd = tmp, ...rest } = {}) =>
    run(process.execPath, [CLI, ...args], { cwd, env: cleanEnv(home, env), ...rest })
  return { tmp, dir, storeDir, project, registry, home, cli }
}

/** Small retry delays through pnpm-workspace.yaml, so a test that retries never waits 10 s. */
function fastRetries (dir, extra = '') {
  fs.writeFileSync(path.join(dir, 'pnpm-workspace.yaml'), `fetchRetryMintimeout: 10\nfetchRetryMaxtimeout: 100\n${extra}`)
}

function onPath (cmd) {
  return (process.env.PATH || '').split(path.delimiter).some(d => d && fs.existsSync(path.join(d, cmd)))
}

function assertInstalled (dir, names) {
  for (const name of names) {
    const link = path.join(dir, 'node_modules', name)
    assert.ok(fs.lstatSync(link).isSymbolicLink(), `${link} is a symlink`)
    assert.ok(fs.existsSync(path.join(link, 'package.json')), `${name} resolves`)
  }
}

// ---------------------------------------------------------------------------------------
// Without the addon

test('--version prints the package version', TIMEOUT, async (t) => {
  const tmp = tempDir(t)
  for (const flag of ['--version', '-v']) {
    const r = await run(process.execPath, [CLI, flag], { env: cleanEnv(tmp) })
    assert.equal(r.status, 0, r.stderr)
    assert.equal(r.stdout, `${VERSION}\n`)
  }
})

test('--help prints the usage', TIMEOUT, async (t) => {
  const tmp = tempDir(t)
  const r = await run(process.execPath, [CLI, '--help'], { env: cleanEnv(tmp) })
  assert.equal(r.status, 0)
  assert.match(r.stdout, /Usage: pacquet-native install/)
  for (const flag of ['--dir', '--store-dir', '--registry', '--prod', '--dev', '--import-method', '--offline', '--reporter']) {
    assert.ok(r.stdout.includes(flag), `help mentions ${flag}`)
  }
})

test('the CLI file is an executable node script', () => {
  const text = fs.readFileSync(CLI, 'utf8')
  assert.ok(text.startsWith('#!/usr/bin/env node\n'))
  if (process.platform !== 'win32') assert.ok(fs.statSync(CLI).mode & 0o111, 'executable bit')
})

test('no command prints the usage and exits 1', TIMEOUT, async (t) => {
  const tmp = tempDir(t)
  const r = await run(process.execPath, [CLI], { env: cleanEnv(tmp) })
  assert.equal(r.status, 1)
  assert.match(r.stderr, /Usage: pacquet-native install/)
})

test('an unknown option or command exits 1 with a pnpm-style error', TIMEOUT, async (t) => {
  const tmp = tempDir(t)
  const bad = await run(process.execPath, [CLI, 'install', '--frobnicate'], { env: cleanEnv(tmp) })
  assert.equal(bad.status, 1)
  assert.match(bad.stderr, /^ ERR_PNPM_UNKNOWN_OPTIONS  Unknown option: '--frobnicate'/m)
  const cmd = await run(process.execPath, [CLI, 'add', 'lodash'], { env: cleanEnv(tmp) })
  assert.equal(cmd.status, 1)
  assert.match(cmd.stderr, /^ ERR_PACQUET_UNKNOWN_COMMAND  Unknown command .add./m)
  const method = await run(process.execPath, [CLI, 'install', '--import-method', 'teleport'], { env: cleanEnv(tmp) })
  assert.equal(method.status, 1)
  assert.match(method.stderr, /Unknown import method 'teleport'/)
})

test('a project without pnpm-lock.yaml exits 1 with ERR_PNPM_NO_LOCKFILE', TIMEOUT, async (t) => {
  const tmp = tempDir(t)
  const r = await run(process.execPath, [CLI, 'install', '--dir', tmp, '--registry', 'http://127.0.0.1:9/'], { env: cleanEnv(tmp) })
  assert.equal(r.status, 1)
  assert.match(r.stderr, /^ ERR_PNPM_NO_LOCKFILE  /m)
  assert.ok(!fs.existsSync(path.join(tmp, 'node_modules')))
})

test('parseYaml reads the pnpm-workspace.yaml subset', () => {
  const doc = cliModule.parseYaml([
    '# settings',
    'packages:',
    "  - 'packages/*'",
    '  - apps/**   # a comment',
    'storeDir: ../store # relative',
    'virtualStoreDir: "node_modules/.vs"',
    'packageImportMethod: copy',
    'networkConcurrency: 8',
    'verifyStoreIntegrity: false',
    'supportedArchitectures:',
    '  os:',
    '    - current',
    '    - darwin',
    "  cpu: [x64, 'arm64']",
    '  libc:',
    '  - glibc',
    'overrides:',
    "  'foo@<2': ^2.0.0",
    'catalog:',
    '  react: ^18.2.0',
    'flow: {a: [1, 2], "b c": "d # e"}',
    "quote: 'it''s'",
    'list:',
    '  - name: x',
    '    v: 1',
    '  - name: y',
    ''
  ].join('\n'))
  assert.deepEqual(doc, {
    packages: ['packages/*', 'apps/**'],
    storeDir: '../store',
    virtualStoreDir: 'node_modules/.vs',
    packageImportMethod: 'copy',
    networkConcurrency: 8,
    verifyStoreIntegrity: false,
    supportedArchitectures: { os: ['current', 'darwin'], cpu: ['x64', 'arm64'], libc: ['glibc'] },
    overrides: { 'foo@<2': '^2.0.0' },
    catalog: { react: '^18.2.0' },
    flow: { a: [1, 2], 'b c': 'd # e' },
    quote: "it's",
    list: [{ name: 'x', v: 1 }, { name: 'y' }]
  })
  assert.throws(() => cliModule.parseYaml('a: [1, 2\n'), /expected/)
})

test('readWorkspaceSettings keeps the known keys and survives unparsable files', (t) => {
  const tmp = tempDir(t)
  fs.writeFileSync(path.join(tmp, 'pnpm-workspace.yaml'), 'storeDir: ./s\nnetworkConcurrency: "many"\nsupportedArchitectures:\n  os: [current, linux]\n  cpu: x64\nunrelated: 1\n')
  const warnings = []
  assert.deepEqual(cliModule.readWorkspaceSettings(tmp, w => warnings.push(w)), {
    storeDir: './s',
    supportedArchitectures: { os: ['current', 'linux'], cpu: ['x64'] }
  })
  assert.equal(warnings.length, 1, 'a warning for the non-number networkConcurrency')
  // A construct the reader does not handle must not hide the simple settings.
  fs.writeFileSync(path.join(tmp, 'pnpm-workspace.yaml'), 'anchors: &x\n  a: 1\nstoreDir: ./t\n')
  const w2 = []
  assert.equal(cliModule.readWorkspaceSettings(tmp, w => w2.push(w)).storeDir, './t')
  assert.equal(w2.length, 1)
  assert.deepEqual(cliModule.readWorkspaceSettings(path.join(tmp, 'missing')), {})
})

test('buildOptions: flags win, relative paths resolve like pnpm, --prod/--dev map to include', (t) => {
  const tmp = tempDir(t)
  const { parseArgs, buildOptions } = cliModule
  const dir = path.join(tmp, 'proj')
  const settings = { storeDir: '../yaml-store', virtualStoreDir: 'vs', packageImportMethod: 'copy', networkConcurrency: 4, supportedArchitectures: { os: ['current'] }, fetchRetries: 5 }
  const env = { HOME: tmp }
  const fromYaml = buildOptions(parseArgs(['install']), settings, { dir, cwd: tmp, env })
  assert.deepEqual(fromYaml, {
    dir,
    storeDir: path.join(tmp, 'yaml-store'), // relative to the project dir
    virtualStoreDir: path.join(dir, 'vs'),
    packageImportMethod: 'copy',
    networkConcurrency: 4,
    supportedArchitectures: { os: ['current'] },
    fetchRetries: 5
  })
  const flags = buildOptions(parseArgs(['install', '--store-dir', 'cli-store', '--import-method=hardlink', '--network-concurrency', '2', '--prod', '--offline', '--registry', 'http://127.0.0.1:1/sub']), settings, { dir, cwd: path.join(tmp, 'cwd'), env })
  assert.equal(flags.storeDir, path.join(tmp, 'cwd', 'cli-store')) // relative to the cwd
  assert.equal(flags.packageImportMethod, 'hardlink')
  assert.equal(flags.networkConcurrency, 2)
  assert.equal(flags.offline, true)
  assert.deepEqual(flags.registries, { default: 'http://127.0.0.1:1/sub/' })
  assert.deepEqual(flags.include, { dependencies: true, devDependencies: false, optionalDependencies: true })
  const dev = buildOptions(parseArgs(['install', '-D']), {}, { dir, cwd: tmp, env })
  assert.deepEqual(dev.include, { dependencies: false, devDependencies: true, optionalDependencies: false })
  assert.equal(dev.registries, undefined, 'no --registry: left to the addon')
  assert.equal(dev.authHeaderByUri, undefined)
})

test('auth headers come from .npmrc files, with ${VAR} expansion', (t) => {
  const tmp = tempDir(t)
  const dir = path.join(tmp, 'proj')
  fs.mkdirSync(dir)
  fs.writeFileSync(path.join(tmp, '.npmrc'), '//127.0.0.1:1/:_authToken=user-level\n//127.0.0.1:2/:username=me\n//127.0.0.1:2/:_password=' + Buffer.from('pw').toString('base64') + '\n')
  fs.writeFileSync(path.join(dir, '.npmrc'), '; comment\n//127.0.0.1:1/:_authToken=${TOKEN}\n//127.0.0.1:3/:_auth=abc\n')
  assert.deepEqual(cliModule.readAuthHeaders(dir, { HOME: tmp, TOKEN: 'from-env' }), {
    '//127.0.0.1:1/': 'Bearer from-env',
    '//127.0.0.1:2/': `Basic ${Buffer.from('me:pw').toString('base64')}`,
    '//127.0.0.1:3/': 'Basic abc'
  })
})

function fakeStream (isTTY) {
  const writes = []
  return { isTTY, columns: 40, writes, write: (s) => { writes.push(s); return true } }
}

test('reporter: a TTY gets one live line, redrawn at most every 100 ms', () => {
  const out = fakeStream(true)
  const err = fakeStream(false)
  let clock = 10_000
  const r = cliModule.createReporter({ mode: 'default', out, err, now: () => clock, color: false })
  r.onEvent({ name: 'pnpm:progress', level: 'debug', status: 'resolved', packageId: 'a@1.0.0' })
  assert.deepEqual(out.writes, ['\rProgress: resolved 1, reused 0, downloaded 0, added 0\x1b[K'])
  for (let i = 0; i < 30; i++) {
    clock += 2 // 60 ms in all: inside one window
    r.onEvent({ name: 'pnpm:progress', level: 'debug', status: i % 2 ? 'fetched' : 'found_in_store', packageId: `p${i}` })
    r.onEvent({ name: 'pnpm:progress', level: 'debug', status: 'imported', to: `/x/p${i}` })
  }
  assert.equal(out.writes.length, 1, 'no redraw inside the 100 ms window')
  r.onEvent({ name: 'pnpm:global', level: 'warn', message: 'careful' })
  r.finish({ added: 30, fetched: 15, reused: 15, skipped: [], bytesDownloaded: 2048, filesImported: 60, importMethod: 'hardlink' }, 1234)
  const text = out.writes.join('')
  assert.ok(text.includes(' WARN  careful\n'))
  assert.ok(text.includes('\rProgress: resolved 1, reused 15, downloaded 15, added 30, done\x1b[K\n'))
  assert.ok(text.includes('Packages: +30\n' + '+'.repeat(30) + '\n'))
  assert.ok(text.includes('Downloaded 15 (2.0 kB), reused 15 from the store, 60 files imported by hardlink\n'))
  assert.ok(text.endsWith(`Done in 1.2s using pacquet-native v${VERSION}\n`))
})

test('reporter: without a TTY progress is appended as plain lines', () => {
  const out = fakeStream(false)
  const err = fakeStream(false)
  let clock = 0
  const r = cliModule.createReporter({ mode: 'default', out, err, now: () => clock, color: false })
  r.onEvent({ name: 'pnpm:progress', status: 'resolved' })
  clock += 5000
  r.onEvent({ name: 'pnpm:progress', status: 'fetched' })
  r.onEvent({ name: 'pnpm:request-retry', level: 'debug', attempt: 1, maxRetries: 2, method: 'GET', url: 'http://127.0.0.1:1/a/-/a-1.0.0.tgz', error: { message: 'boom', httpStatusCode: 500 } })
  r.finish({ added: 1, fetched: 1, reused: 0, skipped: ['x@1.0.0'], bytesDownloaded: 10 }, 50)
  const text = out.writes.join('')
  assert.ok(!text.includes('\r') && !text.includes('\x1b'), 'no control characters')
  assert.deepEqual(text.split('\n').filter(l => l.startsWith('Progress:')), [
    'Progress: resolved 1, reused 0, downloaded 0, added 0',
    'Progress: resolved 1, reused 0, downloaded 1, added 0',
    'Progress: resolved 1, reused 0, downloaded 1, added 0, done'
  ])
  assert.ok(text.includes(' WARN  GET http://127.0.0.1:1/a/-/a-1.0.0.tgz error (500). Will retry. 2 retries left.\n'))
  assert.ok(text.includes('skipped 1 optional'))
})

test('reporter: ndjson prints every event as one JSON line; errors print code, message and hint', () => {
  const out = fakeStream(false)
  const r = cliModule.createReporter({ mode: 'ndjson', out, err: fakeStream(false) })
  const events = [{ name: 'pnpm:progress', level: 'debug', status: 'resolved', packageId: 'a@1.0.0' }, { name: 'pnpm:stage', level: 'debug', prefix: '/x', stage: 'importing_done' }]
  for (const e of events) r.onEvent(e)
  r.finish({ added: 1 }, 5)
  const lines = out.writes.join('').trimEnd().split('\n').map(l => JSON.parse(l))
  assert.deepEqual(lines.slice(0, 2), events)
  assert.equal(lines[2].name, 'pacquet-native:summary')

  const err = fakeStream(false)
  const plain = cliModule.createReporter({ mode: 'default', out: fakeStream(false), err, color: false })
  plain.fail(Object.assign(new Error('Something broke'), { code: 'ERR_PNPM_X', hint: 'Try again.' }))
  assert.equal(err.writes.join(''), ' ERR_PNPM_X  Something broke\n\nTry again.\n')
})

// ---------------------------------------------------------------------------------------
// With the addon

// pnpm's own reporter (--reporter=default) is tested in pnpm-reporter.test.mjs.
test('install --reporter=append-only: links the project and prints a pnpm-like summary', TIMEOUT, async (t) => {
  const s = await setup(t)
  const r = await s.cli(['install', '--reporter=append-only', '--dir', s.dir, '--store-dir', s.storeDir, '--registry', s.registry.url])
  assert.equal(r.status, 0, `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`)
  assertInstalled(s.dir, ['a', '@scope/c', 'd'])
  assert.ok(fs.existsSync(path.join(s.storeDir, 'v11', 'index.db')), 'the store is where --store-dir says')
  assert.match(r.stdout, new RegExp(`^Progress: resolved ${SPEC_SIZE}, reused 0, downloaded ${SPEC_SIZE}, added ${SPEC_SIZE}, done$`, 'm'))
  assert.match(r.stdout, new RegExp(`^Packages: \\+${SPEC_SIZE}$`, 'm'))
  assert.match(r.stdout, /^Downloaded 4 \(\d+(\.\d)? (B|kB)\), reused 0 from the store/m)
  assert.match(r.stdout, new RegExp(`^Done in \\d+(\\.\\d)?s using pacquet-native v${VERSION.replace(/\./g, '\\.')}$`, 'm'))
  assert.ok(!/\r|\x1b/.test(r.stdout), 'no TTY control characters when piped')
  assert.equal(r.stderr, '')

  // A second run reuses the store.
  fs.rmSync(path.join(s.dir, 'node_modules'), { recursive: true })
  s.registry.clearRequests()
  const again = await s.cli(['install', '--reporter=append-only', '--dir', s.dir, '--store-dir', s.storeDir, '--registry', s.registry.url])
  assert.equal(again.status, 0, again.stderr)
  assert.equal(s.registry.requests.length, 0)
  assert.match(again.stdout, new RegExp(`^Progress: resolved ${SPEC_SIZE}, reused ${SPEC_SIZE}, downloaded 0, added ${SPEC_SIZE}, done$`, 'm'))
})

test('install: the project defaults to the cwd and the registry to npm config', TIMEOUT, async (t) => {
  const s = await setup(t)
  fs.writeFileSync(path.join(s.dir, 'pnpm-workspace.yaml'), `storeDir: ${JSON.stringify(s.storeDir)}\n`)
  const r = await s.cli(['install'], { cwd: s.dir, env: { npm_config_registry: s.registry.url } })
  assert.equal(r.status, 0, `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`)
  assertInstalled(s.dir, ['a', '@scope/c', 'd'])
  assert.equal(s.registry.requests.length, SPEC_SIZE)
})

test('install: when the addon finds no registry, `npm config get registry` is asked once', TIMEOUT, async (t) => {
  // Only npm knows this registry: it is in a global npmrc the addon does not read.
  const s = await setup(t)
  const globalrc = path.join(s.tmp, 'global-npmrc')
  fs.writeFileSync(globalrc, `registry=${s.registry.url}\n`)
  if (!onPath(process.platform === 'win32' ? 'npm.cmd' : 'npm')) { t.skip('npm is not on PATH'); return }
  const r = await s.cli(['install', '--dir', s.dir, '--store-dir', s.storeDir], { env: { npm_config_globalconfig: globalrc } })
  assert.equal(r.status, 0, `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`)
  assertInstalled(s.dir, ['a'])
  assert.equal(s.registry.requests.length, SPEC_SIZE)
})

test('install: auth tokens from the project .npmrc reach the registry', TIMEOUT, async (t) => {
  const s = await setup(t, SPEC, { requireAuth: 'Bearer s3cret' })
  fs.writeFileSync(path.join(s.dir, '.npmrc'), `${s.registry.nerfDart}:_authToken=\${MY_TOKEN}\n`)
  const r = await s.cli(['install', '--dir', s.dir, '--store-dir', s.storeDir, '--registry', s.registry.url], { env: { MY_TOKEN: 's3cret' } })
  assert.equal(r.status, 0, `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`)
  assert.ok(s.registry.requests.every(q => q.headers.authorization === 'Bearer s3cret'))
})

test('install --reporter=ndjson prints one JSON event per line', TIMEOUT, async (t) => {
  const s = await setup(t)
  const r = await s.cli(['install', '--dir', s.dir, '--store-dir', s.storeDir, '--registry', s.registry.url, '--reporter=ndjson'])
  assert.equal(r.status, 0, r.stderr)
  const lines = r.stdout.trimEnd().split('\n').map((l, i) => {
    try { return JSON.parse(l) } catch { assert.fail(`line ${i + 1} is not JSON: ${l}`) }
  })
  const imported = lines.filter(e => e.name === 'pnpm:progress' && e.status === 'imported')
  assert.equal(imported.length, SPEC_SIZE)
  const summary = lines.at(-1)
  assert.equal(summary.name, 'pacquet-native:summary')
  assert.equal(summary.result.added, SPEC_SIZE)
})

test('install reads storeDir, virtualStoreDir and packageImportMethod from pnpm-workspace.yaml', TIMEOUT, async (t) => {
  const s = await setup(t)
  fs.writeFileSync(path.join(s.dir, 'pnpm-workspace.yaml'), [
    '# relative paths are relative to the project',
    'storeDir: ../yaml-store',
    'virtualStoreDir: node_modules/.vs',
    'packageImportMethod: copy',
    'networkConcurrency: 2',
    'supportedArchitectures:',
    '  os: [current]',
    ''
  ].join('\n'))
  const r = await s.cli(['install', '--dir', s.dir, '--registry', s.registry.url])
  assert.equal(r.status, 0, `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`)
  const store = path.join(s.tmp, 'yaml-store')
  assert.ok(fs.existsSync(path.join(store, 'v11', 'index.db')), 'store from pnpm-workspace.yaml')
  const pkgDir = path.join(s.dir, 'node_modules', '.vs', 'a@1.0.0', 'node_modules', 'a')
  assert.ok(fs.existsSync(path.join(pkgDir, 'package.json')), 'slot under virtualStoreDir')
  assert.ok(!fs.existsSync(path.join(s.dir, 'node_modules', '.pnpm')))
  const file = s.project.packages.get('a@1.0.0').files['bin/cli.js']
  const st = fs.statSync(path.join(pkgDir, 'bin', 'cli.js'))
  assert.notEqual(st.ino, fs.statSync(casPath(store, file.content, file.mode)).ino, 'copied, not hardlinked')
  assert.ok(st.mode & 0o100, 'exec bit kept by copy')
})

test('install --prod leaves devDependencies out; --dev installs only them', TIMEOUT, async (t) => {
  const s = await setup(t)
  const prod = await s.cli(['install', '--dir', s.dir, '--store-dir', s.storeDir, '--registry', s.registry.url, '--prod'])
  assert.equal(prod.status, 0, prod.stderr)
  assertInstalled(s.dir, ['a', '@scope/c'])
  assert.ok(!fs.existsSync(path.join(s.dir, 'node_modules', 'd')))
  assert.equal(s.registry.requestsTo(tarballPath('d', '1.0.0')).length, 0)
  assert.match(prod.stdout, /^Packages: \+3$/m)

  const dir2 = path.join(s.tmp, 'project-dev')
  makeProject(dir2, SPEC)
  const dev = await s.cli(['install', '--dir', dir2, '--store-dir', s.storeDir, '--registry', s.registry.url, '--dev'])
  assert.equal(dev.status, 0, dev.stderr)
  assertInstalled(dir2, ['d'])
  assert.ok(!fs.existsSync(path.join(dir2, 'node_modules', 'a')))
})

test('install exits 1 with the error code and hint when the addon rejects', TIMEOUT, async (t) => {
  const s = await setup(t)
  fs.writeFileSync(s.project.lockfilePath, "lockfileVersion: '6.0'\n\ndependencies: {}\n")
  const r = await s.cli(['install', '--dir', s.dir, '--store-dir', s.storeDir, '--registry', s.registry.url])
  assert.equal(r.status, 1, r.stdout)
  assert.match(r.stderr, /^ ERR_PNPM_LOCKFILE_BREAKING_CHANGE  \S/m)
  assert.ok(!fs.existsSync(path.join(s.dir, 'node_modules')))

  const nd = await s.cli(['install', '--dir', s.dir, '--store-dir', s.storeDir, '--registry', s.registry.url, '--reporter', 'ndjson'])
  assert.equal(nd.status, 1)
  const last = JSON.parse(nd.stdout.trimEnd().split('\n').at(-1))
  assert.equal(last.level, 'error')
  assert.equal(last.err.code, 'ERR_PNPM_LOCKFILE_BREAKING_CHANGE')
  assert.equal(typeof last.err.hint, 'string')
})

test('install exits 1 with ERR_PNPM_FETCH_404 for a missing tarball', TIMEOUT, async (t) => {
  const spec = { packages: [{ name: 'a', version: '1.0.0', serve: false }], importer: { dependencies: { a: '1.0.0' } } }
  const s = await setup(t, spec)
  fastRetries(s.dir)
  const r = await s.cli(['install', '--dir', s.dir, '--store-dir', s.storeDir, '--registry', s.registry.url])
  assert.equal(r.status, 1, r.stdout)
  assert.match(r.stderr, /^ ERR_PNPM_FETCH_404  .*\/a\/-\/a-1\.0\.0\.tgz/m)
})

test('install --offline with an empty store fails without touching the network', TIMEOUT, async (t) => {
  const s = await setup(t)
  const r = await s.cli(['install', '--dir', s.dir, '--store-dir', s.storeDir, '--registry', s.registry.url, '--offline'])
  assert.equal(r.status, 1, r.stdout)
  assert.match(r.stderr, /^ ERR_PNPM_NO_OFFLINE_TARBALL  /m)
  assert.equal(s.registry.requests.length, 0)
})

test('Ctrl-C aborts the install and exits 130', TIMEOUT, async (t) => {
  if (process.platform === 'win32') { t.skip('no SIGINT delivery to children on Windows'); return }
  // The registry never answers; the install can only end through the abort.
  const s = await setup(t, SPEC, { delay: Infinity })
  let child
  const r = await s.cli(['install', '--dir', s.dir, '--store-dir', s.storeDir, '--registry', s.registry.url], {
    timeout: 30_000,
    onSpawn: (c) => {
      child = c
      s.registry.waitForRequest().then(() => child.kill('SIGINT'))
    }
  })
  assert.equal(r.timedOut, false, 'the CLI exited after the abort')
  assert.equal(r.status, 130, `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`)
  assert.match(r.stderr, /ABORT_ERR/)
})

test('store path prints the store; store status reports a package edited in node_modules', TIMEOUT, async (t) => {
  const s = await setup(t)
  const args = ['--dir', s.dir, '--store-dir', s.storeDir]
  const installed = await s.cli(['install', ...args, '--registry', s.registry.url])
  assert.equal(installed.status, 0, installed.stderr)

  const where = await s.cli(['store', 'path', ...args])
  assert.equal(where.status, 0, where.stderr)
  assert.equal(where.stdout, `${path.join(s.storeDir, 'v11')}\n`)

  const clean = await s.cli(['store', 'status', ...args])
  assert.equal(clean.status, 0, clean.stdout + clean.stderr)

  // Files in node_modules are hardlinks into the store: editing one edits the store.
  const file = path.join(s.dir, 'node_modules', '.pnpm', 'b@1.0.0', 'node_modules', 'b', 'package.json')
  fs.appendFileSync(file, '\n')
  const dirty = await s.cli(['store', 'status', ...args])
  assert.equal(dirty.status, 1)
  assert.match(dirty.stderr + dirty.stdout, /ERR_PNPM_MODIFIED_DEPENDENCY/)
  assert.match(dirty.stderr + dirty.stdout, /^ {2}b@1\.0\.0$/m)
})

test('without the platform package, require() and the CLI name the missing package and how to get it', TIMEOUT, async (t) => {
  // The published layout without any binary: index.js, package.json and the CLI alone.
  const pkg = path.join(tempDir(t, 'pacquet-nobinary-'), 'node_modules', '@pacquet', 'native')
  fs.mkdirSync(pkg, { recursive: true })
  for (const f of ['package.json', 'index.js']) fs.copyFileSync(path.join(ROOT, f), path.join(pkg, f))
  fs.cpSync(path.join(ROOT, 'cli'), path.join(pkg, 'cli'), { recursive: true })
  const platformPackage = process.platform === 'linux' && process.arch === 'x64' ? '@pacquet/native-linux-x64-' : '@pacquet/native-'
  const env = cleanEnv(path.join(pkg, '..', 'home'))
  delete env.NAPI_RS_NATIVE_LIBRARY_PATH

  const r = spawnSync(process.execPath, ['-e', `try { require(${JSON.stringify(pkg)}) } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message, hint: e.hint })) }`], { env, encoding: 'utf8' })
  const err = JSON.parse(r.stdout)
  assert.equal(err.code, 'ERR_PACQUET_NATIVE_BINDING')
  assert.ok(err.message.includes(`the package ${platformPackage}`), err.message)
  assert.match(err.hint, /optional dependencies/)

  const cli = await run(process.execPath, [path.join(pkg, 'cli', 'pacquet-native.js'), 'store', 'path'], { env })
  assert.equal(cli.status, 1)
  assert.match(cli.stderr, /ERR_PACQUET_NATIVE_BINDING/)
  assert.ok(cli.stderr.includes(`the package ${platformPackage}`), cli.stderr)
})
