#!/usr/bin/env node
// Packs @pacquet/native the way a release publishes it, for this machine only:
//   - the main package (`npm pack` of the repo root: index.js, index.d.ts, cli/, ...),
//   - the per-platform package `@pacquet/native-<abi>` holding the binary built here
//     (`<binaryName>.<abi>.node` at the repo root, from `npm run build`).
//
//   node scripts/pack-local.mjs [outDir]      (npm run pack:local -- [outDir])
//
// The per-platform package.json comes from `napi create-npm-dirs`, run on a copy of
// package.json in a staging folder (the repo's own gitignored `npm/` is left alone). Only
// this machine's binary is copied in: `napi artifacts` insists on one for every target.
// Neither step touches the network. The main tarball has no optionalDependencies (napi
// prepublish adds them at publish time), so installing the two tarballs side by side
// needs no registry.
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

/** napi's `platformArchABI` of the running Node.js (`linux-x64-gnu`, `darwin-arm64`, `win32-x64-msvc`, ...). */
export function currentAbi () {
  const { platform, arch } = process
  if (platform === 'linux') return `linux-${arch}-${isMusl() ? 'musl' : 'gnu'}`
  if (platform === 'win32') return `win32-${arch}-msvc`
  return `${platform}-${arch}`
}

function isMusl () {
  const header = process.report?.getReport?.()?.header
  return !header?.glibcVersionRuntime
}

/** The environment npm is run with: npm_* variables of an enclosing `npm run` removed, except cache/userconfig. */
export function npmEnv (extra = {}) {
  const env = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) && !/^npm_config_(cache|userconfig)$/i.test(k)) continue
    env[k] = v
  }
  return { ...env, ...extra }
}

export function runNpm (args, { cwd, env = npmEnv() } = {}) {
  const r = spawnSync('npm', args, { cwd, env, encoding: 'utf8', shell: process.platform === 'win32', timeout: 120_000 })
  if (r.error) throw r.error
  if (r.status !== 0) throw new Error(`npm ${args.join(' ')} (in ${cwd}) exited with ${r.status}\n${r.stdout}\n${r.stderr}`)
  return r
}

function napiCli (root) {
  const cli = path.join(root, 'node_modules', '@napi-rs', 'cli', 'dist', 'cli.js')
  return fs.existsSync(cli) ? cli : null
}

/** Writes `<npmDir>/<abi>/package.json` (+ README.md) with the napi CLI, or the same fields by hand without it. */
function createPlatformDir (root, stageDir, abi, log) {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'))
  fs.copyFileSync(path.join(root, 'package.json'), path.join(stageDir, 'package.json'))
  const cli = napiCli(root)
  const dir = path.join(stageDir, 'npm', abi)
  if (cli) {
    const args = [cli, 'create-npm-dirs', '--cwd', stageDir]
    log(`$ node ${path.relative(root, cli)} ${args.slice(1).join(' ')}`)
    const r = spawnSync(process.execPath, args, { cwd: stageDir, encoding: 'utf8', timeout: 60_000 })
    if (r.status !== 0) throw new Error(`napi create-npm-dirs exited with ${r.status}\n${r.stdout}\n${r.stderr}`)
    if (!fs.existsSync(path.join(dir, 'package.json'))) throw new Error(`napi create-npm-dirs did not create ${dir} (is ${abi} in napi.targets?)`)
    return { dir, method: 'napi create-npm-dirs' }
  }
  // The fields napi create-npm-dirs writes (see node_modules/@napi-rs/cli, createNpmDirs).
  const [platform, arch, abiPart] = abi.split('-')
  const binary = `${pkg.napi.binaryName}.${abi}.node`
  const manifest = {
    name: `${pkg.name}-${abi}`,
    version: pkg.version,
    cpu: [arch],
    main: binary,
    files: [binary],
    ...Object.fromEntries(['description', 'keywords', 'author', 'homepage', 'license', 'engines', 'repository', 'bugs']
      .filter(k => pkg[k] !== undefined).map(k => [k, pkg[k]])),
    os: [platform],
    ...(platform === 'linux' ? { libc: [abiPart === 'musl' ? 'musl' : 'glibc'] } : {})
  }
  fs.mkdirSync(dir, { recursive: true })
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify(manifest, null, 2) + '\n')
  log(`(no @napi-rs/cli installed: wrote ${path.join(dir, 'package.json')} by hand)`)
  return { dir, method: 'by hand' }
}

function pack (dir, outDir, log) {
  const args = ['pack', '--json', '--pack-destination', outDir]
  log(`$ (cd ${dir} && npm ${args.join(' ')})`)
  const r = runNpm(args, { cwd: dir })
  // npm prints lifecycle output before the JSON when scripts run; none are defined for pack.
  const info = JSON.parse(r.stdout.slice(r.stdout.indexOf('[')))[0]
  return { tarball: path.join(outDir, info.filename), name: info.name, version: info.version, files: info.files.map(f => f.path) }
}

/**
 * Packs the main package and this machine's platform package into `outDir`.
 * Returns { abi, method, main: {tarball, name, files}, platform: {tarball, name, files} }.
 */
export function packLocal ({ root = ROOT, outDir, abi = currentAbi(), log = () => {} } = {}) {
  outDir = path.resolve(outDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'pacquet-pack-')))
  fs.mkdirSync(outDir, { recursive: true })
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'))
  const binary = path.join(root, `${pkg.napi.binaryName}.${abi}.node`)
  if (!fs.existsSync(binary)) throw new Error(`${binary} is missing: run \`npm run build\` first`)

  const stageDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pacquet-pack-stage-'))
  try {
    const { dir, method } = createPlatformDir(root, stageDir, abi, log)
    log(`$ cp ${binary} ${dir}/`)
    fs.copyFileSync(binary, path.join(dir, path.basename(binary)))
    const main = pack(root, outDir, log)
    const platform = pack(dir, outDir, log)
    return { abi, method, main, platform }
  } finally {
    fs.rmSync(stageDir, { recursive: true, force: true })
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  try {
    const result = packLocal({ outDir: process.argv[2], log: (line) => console.error(line) })
    console.log(`${result.main.tarball}\n${result.platform.tarball}`)
    console.error(`\nInstall both with: npm install ${result.main.tarball} ${result.platform.tarball}`)
  } catch (err) {
    console.error(err.message)
    process.exitCode = 1
  }
}
