// pnpm's own reporter over the addon's events: onProgress → @pnpm/logger → @pnpm/default-reporter
// (devDependencies here; optional peer dependencies for users). The example
// (examples/pnpm-reporter.mjs) and the CLI's `--reporter=default` must print pnpm's familiar
// install output; without those packages the CLI falls back to its built-in renderer with a
// note. Output is compared with ANSI escapes removed; nothing depends on timing.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { cleanEnv, makeProject, run, tempDir } from './helpers/fixture.mjs'
import { startRegistry } from './helpers/registry.mjs'

const require = createRequire(import.meta.url)
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const CLI = path.join(ROOT, 'cli', 'pacquet-native.js')
const EXAMPLE = path.join(ROOT, 'examples', 'pnpm-reporter.mjs')
const PKG = require('../package.json')
const TIMEOUT = { timeout: 60_000 } // a hang guard, not a speed requirement

const SPEC = {
  packages: [
    { name: 'a', version: '1.0.0', dependencies: { b: '1.0.0' } },
    { name: 'b', version: '1.0.0' },
    { name: '@scope/c', version: '2.0.0' },
    { name: 'd', version: '1.0.0' }
  ],
  importer: { dependencies: { a: '1.0.0', '@scope/c': '2.0.0' }, devDependencies: { d: '1.0.0' } }
}

let skip = false
try {
  require.resolve('@pnpm/default-reporter')
  require.resolve('@pnpm/logger')
} catch {
  skip = '@pnpm/default-reporter and @pnpm/logger are not installed (run `npm install`)'
}

async function setup (t, registryOptions = {}) {
  let registry
  const tmp = tempDir(t, 'pacquet-pnpm-reporter-', () => registry?.close())
  const dir = path.join(tmp, 'project')
  const storeDir = path.join(tmp, 'store')
  const project = makeProject(dir, SPEC)
  registry = await startRegistry({ tarballs: project.tarballs, ...registryOptions })
  const env = cleanEnv(path.join(tmp, 'home'))
  const node = (args, opts = {}) => run(process.execPath, args, { cwd: tmp, env, ...opts })
  return { tmp, dir, storeDir, registry, env, node }
}

const hasScript = () => spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0

/** Runs node with `args` on a pseudo-terminal (util-linux `script`). */
function onTerminal (args, { cwd, env }) {
  const q = (a) => `'${a.replace(/'/g, "'\\''")}'`
  return run('script', ['-q', '-e', '-c', [process.execPath, ...args].map(q).join(' '), '/dev/null'], { cwd, env })
}

const plain = (s) => s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '')
const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/** pnpm's lines for a first install of SPEC into `storeDir`. */
function assertFirstInstall (out, storeDir) {
  assert.match(out, /^Packages: \+4$/m)
  assert.match(out, /^\+{4}$/m)
  assert.match(out, /^Progress: resolved 4, reused 0, downloaded 4, added 4, done$/m)
  assert.match(out, /^Packages are (hard linked|copied|cloned) from the content-addressable store to the virtual store\.$/m)
  assert.match(out, new RegExp(`^ {2}Content-addressable store is at: ${escape(path.join(storeDir, 'v11'))}$`, 'm'))
  assert.match(out, /^ {2}Virtual store is at: +node_modules\/\.pnpm$/m)
  assert.ok(out.includes('\ndependencies:\n+ @scope/c 2.0.0\n+ a 1.0.0\n'), out)
  assert.ok(out.includes('\ndevDependencies:\n+ d 1.0.0\n'), out)
}

test('example: onProgress events through @pnpm/logger render pnpm\'s install output', { skip, ...TIMEOUT }, async (t) => {
  const s = await setup(t)
  const example = () => s.node([EXAMPLE, s.dir, '--registry', s.registry.url, '--store-dir', s.storeDir])

  const cold = await example()
  assert.equal(cold.status, 0, `stdout:\n${cold.stdout}\nstderr:\n${cold.stderr}`)
  assert.equal(cold.stderr, '')
  assertFirstInstall(plain(cold.stdout), s.storeDir)
  assert.ok(fs.lstatSync(path.join(s.dir, 'node_modules', 'a')).isSymbolicLink())

  // Nothing changed: pnpm's words for a no-op install, no progress.
  const again = await example()
  assert.equal(again.status, 0, again.stderr)
  assert.match(plain(again.stdout), /^Already up to date$/m)
  assert.doesNotMatch(again.stdout, /Progress:|dependencies:/)

  // node_modules removed, store kept: everything is reused.
  fs.rmSync(path.join(s.dir, 'node_modules'), { recursive: true })
  s.registry.clearRequests()
  const warm = await example()
  assert.equal(warm.status, 0, warm.stderr)
  const out = plain(warm.stdout)
  assert.match(out, /^Progress: resolved 4, reused 4, downloaded 0, added 4, done$/m)
  assert.match(out, /^Packages: \+4$/m)
  assert.ok(out.includes('\ndependencies:\n+ @scope/c 2.0.0\n+ a 1.0.0\n'), out)
  assert.equal(s.registry.requests.length, 0)
})

