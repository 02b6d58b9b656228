#!/usr/bin/env node
// interrupt: installs killed or aborted at random points must cost nothing.
//
//   node scripts/interrupt.mjs [--fixture alotta|small] [--rounds 20] [--mode kill|abort|both]
//                              [--plans time,fetched,imported,linking] [--mirror <dir>] [--seed N] [--keep]
//
// A clean install of the fixture is made first, as the reference (its tree, its store's file
// names). Then each round starts cold (empty store, no node_modules) at the same paths and
//   kill:  runs the CLI (--reporter=ndjson) and SIGKILLs it at a random point, chosen in turns:
//          a random delay within the reference install's duration, after the k-th `fetched`
//          event, after the k-th `imported` event, or a random delay after the last `imported`
//          (importer links, hoisting, bins, state files);
//   abort: calls linkVirtualStore() in this process and aborts its signal at the same kinds
//          of points (a rejection must be ABORT_ERR).
// After the interruption: the store must be consistent as it is (checkStore); a new install
// must succeed (for aborts: in this same process); the project must be identical to the
// reference (paths, link targets, modes, contents, link counts, .modules.yaml but prunedAt, pnpm's workspace state but its times),
// the store must hold exactly the reference's blobs, and checkStore must find no problem.
// Each round prints one line; the process exits 1 if any round failed.
//
// The fixtures are served from a tarball mirror (bench/fill-mirror.mjs; $PACQUET_PARITY_MIRROR
// or ~/.cache/pacquet-native/mirror) by bench/registry.mjs on 127.0.0.1.
import fs from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { diffListings, formatDiff, listTree } from './tree-diff.mjs'
import { checkStore } from '../__test__/helpers/store-check.mjs'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const CLI = path.join(ROOT, 'cli', 'pacquet-native.js')
const require = createRequire(import.meta.url)
const { FILE: WORKSPACE_STATE, comparableWorkspaceState } = require('../cli/workspace-state.js')

export const KILL_PLANS = ['time', 'fetched', 'imported', 'linking']

/** A seeded PRNG (mulberry32), so a failing series can be replayed with --seed. */
export function random (seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Where an install was, judged from the events seen so far. */
export function stageOf (seen, total) {
  if (seen.done) return 'finished'
  if (!seen.events) return 'startup'
  if (seen.fetched < total) return 'fetch+import' // a package is imported as soon as it is stored
  if (seen.imported < total) return 'importing'
  return 'linking'
}

function tally (seen, e) {
  seen.events++
  if (e.name === 'pnpm:progress') {
    if (e.status === 'fetched' || e.status === 'found_in_store') seen.fetched++
    else if (e.status === 'imported') seen.imported++
  } else if (e.name === 'pnpm:stage' && e.stage === 'importing_done') {
    seen.done = true
  }
}

/**
 * A kill or abort point: `{ kind, ms }` (a delay from the start) or `{ kind, after, n, ms }`
 * (the n-th event of that status, then a delay).
 */
export function pickPoint (kind, rand, ref) {
  const n = Math.max(1, Math.floor(rand() * ref.total))
  switch (kind) {
    case 'time': return { kind, ms: Math.floor(rand() * ref.durationMs) }
    case 'fetched': return { kind, after: 'fetched', n, ms: 0 }
    case 'imported': return { kind, after: 'imported', n, ms: 0 }
    // (linkMs runs to the process's exit: aim at its first part, where the links are made)
    default: return { kind, after: 'imported', n: ref.total, ms: Math.floor(rand() * ref.linkMs * 0.6) }
  }
}

/** Calls `fire` once the point is reached; returns the onEvent hook and a start() for timers. */
function armPoint (point, seen, fire) {
  let armed = true
  let timer = null
  const go = () => { if (armed) { armed = false; fire() } }
  const afterDelay = () => { if (point.ms) timer = setTimeout(go, point.ms); else go() }
  return {
    start () { if (!point.after) afterDelay() },
    disarm () { armed = false; clearTimeout(timer) },
    onEvent () {
      if (armed && point.after && seen[point.after] >= point.n && !point.reached) {
        point.reached = true
        afterDelay()
      }
    }
  }
}

/** The CLI, with ndjson events parsed as they come; resolves with status and events seen. */
export function runCli (args, { env, timeout = 300_000, onEvent, onSpawn } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let buf = ''
    let stderr = ''
    const events = []
    const timer = setTimeout(() => child.kill('SIGKILL'), timeout)
    child.stdout.setEncoding('utf8').on('data', (d) => {
      buf += d
      let nl
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        let e
        try { e = JSON.parse(line) } catch { continue }
        events.push(e)
        onEvent?.(e)
      }
    })
    child.stderr.setEncoding('utf8').on('data', (d) => { stderr += d })
    child.on('error', (e) => { clearTimeout(timer); reject(e) })
    child.on('close', (status, signal) => { clearTimeout(timer); resolve({ status, signal, events, stderr }) })
    onSpawn?.(child)
  })
}

