// The package as users get it: the main package and this machine's per-platform package
// are packed (scripts/pack-local.mjs: `napi create-npm-dirs` + `npm pack`), installed from
// the two tarballs into an empty project, and then used from there: `require()` must load the
// binary from node_modules/@pacquet/native-<abi>, and the installed `pacquet-native` bin must
// install a fixture project from a registry on 127.0.0.1.
//
// npm install runs with `--registry` pointing at a recording registry on 127.0.0.1 that has
// nothing: the test asserts npm asked it for nothing but the metadata of the optional peer
// dependencies (pnpm's reporter packages, which it looks up and may not find), so no network
// is needed, and nothing can leak outside the machine. Without those peers the installed CLI
// renders with its built-in reporter and says so in one line.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { packLocal, currentAbi, npmEnv } from '../scripts/pack-local.mjs'
import { cleanEnv, makeProject, run, tempDir } from './helpers/fixture.mjs'
import { startRegistry } from './helpers/registry.mjs'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const PKG = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'))
const ABI = 'linux-x64-gnu'
const BINARY = `${PKG.napi.binaryName}.${ABI}.node`
const PLATFORM_PKG = `${PKG.name}-${ABI}`

let skip = false
if (process.platform !== 'linux' || process.arch !== 'x64' || currentAbi() !== ABI) {
  skip = `packaging test runs on ${ABI} only (this is ${currentAbi()})`
} else if (!fs.existsSync(path.join(ROOT, BINARY))) {
  skip = `${BINARY} is missing: run \`npm run build\` first`
}

// Run npm from the Node.js running this test (its bin scripts use `#!/usr/bin/env node`).
const PATH = `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ''}`