test('CLI: --reporter=default renders with pnpm\'s reporter, append-only when piped', { skip, ...TIMEOUT }, async (t) => {
  // The first request for b fails: pnpm's reporter prints the retry as a warning.
  const s = await setup(t, { faults: { '/b/-/b-1.0.0.tgz': [500] } })
  fs.writeFileSync(path.join(s.dir, 'pnpm-workspace.yaml'), 'fetchRetryMintimeout: 10\nfetchRetryMaxtimeout: 100\n')
  // No --reporter: default is the default.
  const r = await s.node([CLI, 'install', '--dir', s.dir, '--store-dir', s.storeDir, '--registry', s.registry.url])
  assert.equal(r.status, 0, `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`)
  assert.equal(r.stderr, '')
  assert.doesNotMatch(r.stdout, /\r|\x1b\[\d*[AK]/, 'no redrawing when piped')
  const out = plain(r.stdout)
  assertFirstInstall(out, s.storeDir)
  assert.match(out, /WARN\s+GET http:\/\/127\.0\.0\.1:\d+\/b\/-\/b-1\.0\.0\.tgz error \(500\)\. Will retry in .+\. 2 retries left\./)
  assert.match(out, new RegExp(`^Done in \\S+ using ${escape(PKG.name)} v${escape(PKG.version)}$`, 'm'))

  // --prod in a fresh project: pnpm's summary says what was left out.
  const dir2 = path.join(s.tmp, 'project2')
  makeProject(dir2, SPEC)
  const prod = await s.node([CLI, 'install', '--prod', '--dir', dir2, '--store-dir', s.storeDir, '--registry', s.registry.url])
  assert.equal(prod.status, 0, prod.stderr)
  const prodOut = plain(prod.stdout)
  assert.match(prodOut, /^Progress: resolved 3, reused 3, downloaded 0, added 3, done$/m)
  assert.match(prodOut, /^devDependencies: skipped$/m)
  assert.ok(prodOut.includes('\ndependencies:\n+ @scope/c 2.0.0\n+ a 1.0.0\n'), prodOut)

  // Errors keep the CLI's form on stderr (code, message, hint) whatever the reporter.
  fs.writeFileSync(path.join(dir2, 'pnpm-lock.yaml'), "lockfileVersion: '6.0'\n")
  const bad = await s.node([CLI, 'install', '--dir', dir2, '--store-dir', s.storeDir, '--registry', s.registry.url])
  assert.equal(bad.status, 1)
  assert.match(bad.stderr, /^ ERR_PNPM_LOCKFILE_BREAKING_CHANGE  \S/m)
})

test('CLI: --reporter=default on a terminal redraws pnpm\'s view', { skip, ...TIMEOUT }, async (t) => {
  // util-linux `script` gives the CLI a pseudo-terminal.
  if (!hasScript()) { t.skip('`script` (util-linux) is not available'); return }
  const s = await setup(t)
  const r = await onTerminal([CLI, 'install', '--dir', s.dir, '--store-dir', s.storeDir, '--registry', s.registry.url], { cwd: s.tmp, env: s.env })
  assert.equal(r.status, 0, r.stdout)
  // Redrawn in place (cursor moves), so only whole lines that are written once are compared.
  assert.match(r.stdout, /\x1b\[\d*A/, 'the view is redrawn')
  const out = plain(r.stdout)
  assert.match(out, /Packages: \+4/)
  assert.match(out, /Progress: resolved/)
  assert.match(out, /Packages are (hard linked|copied|cloned) from the content-addressable store to the virtual store\./)
  assert.ok(out.includes('dependencies:\n+ @scope/c 2.0.0\n+ a 1.0.0\n'), out)
  assert.ok(fs.lstatSync(path.join(s.dir, 'node_modules', 'a')).isSymbolicLink())
})

/**
 * The CLI as installed without the optional peers: its files alone in a directory where
 * neither reporter package resolves, the binary given through the loader's override.
 */
function cliWithoutPnpmReporter (tmp) {
  const pkg = path.join(tmp, 'bare', 'node_modules', '@pacquet', 'native')
  fs.mkdirSync(pkg, { recursive: true })
  for (const f of ['package.json', 'index.js']) fs.copyFileSync(path.join(ROOT, f), path.join(pkg, f))
  fs.cpSync(path.join(ROOT, 'cli'), path.join(pkg, 'cli'), { recursive: true })
  return { cli: path.join(pkg, 'cli', 'pacquet-native.js'), binding: path.join(ROOT, `${PKG.napi.binaryName}.linux-x64-gnu.node`) }
}

test('CLI: without pnpm\'s reporter packages, default falls back to the built-in renderer with a note', TIMEOUT, async (t) => {
  const s = await setup(t)
  const { cli, binding } = cliWithoutPnpmReporter(s.tmp)
  if (!fs.existsSync(binding)) { t.skip(`${path.basename(binding)} is not built here`); return }
  const env = { ...s.env, NAPI_RS_NATIVE_LIBRARY_PATH: binding }
  const r = await run(process.execPath, [cli, 'install', '--dir', s.dir, '--store-dir', s.storeDir, '--registry', s.registry.url], { cwd: s.tmp, env })
  assert.equal(r.status, 0, `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`)
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line on stderr: ${r.stderr}`)
  assert.match(r.stderr, /^Note: pnpm's reporter is not installed \(npm install @pnpm\/default-reporter@\d+ @pnpm\/logger@\d+\); using the built-in one\.$/m)
  assert.match(r.stdout, /^Progress: resolved 4, reused 0, downloaded 4, added 4, done$/m)
  assert.match(r.stdout, /^Downloaded 4 \(/m)
  assert.match(r.stdout, new RegExp(`^Done in \\S+ using pacquet-native v${escape(PKG.version)}$`, 'm'))

  // Asking for the built-in renderer by name prints no note.
  fs.rmSync(path.join(s.dir, 'node_modules'), { recursive: true })
  const own = await run(process.execPath, [cli, 'install', '--reporter=append-only', '--dir', s.dir, '--store-dir', s.storeDir], { cwd: s.tmp, env })
  assert.equal(own.status, 0, own.stderr)
  assert.equal(own.stderr, '')
  assert.match(own.stdout, /^Progress: resolved 4, reused 4, downloaded 0, added 4, done$/m)

  // On a terminal the built-in renderer keeps one live line.
  if (!hasScript()) return
  fs.rmSync(path.join(s.dir, 'node_modules'), { recursive: true })
  const tty = await onTerminal([cli, 'install', '--dir', s.dir, '--store-dir', s.storeDir], { cwd: s.tmp, env })
  assert.equal(tty.status, 0, tty.stdout)
  assert.ok(tty.stdout.includes('\rProgress: resolved 4, reused 4, downloaded 0, added 4, done\x1b[K'), JSON.stringify(tty.stdout))
  assert.match(tty.stdout, /Packages: \+4\r?\n\+{4}/)
})

test('events carry what pnpm\'s reporter needs: context, manifest, stats, root, summary', TIMEOUT, async (t) => {
  const s = await setup(t)
  const { linkVirtualStore } = require('../index.js')
  const install = async () => {
    const events = []
    await linkVirtualStore(s.dir, { storeDir: s.storeDir, registries: { default: s.registry.url }, onProgress: (e) => events.push(e) })
    return events
  }
  const named = (events, name) => events.filter(e => e.name === name)

  const first = await install()
  assert.deepEqual(named(first, 'pnpm:context'), [{
    name: 'pnpm:context',
    level: 'debug',
    currentLockfileExists: false,
    storeDir: path.join(s.storeDir, 'v11'),
    virtualStoreDir: path.join(s.dir, 'node_modules', '.pnpm')
  }])
  const [manifest] = named(first, 'pnpm:package-manifest')
  assert.equal(manifest.prefix, s.dir)
  assert.equal(typeof manifest.initial, 'object')
  // One stats record with `removed` and one with `added`, as the reporter counts them.
  assert.deepEqual(named(first, 'pnpm:stats').map(({ prefix, added, removed }) => ({ prefix, added, removed })),
    [{ prefix: s.dir, added: undefined, removed: 0 }, { prefix: s.dir, added: 4, removed: undefined }])
  assert.deepEqual(named(first, 'pnpm:root').map(e => e.added).sort((a, b) => a.name.localeCompare(b.name)), [
    { dependencyType: 'prod', id: '@scope/c@2.0.0', name: '@scope/c', realName: '@scope/c', version: '2.0.0' },
    { dependencyType: 'prod', id: 'a@1.0.0', name: 'a', realName: 'a', version: '1.0.0' },
    { dependencyType: 'dev', id: 'd@1.0.0', name: 'd', realName: 'd', version: '1.0.0' }
  ])
  assert.ok(named(first, 'pnpm:root').every(e => e.prefix === s.dir && e.level === 'debug'))
  assert.deepEqual(first.at(-1), { name: 'pnpm:summary', level: 'debug', prefix: s.dir }, 'the summary comes last')
  for (const e of named(first, 'pnpm:progress')) assert.equal(e.requester ?? e.prefix, s.dir)

  // A repeat install: nothing added or removed, no direct dependency reported as new.
  const repeat = await install()
  assert.equal(named(repeat, 'pnpm:context')[0].currentLockfileExists, true)
  assert.deepEqual(named(repeat, 'pnpm:stats').map(e => e.added ?? e.removed), [0, 0])
  assert.deepEqual(named(repeat, 'pnpm:root'), [])
  assert.equal(repeat.at(-1).name, 'pnpm:summary')

  // Only the link that changed is reported again.
  fs.rmSync(path.join(s.dir, 'node_modules', 'a'))
  const relinked = await install()
  assert.deepEqual(named(relinked, 'pnpm:root').map(e => e.added.name), ['a'])
})