function cliEnv (home) {
  const env = {}
  for (const [k, v] of Object.entries(process.env)) if (!/^(npm|pnpm)_/i.test(k) && k !== 'NODE_TEST_CONTEXT') env[k] = v
  fs.mkdirSync(home, { recursive: true })
  return { ...env, HOME: home, XDG_CONFIG_HOME: path.join(home, '.config'), NO_COLOR: '1' }
}

function readModules (dir) {
  try {
    const m = JSON.parse(fs.readFileSync(path.join(dir, 'node_modules', '.modules.yaml'), 'utf8'))
    delete m.prunedAt // the time of the install
    return m
  } catch (e) {
    return { unreadable: e.message }
  }
}

/** pnpm's workspace state, but the moment of the install. */
function readWorkspaceState (dir) {
  try {
    return comparableWorkspaceState(JSON.parse(fs.readFileSync(path.join(dir, 'node_modules', WORKSPACE_STATE), 'utf8')))
  } catch (e) {
    return { unreadable: e.message }
  }
}

/** Names of the store's blobs (the store is content-addressed: a name is its content). */
function blobNames (storeDir) {
  const files = path.join(storeDir, 'v11', 'files')
  const out = []
  if (!fs.existsSync(files)) return out
  for (const shard of fs.readdirSync(files)) {
    for (const name of fs.readdirSync(path.join(files, shard))) out.push(`${shard}/${name}`)
  }
  return out.sort()
}

function short (value) {
  const s = JSON.stringify(value) ?? 'absent'
  return s.length > 80 ? `${s.slice(0, 77)}...` : s
}

/** An install stopped early enough has created no store at all: nothing to check then. */
async function checkStoreIfAny (storeDir) {
  return fs.existsSync(path.join(storeDir, 'v11')) ? checkStore(storeDir) : []
}

/** What must hold after an interruption and a new install. Returns a list of problems. */
export async function compareWithReference (ref, { dir, storeDir }, { viaCli = true } = {}) {
  const problems = []
  const tree = await listTree(dir)
  const diff = diffListings(ref.tree, tree, { mode: true, hash: true })
  // pnpm's workspace state is the CLI's to write: an install through the API has none.
  if (!viaCli) diff.onlyA = diff.onlyA.filter(p => p !== `node_modules/${WORKSPACE_STATE}`)
  for (const [p, e] of ref.tree) {
    const o = tree.get(p)
    if (e.type === 'file' && o?.type === 'file' && e.nlink !== o.nlink && p !== 'node_modules/.modules.yaml') {
      diff.differ.push({ path: p, fields: [{ field: 'nlink', a: e.nlink, b: o.nlink }] })
    }
  }
  diff.differ = diff.differ.filter(d => d.path !== 'node_modules/.modules.yaml' && d.path !== `node_modules/${WORKSPACE_STATE}`)
  const lines = formatDiff(diff, ref.tree, tree, { labels: ['clean install', 'after interruption'], limit: 20 })
  if (lines.length) problems.push(`tree differs from a clean install:\n  ${lines.join('\n  ')}`)
  const modules = readModules(dir)
  const fields = [...new Set([...Object.keys(modules), ...Object.keys(ref.modules)])]
    .filter(k => JSON.stringify(modules[k]) !== JSON.stringify(ref.modules[k]))
  if (fields.length) {
    problems.push(`.modules.yaml differs (prunedAt aside): ${fields.map(k => `${k}: ${short(ref.modules[k])} in a clean install, ${short(modules[k])} here`).join('; ')}`)
  }
  if (viaCli && JSON.stringify(readWorkspaceState(dir)) !== JSON.stringify(ref.workspaceState)) {
    problems.push(`${WORKSPACE_STATE} differs from a clean install's (the time of the install aside)`)
  }
  const blobs = blobNames(storeDir)
  if (blobs.join('\n') !== ref.blobs.join('\n')) {
    const have = new Set(blobs)
    const want = new Set(ref.blobs)
    problems.push(`store blobs differ: ${ref.blobs.filter(b => !have.has(b)).length} missing, ${blobs.filter(b => !want.has(b)).length} extra`)
  }
  for (const p of await checkStore(storeDir)) problems.push(`store: ${p}`)
  return problems
}

/**
 * The setting of a series: a project writer, paths, and the reference made by a clean
 * install. `writeProject(dir, storeDir, registryUrl)` lays the project out afresh.
 */