test('packaging: npm pack + npm install of the tarballs, require() and the installed CLI', { skip, timeout: 300_000 }, async (t) => {
  let registry, emptyRegistry
  const tmp = tempDir(t, 'pacquet-packaging-', async () => {
    await registry?.close()
    await emptyRegistry?.close()
  })
  const transcript = []
  const log = (line) => { transcript.push(line); t.diagnostic(line) }

  // 1. Pack.
  const packed = packLocal({ outDir: path.join(tmp, 'tarballs'), abi: ABI, log })
  log(`(platform package.json via ${packed.method})`)

  // Everything the package needs at run time is in the main tarball, and no binary is.
  const mainFiles = new Set(packed.main.files)
  for (const f of ['package.json', PKG.main, PKG.types, PKG.bin['pacquet-native'], 'README.md']) {
    assert.ok(mainFiles.has(f), `${f} is in ${path.basename(packed.main.tarball)} (files: ${[...mainFiles].join(', ')})`)
  }
  // The CLI requires ../package.json and ../index.js (relative to cli/).
  const cliSource = fs.readFileSync(path.join(ROOT, PKG.bin['pacquet-native']), 'utf8')
  for (const [, rel] of cliSource.matchAll(/require\('(\.\.?\/[^']+)'\)/g)) {
    const target = path.posix.normalize(path.posix.join(path.posix.dirname(PKG.bin['pacquet-native']), rel))
    assert.ok(mainFiles.has(target), `the CLI's require('${rel}') (${target}) is packed`)
  }
  assert.deepEqual([...mainFiles].filter(f => f.endsWith('.node')), [], 'no .node file in the main package')
  assert.equal(PKG.optionalDependencies, undefined, 'the repo package.json lists no optionalDependencies (napi prepublish adds them)')
  assert.deepEqual(packed.platform.files.sort(), ['README.md', BINARY, 'package.json'].sort())
  assert.equal(packed.platform.name, PLATFORM_PKG)
  assert.equal(packed.platform.version, PKG.version)

  // 2. Install both tarballs into an empty project.
  const consumer = path.join(tmp, 'consumer')
  fs.mkdirSync(consumer)
  fs.writeFileSync(path.join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }, null, 2) + '\n')
  emptyRegistry = await startRegistry({})
  const installArgs = ['install', '--no-audit', '--no-fund', '--prefer-offline', '--no-update-notifier',
    '--registry', emptyRegistry.url, packed.main.tarball, packed.platform.tarball]
  log(`$ (cd ${consumer} && npm ${installArgs.join(' ')})`)
  const install = await run('npm', installArgs, { cwd: consumer, env: npmEnv({ PATH }), timeout: 180_000 })
  log((install.stdout + install.stderr).trim())
  assert.equal(install.status, 0, `npm install failed:\n${install.stdout}\n${install.stderr}`)
  const optionalPeers = Object.entries(PKG.peerDependenciesMeta ?? {}).filter(([, m]) => m.optional).map(([name]) => name)
  assert.deepEqual(Object.keys(PKG.peerDependencies ?? {}).sort(), optionalPeers.sort(), 'every peer dependency is optional')
  const peerLookups = new Set(optionalPeers.map(name => `/${name.replace('/', '%2f')}`))
  assert.deepEqual(emptyRegistry.requests.map(r => r.url).filter(u => !peerLookups.has(u)), [],
    'npm made no registry request but looking up the optional peers')
  for (const name of optionalPeers) {
    assert.ok(!fs.existsSync(path.join(consumer, 'node_modules', ...name.split('/'))), `${name} (an optional peer) is not installed`)
  }

  const installedMain = path.join(consumer, 'node_modules', ...PKG.name.split('/'))
  const installedPlatform = path.join(consumer, 'node_modules', ...PLATFORM_PKG.split('/'))
  assert.ok(fs.existsSync(path.join(installedPlatform, BINARY)), `${BINARY} is installed in ${installedPlatform}`)
  assert.ok(!fs.readdirSync(installedMain).some(f => f.endsWith('.node')), 'no local .node next to the installed index.js')

  // 3. require() loads the binary from the platform package.
  const env = { ...cleanEnv(path.join(tmp, 'home')), PATH }
  delete env.NAPI_RS_NATIVE_LIBRARY_PATH
  const probe = [
    `const m = require(${JSON.stringify(PKG.name)})`,
    "const loaded = Object.keys(require.cache).filter(k => k.endsWith('.node'))",
    'console.log(JSON.stringify({ main: require.resolve(' + JSON.stringify(PKG.name) + '), loaded, exports: Object.keys(m).sort() }))'
  ].join('\n')
  log(`$ (cd ${consumer} && node -e "require('${PKG.name}') ...")`)
  const req = await run(process.execPath, ['-e', probe], { cwd: consumer, env })
  log((req.stdout + req.stderr).trim())
  assert.equal(req.status, 0, req.stderr)
  const loaded = JSON.parse(req.stdout)
  assert.equal(fs.realpathSync(loaded.main), fs.realpathSync(path.join(installedMain, PKG.main)))
  assert.deepEqual(loaded.loaded.map(p => fs.realpathSync(p)), [fs.realpathSync(path.join(installedPlatform, BINARY))],
    'the binary came from node_modules/' + PLATFORM_PKG)
  assert.ok(loaded.exports.includes('linkVirtualStore'), `exports: ${loaded.exports.join(', ')}`)

  // 4. The installed bin.
  const bin = path.join(consumer, 'node_modules', '.bin', 'pacquet-native')
  log(`$ ${path.relative(consumer, bin)} --version`)
  const version = await run(bin, ['--version'], { cwd: consumer, env })
  log((version.stdout + version.stderr).trim())
  assert.equal(version.status, 0, version.stderr)
  assert.equal(version.stdout.trim(), PKG.version)

  const proj = path.join(tmp, 'project')
  const project = makeProject(proj, {
    packages: [{ name: 'is-fixture', version: '1.0.0' }],
    importer: { dependencies: { 'is-fixture': '1.0.0' } }
  })
  registry = await startRegistry({ tarballs: project.tarballs })
  const storeDir = path.join(tmp, 'store')
  const cliArgs = ['install', '--dir', proj, '--registry', registry.url, '--store-dir', storeDir]
  log(`$ ${path.relative(consumer, bin)} ${cliArgs.join(' ')}`)
  const inst = await run(bin, cliArgs, { cwd: consumer, env, timeout: 120_000 })
  log((inst.stdout + inst.stderr).trim())
  assert.equal(inst.status, 0, `pacquet-native install failed:\n${inst.stdout}\n${inst.stderr}`)
  assert.match(inst.stderr, /^Note: pnpm's reporter is not installed \(npm install [^)]+\); using the built-in one\.\n$/)
  assert.match(inst.stdout, /^Progress: resolved 1, reused 0, downloaded 1, added 1, done$/m)
  assert.ok(fs.lstatSync(path.join(proj, 'node_modules', 'is-fixture')).isSymbolicLink())
  const check = await run(process.execPath, ['-p', "require('is-fixture').name + '@' + require('is-fixture').version"], { cwd: proj, env })
  assert.equal(check.stdout.trim(), 'is-fixture@1.0.0', check.stderr)
  assert.deepEqual(registry.requests.map(r => `${r.method} ${r.path} ${r.status}`), ['GET /is-fixture/-/is-fixture-1.0.0.tgz 200'])
  assert.ok(fs.existsSync(path.join(storeDir, 'v11', 'index.db')), 'the store was written where --store-dir says')

  if (process.env.PACQUET_PACKAGING_TRANSCRIPT) fs.writeFileSync(process.env.PACQUET_PACKAGING_TRANSCRIPT, transcript.join('\n') + '\n')
})
