// Real pnpm 11 for the parity suite (__test__/parity.test.mjs):
//   - findPnpm(): pnpm 11 (the `pnpm` devDependency) and a Node.js >= 22.13 to run it;
//   - startMirrorRegistry(): bench/registry.mjs in a child process, on 127.0.0.1 and a free
//     port, serving a mirror that bench/fill-mirror.mjs filled;
//   - writeFixtureProject(): a copy of a bench fixture, made as bench/run-scenarios.sh makes it;
//   - toolEnv(): an environment with no npm/pnpm configuration and a HOME of its own.
// Nothing here reaches the network: the tests talk to the loopback registry only.
import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { cleanEnv } from './fixture.mjs'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
const requireFromRoot = createRequire(path.join(ROOT, 'package.json'))

/** The directory of an installed package, found as require() would (its `exports` aside). */
function packageDir (name) {
  for (const dir of requireFromRoot.resolve.paths(name) ?? []) {
    if (fs.existsSync(path.join(dir, name, 'package.json'))) return path.join(dir, name)
  }
  return null
}

export const PNPM_MAJOR = 11
const NODE_MIN = [22, 13] // pnpm 11's engines.node (it uses node:sqlite)

function nodeVersionOf (bin) {
  try {
    const r = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 15_000, env: { ...process.env, NODE_OPTIONS: '' } })
    return r.status === 0 ? r.stdout.trim() : null
  } catch {
    return null
  }
}

function meetsNodeMin (version) {
  const m = /^v(\d+)\.(\d+)\./.exec(version ?? '')
  if (!m) return false
  const [major, minor] = [Number(m[1]), Number(m[2])]
  return major > NODE_MIN[0] || (major === NODE_MIN[0] && minor >= NODE_MIN[1])
}

/** A Node.js binary from a path that names it or the directory that holds it. */
function nodeBinAt (p) {
  const exe = process.platform === 'win32' ? 'node.exe' : 'node'
  try {
    if (fs.statSync(p).isDirectory()) return path.join(p, exe)
  } catch {}
  return p
}

/**
 * A Node.js that can run pnpm 11, looked for in this order: $PACQUET_PARITY_NODE (a binary or
 * its directory; .ci/run sets it), the Node.js running the tests if it is recent enough, and
 * a `node-<platform>-<arch>` package installed next to the devDependencies.
 * Returns { node, dir, version } or { reason }.
 */
export function findNodeForPnpm (env = process.env) {
  const want = `>= ${NODE_MIN.join('.')}`
  if (env.PACQUET_PARITY_NODE) {
    const node = nodeBinAt(env.PACQUET_PARITY_NODE)
    const version = nodeVersionOf(node)
    if (meetsNodeMin(version)) return { node, dir: path.dirname(node), version }
    return { reason: `PACQUET_PARITY_NODE=${env.PACQUET_PARITY_NODE} is not a Node.js ${want} (${version ?? 'does not run'})` }
  }
  if (meetsNodeMin(process.version)) return { node: process.execPath, dir: path.dirname(process.execPath), version: process.version }
  const pkg = `node-${process.platform}-${process.arch}`
  const dir = packageDir(pkg)
  if (dir) {
    const node = nodeBinAt(path.join(dir, 'bin'))
    const version = nodeVersionOf(node)
    if (meetsNodeMin(version)) return { node, dir: path.dirname(node), version }
  }
  return {
    reason: `pnpm ${PNPM_MAJOR} needs Node.js ${want}; this is ${process.version}, PACQUET_PARITY_NODE is not set ` +
      `and no ${pkg} package is installed (.ci/run installs ${pkg}@24 and sets PACQUET_PARITY_NODE)`
  }
}

/**
 * pnpm 11 from node_modules (the `pnpm` devDependency) and a Node.js for it.
 * Returns { pnpm: <entry script>, version, node, nodeDir, nodeVersion } or { reason }.
 */