export async function makeReference ({ work, writeProject, registryUrl, extraArgs = [], storeCheck = true }) {
  const dir = path.join(work, 'project')
  const storeDir = path.join(work, 'store')
  const home = path.join(work, 'home')
  const env = cliEnv(home)
  const args = ['install', '--dir', dir, '--store-dir', storeDir, '--registry', registryUrl, '--reporter=ndjson', ...extraArgs]
  const fresh = () => {
    fs.rmSync(dir, { recursive: true, force: true })
    fs.rmSync(storeDir, { recursive: true, force: true })
    writeProject(dir, storeDir, registryUrl)
  }
  fresh()
  const started = Date.now()
  let lastImported = started
  let total = 0
  const r = await runCli(args, {
    env,
    onEvent: (e) => {
      if (e.name === 'pnpm:progress' && e.status === 'imported') lastImported = Date.now()
      if (e.name === 'pnpm:stats' && e.added != null) total = e.added
    }
  })
  const ended = Date.now()
  if (r.status !== 0) throw new Error(`the reference install failed (${r.status ?? r.signal}):\n${r.stderr}`)
  const ref = {
    dir,
    storeDir,
    env,
    args,
    fresh,
    total,
    durationMs: ended - started,
    linkMs: Math.max(1, ended - lastImported),
    tree: await listTree(dir),
    modules: readModules(dir),
    workspaceState: readWorkspaceState(dir),
    blobs: blobNames(storeDir)
  }
  if (storeCheck) {
    const problems = await checkStore(storeDir)
    if (problems.length) throw new Error(`the reference store is inconsistent:\n${problems.join('\n')}`)
  }
  return ref
}

/** One kill round: a cold install SIGKILLed at `point`, then an install that must succeed. */
export async function killRound (ref, point) {
  ref.fresh()
  const seen = { events: 0, fetched: 0, imported: 0, done: false }
  let killedAt = null
  let child
  const arm = armPoint(point, seen, () => {
    killedAt = stageOf(seen, ref.total)
    child.kill('SIGKILL')
  })
  const first = await runCli(ref.args, {
    env: ref.env,
    onSpawn: (c) => { child = c; arm.start() },
    onEvent: (e) => { tally(seen, e); arm.onEvent() }
  })
  const killed = first.signal === 'SIGKILL'
  const stage = killed ? killedAt : 'finished'
  const result = { point, stage, killed, seen: { fetched: seen.fetched, imported: seen.imported }, problems: [] }
  if (!killed && first.status !== 0) result.problems.push(`the install to kill failed by itself (${first.status}): ${first.stderr}`)
  for (const p of await checkStoreIfAny(ref.storeDir)) result.problems.push(`store right after the kill: ${p}`)
  const second = await runCli(ref.args, { env: ref.env })
  result.next = second.status === 0 ? 'ok' : `exit ${second.status ?? second.signal}`
  if (second.status !== 0) {
    result.problems.push(`the next install failed:\n${second.stderr}`)
    return result
  }
  result.problems.push(...await compareWithReference(ref, ref))
  return result
}

/**
 * Options for calling the addon in this process as the CLI would (pnpm-workspace.yaml read
 * the same way), so that its tree compares with the CLI's reference.
 */
export function addonOptions (ref, extra = {}) {
  const cli = require('../cli/pacquet-native.js')
  const args = cli.parseArgs(ref.args.filter(a => !a.startsWith('--reporter')))
  const settings = cli.readWorkspaceSettings(ref.dir)
  return { ...cli.buildOptions(args, settings, { dir: ref.dir, cwd: ref.dir, env: ref.env }), ...extra }
}

/** One abort round, in this process: a cold install aborted at `point`, then an install. */
export async function abortRound (ref, point) {
  const { linkVirtualStore } = require('../index.js')
  ref.fresh()
  const seen = { events: 0, fetched: 0, imported: 0, done: false }
  const controller = new AbortController()
  let abortedAt = null
  const arm = armPoint(point, seen, () => {
    abortedAt = stageOf(seen, ref.total)
    controller.abort()
  })
  const lockfile = path.join(ref.dir, 'pnpm-lock.yaml')
  const options = addonOptions(ref, {
    signal: controller.signal,
    onProgress: (e) => { tally(seen, e); arm.onEvent() }
  })
  const result = { point, stage: null, aborted: false, seen: null, problems: [] }
  arm.start()
  try {
    await linkVirtualStore(lockfile, options)
    result.stage = 'finished'
  } catch (e) {
    if (e?.code !== 'ABORT_ERR') result.problems.push(`the aborted install rejected with ${e?.code}: ${e?.message}`)
    result.aborted = true
    result.stage = abortedAt ?? 'unknown'
  }
  arm.disarm() // a late timer must not fire into the next install
  result.seen = { fetched: seen.fetched, imported: seen.imported }
  for (const p of await checkStoreIfAny(ref.storeDir)) result.problems.push(`store right after the abort: ${p}`)
  try {
    await linkVirtualStore(lockfile, addonOptions(ref))
    result.next = 'ok'
  } catch (e) {
    result.next = e?.code ?? 'error'
    result.problems.push(`the next install in this process failed: ${e?.code} ${e?.message}`)
    return result
  }
  result.problems.push(...await compareWithReference(ref, ref, { viaCli: false }))
  return result
}