export function findPnpm (env = process.env) {
  const dir = packageDir('pnpm')
  if (!dir) return { reason: `pnpm is not installed in ${path.join(ROOT, 'node_modules')} (run \`npm install\`: it is a devDependency)` }
  const pkgJson = path.join(dir, 'package.json')
  const manifest = JSON.parse(fs.readFileSync(pkgJson, 'utf8'))
  if (Number(manifest.version.split('.')[0]) !== PNPM_MAJOR) {
    return { reason: `node_modules/pnpm is ${manifest.version}, not pnpm ${PNPM_MAJOR} (run \`npm install\`)` }
  }
  const bin = typeof manifest.bin === 'string' ? manifest.bin : manifest.bin?.pnpm
  const pnpm = path.join(path.dirname(pkgJson), bin)
  if (!fs.existsSync(pnpm)) return { reason: `pnpm's entry ${pnpm} is missing` }
  const node = findNodeForPnpm(env)
  if (node.reason) return { reason: node.reason }
  return { pnpm, version: manifest.version, node: node.node, nodeDir: node.dir, nodeVersion: node.version }
}

/**
 * The environment a tool runs in: no npm_* / pnpm_* variables (npm sets npm_config_* when it
 * runs `npm test`, and pnpm reads them), HOME and the XDG directories under `home`, and
 * `nodeDir` first in PATH (pnpm 11 must find a recent `node` for anything it spawns).
 */
export function toolEnv (home, nodeDir) {
  const env = cleanEnv(home, {
    XDG_STATE_HOME: path.join(home, '.local', 'state'),
    ...(nodeDir ? { PATH: `${nodeDir}${path.delimiter}${process.env.PATH ?? ''}` } : {})
  })
  delete env.NODE_TEST_CONTEXT // set by `node --test` for its own children
  return env
}

/**
 * Starts bench/registry.mjs on `mirror` (port 0: a free one) and resolves with
 * { url, close() } once it listens. close() stops it and waits for it to exit.
 */
export function startMirrorRegistry (mirror, { timeout = 15_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'bench', 'registry.mjs'), mirror, '0'], {
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let stdout = ''
    let stderr = ''
    let settled = false
    const exited = new Promise(resolve => child.once('exit', resolve))
    const close = async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      await exited
    }
    const fail = (err) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      close().finally(() => reject(err))
    }
    const timer = setTimeout(() => fail(new Error(`the mirror registry did not start in ${timeout} ms: ${stderr}`)), timeout)
    child.on('error', fail)
    child.on('exit', (code, signal) => fail(new Error(`the mirror registry exited (${code ?? signal}) before listening: ${stderr}`)))
    child.stderr.setEncoding('utf8').on('data', d => { stderr += d })
    child.stdout.setEncoding('utf8').on('data', d => {
      stdout += d
      const m = /^(http:\/\/127\.0\.0\.1:\d+\/)\n/.exec(stdout)
      if (m && !settled) {
        settled = true
        clearTimeout(timer)
        resolve({ url: m[1], close })
      }
    })
  })
}

/**
 * Writes a fresh project from a bench fixture into `dir`, as bench/run-scenarios.sh does
 * with POLICY=lean: the fixture's files copied, pnpm-workspace.yaml with its
 * storeDir replaced and `minimumReleaseAge: 0` / `updateNotifier: false` added (then
 * `workspace`, more settings as YAML lines), and an .npmrc that names the registry (for
 * pnpm's `@jsr` scope too).
 */
export function writeFixtureProject (dir, fixtureDir, { storeDir, registry, workspace: extra = '' }) {
  fs.rmSync(dir, { recursive: true, force: true })
  fs.mkdirSync(dir, { recursive: true })
  // The whole fixture: a workspace fixture brings its projects and local packages.
  fs.cpSync(fixtureDir, dir, { recursive: true })
  let workspace = ''
  try { workspace = fs.readFileSync(path.join(fixtureDir, 'pnpm-workspace.yaml'), 'utf8') } catch {}
  workspace = workspace.split('\n').filter(l => !/^storeDir:/.test(l)).join('\n').replace(/\n*$/, '\n')
  workspace += `storeDir: ${storeDir}\nminimumReleaseAge: 0\nupdateNotifier: false\n${extra}`
  fs.writeFileSync(path.join(dir, 'pnpm-workspace.yaml'), workspace.replace(/^\n+/, ''))
  // pnpm has a scoped registry of its own (`@jsr`) that no configuration names; pointed at the
  // loopback too, nothing can leave the machine, and both tools record the same registry routes
  // in pnpm's workspace state (the CLI knows only the routes that configuration files name).
  fs.writeFileSync(path.join(dir, '.npmrc'), `registry=${registry}\n@jsr:registry=${registry}\n`)
}