function describe (point) {
  return point.after ? `${point.kind}: after ${point.after} #${point.n}${point.ms ? ` + ${point.ms} ms` : ''}` : `${point.kind}: ${point.ms} ms`
}

export function formatRound (label, i, r) {
  const verdict = r.problems.length ? 'FAIL' : 'ok'
  const lines = [`${label} ${String(i + 1).padStart(2)}  ${describe(r.point).padEnd(34)} stage=${(r.stage ?? '?').padEnd(12)} ` +
    `fetched=${r.seen?.fetched ?? '?'} imported=${r.seen?.imported ?? '?'}  next=${r.next ?? '-'}  ${verdict}`]
  for (const p of r.problems) lines.push(`    ${p}`)
  return lines.join('\n')
}

export function summarize (label, results) {
  const byStage = {}
  for (const r of results) byStage[r.stage] = (byStage[r.stage] ?? 0) + 1
  const failed = results.filter(r => r.problems.length).length
  return `${label}: ${results.length} rounds, stages ${Object.entries(byStage).map(([k, v]) => `${k}=${v}`).join(' ')}; ` +
    `next installs ok: ${results.filter(r => r.next === 'ok').length}/${results.length}; ` +
    `identical trees and consistent stores: ${results.length - failed}/${results.length}`
}

function parseCli (argv) {
  const o = { fixture: 'alotta', rounds: 20, mode: 'both', plans: KILL_PLANS, seed: Date.now() % 1_000_000, keep: false }
  for (let i = 0; i < argv.length; i++) {
    const [k, inline] = argv[i].split('=', 2)
    const val = () => inline ?? argv[++i]
    if (k === '--fixture') o.fixture = val()
    else if (k === '--rounds') o.rounds = Number(val())
    else if (k === '--mode') o.mode = val()
    else if (k === '--mirror') o.mirror = val()
    else if (k === '--seed') o.seed = Number(val())
    else if (k === '--plans') o.plans = val().split(',').filter(p => KILL_PLANS.includes(p))
    else if (k === '--keep') o.keep = true
    else throw new Error(`unknown argument ${argv[i]}`)
  }
  return o
}

async function main () {
  const o = parseCli(process.argv.slice(2))
  const { startMirrorRegistry, writeFixtureProject } = await import('../__test__/helpers/pnpm.mjs')
  const mirror = o.mirror ?? process.env.PACQUET_PARITY_MIRROR ?? path.join(os.homedir(), '.cache', 'pacquet-native', 'mirror')
  if (!fs.existsSync(mirror)) throw new Error(`no mirror at ${mirror}: fill it with node bench/fill-mirror.mjs`)
  const fixtureDir = path.join(ROOT, 'bench', 'fixtures', o.fixture)
  const work = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), `pacquet-interrupt-${o.fixture}-`)))
  const registry = await startMirrorRegistry(mirror)
  // Interrupted itself (^C): the registry is a child process; do not leave it behind.
  for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => { registry.close().finally(() => process.exit(130)) })
  let failed = 0
  try {
    const ref = await makeReference({
      work,
      registryUrl: registry.url,
      writeProject: (dir, storeDir, url) => writeFixtureProject(dir, fixtureDir, { storeDir, registry: url })
    })
    console.log(`${o.fixture}: reference install of ${ref.total} packages in ${ref.durationMs} ms ` +
      `(${ref.linkMs} ms after the last import), ${ref.tree.size} tree entries, ${ref.blobs.length} blobs; seed ${o.seed}`)
    const rand = random(o.seed)
    for (const [mode, label, round] of [['kill', 'kill ', killRound], ['abort', 'abort', abortRound]]) {
      if (o.mode !== 'both' && o.mode !== mode) continue
      const results = []
      for (let i = 0; i < o.rounds; i++) {
        const r = await round(ref, pickPoint(o.plans[i % o.plans.length], rand, ref))
        results.push(r)
        console.log(formatRound(label, i, r))
      }
      console.log(summarize(`${mode} (${o.fixture})`, results))
      failed += results.filter(r => r.problems.length).length
    }
  } finally {
    await registry.close()
    if (!o.keep) fs.rmSync(work, { recursive: true, force: true })
    else console.log(`kept ${work}`)
  }
  process.exitCode = failed ? 1 : 0
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => { console.error(e); process.exitCode = 2 })
}
