// Parity with real pnpm 11: each bench fixture is installed once by pnpm 11 and once by this
// package's CLI, at the same path, with a store at the same path, and the two projects are
// compared entry by entry (paths, link targets, file modes, contents, hardlinked or copied).
// Then pnpm 11 is run on our tree: it must find it up to date, change nothing, and list the
// same dependencies as on its own tree.
//
// Needs (else the suite is skipped with the reason; with PACQUET_PARITY_REQUIRED=1, as
// .ci/run sets it, a missing piece fails instead):
//   PACQUET_PARITY_MIRROR  a tarball mirror filled by
//                          `node bench/fill-mirror.mjs <dir> bench/fixtures/{small,alotta,workspace}/pnpm-lock.yaml`
//   pnpm 11                the `pnpm` devDependency (`npm install`)
//   Node.js >= 22.13       for pnpm 11: PACQUET_PARITY_NODE, or this Node.js if recent enough
// The tests themselves only talk to a registry on 127.0.0.1 (bench/registry.mjs on the mirror).
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { isDeepStrictEqual } from 'node:util'
import { createRequire } from 'node:module'
import { diffListings, formatDiff, listTree } from '../scripts/tree-diff.mjs'
import { makeTempDir, removeDir, run } from './helpers/fixture.mjs'
import { ROOT, findPnpm, startMirrorRegistry, toolEnv, writeFixtureProject } from './helpers/pnpm.mjs'

const { comparableWorkspaceState } = createRequire(import.meta.url)('../cli/workspace-state.js')
const { version: OUR_VERSION } = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'))
const CLI = path.join(ROOT, 'cli', 'pacquet-native.js')
const FIXTURES = path.join(ROOT, 'bench', 'fixtures')
const MIRROR = process.env.PACQUET_PARITY_MIRROR
const REQUIRED = process.env.PACQUET_PARITY_REQUIRED === '1'
const PROCESS_TIMEOUT = 180_000 // per install; a hang guard (alotta takes ~10 s per tool on 2 cores)

// ---------------------------------------------------------------------------------------
// What may differ, and why.

// Files one tool writes and the other does not: bookkeeping of the tool, not layout.
const ONLY_PNPM = {}
const ONLY_OURS = {
  // the addon's repeat-install proof (lockfile hash, settings, marker files). pnpm ignores
  // dot-entries of node_modules it does not know (even `pnpm clean` leaves them).
  'node_modules/.pacquet-native-state.json': true
}
// Compared parsed, field by field (below), not byte for byte.
const PARSED = 'node_modules/.modules.yaml'
const WORKSPACE_STATE = 'node_modules/.pnpm-workspace-state-v1.json'
// pnpm's workspace state (written by the CLI, see cli/workspace-state.js) is compared without
// the fields that record when the install ran and the lockfile's mtime and ctime (each install
// copies the fixture anew). Everything else (settings, digests of the lockfile and manifests,
// projects, local dependencies) must be equal.

// .modules.yaml fields that name the tool or the time of the install; their shape is checked.
const TOOL_FIELDS = {
  // the tool that wrote node_modules; pnpm 11 reads it only in which-pm (to pick the package
  // manager that prepares a git-hosted package in its own directory), never for this project.
  packageManager: (pnpm, ours, { pnpmVersion }) => {
    assert.equal(pnpm, `pnpm@${pnpmVersion}`)
    assert.equal(ours, `@pacquet/native@${OUR_VERSION}`)
  },
  // when the install ran (JS `Date#toUTCString()`); pnpm uses it to expire its cache
  prunedAt: (pnpm, ours) => {
    for (const v of [pnpm, ours]) {
      assert.equal(typeof v, 'string')
      assert.equal(new Date(v).toUTCString(), v, `prunedAt ${v} is a UTC date string`)
    }
    assert.ok(new Date(ours) >= new Date(pnpm), 'ours was installed after pnpm\'s')
  }
}

// Lists whose order pnpm 11 does not derive from the lockfile: it appends to them in the order
// its headless install's dependency graph receives nodes, i.e. as each package's fetch call
// resolves (alotta with ignoreScripts: pendingBuilds [core-js@2.6.12, core-js@3.49.0,
// fsevents@1.2.13, es5-ext@0.10.64], where the lockfile has es5-ext before fsevents). That
// order depends on I/O timing and means nothing, so these lists are compared as sets.
const ORDER_FREE = new Set(['pendingBuilds', 'ignoredBuilds', 'skipped'])

// Fields where the addon is known to differ today (the lead must fix Rust code), as
// { field: 'reason' }; compared in a `todo` subtest so the difference stays visible without
// failing the run. (ignoredBuilds was one until the addon learnt pnpm's rule: no field when
// scripts are ignored or no package needs a build, else the list, possibly [].)
const MODULES_YAML_TODO = {}

// What runs: each fixture as bench/run-scenarios.sh sets it up, and alotta once more with
// `ignoreScripts: true` (packages that need a build become pendingBuilds, and pnpm links bins
// by another route), and a workspace of four projects with `link:`, injected (`file:`)
// workspace packages and a local directory package. `treeTodo`: paths known to differ today,
// compared in a todo subtest. `relinksLocal`: pnpm never takes a tree with local directory
// packages as up to date (their files may have changed): it re-imports them, on its own tree
// as on ours, and the test then asks for the same output and the same changes on both.
const SCENARIOS = [
  { name: 'small', fixture: 'small' },
  { name: 'alotta', fixture: 'alotta' },
  {
    name: 'alotta, ignoreScripts: true',
    fixture: 'alotta',
    workspace: 'ignoreScripts: true\n'
  },
  { name: 'workspace', fixture: 'workspace', relinksLocal: true }
]

// ---------------------------------------------------------------------------------------

const tools = findPnpm()
let skipReason = false
if (!MIRROR) {
  skipReason = 'PACQUET_PARITY_MIRROR is not set: fill a mirror with `node bench/fill-mirror.mjs <dir> ' +
    'bench/fixtures/{small,alotta,workspace}/pnpm-lock.yaml` and point it there (.ci/run does)'
} else if (!fs.existsSync(MIRROR)) {
  skipReason = `PACQUET_PARITY_MIRROR=${MIRROR} does not exist`
} else if (tools.reason) {
  skipReason = tools.reason
}

if (skipReason && REQUIRED) {
  test('parity with pnpm 11: prerequisites (PACQUET_PARITY_REQUIRED=1)', () => assert.fail(skipReason))
}

for (const scenario of SCENARIOS) {
  test(`parity with pnpm ${tools.version ?? 11}: ${scenario.name}`, { skip: skipReason, timeout: 600_000 }, async (t) => {
    await parity(t, scenario)
  })
}

async function parity (t, { fixture, workspace = '', treeTodo, relinksLocal = false }) {
  const tmp = makeTempDir(`pacquet-parity-${fixture}-`)
  const registry = await startMirrorRegistry(MIRROR)
  t.after(async () => {
    try { await registry.close() } finally { removeDir(tmp) }
  })
  const fixtureDir = path.join(FIXTURES, fixture)
  const project = path.join(tmp, 'project') // both installs happen here: shims hold absolute paths
  const storeDir = path.join(tmp, 'store') //  and .modules.yaml the store's
  const pnpmTree = path.join(tmp, 'pnpm-tree')
  const pnpmStore = path.join(tmp, 'pnpm-store')
  const home = (label) => path.join(tmp, `home-${label}`)
  const pnpm = (args, label) =>
    run(tools.node, [tools.pnpm, ...args], { cwd: project, env: toolEnv(home(label), tools.nodeDir), timeout: PROCESS_TIMEOUT })
  const ctx = { pnpmVersion: tools.version }
  let clock = Date.now()
  const step = (what) => { const now = Date.now(); t.diagnostic(`${what}: ${((now - clock) / 1000).toFixed(1)} s`); clock = now }

  // 1. pnpm 11 installs at <tmp>/project; its `pnpm ls` is taken there; then the project and
  //    its store move aside (a move keeps the hardlinks between them), freeing both paths.
  writeFixtureProject(project, fixtureDir, { storeDir, registry: registry.url, workspace })
  const pnpmInstall = await pnpm(['install', '--frozen-lockfile', '--store-dir', storeDir, '--registry', registry.url], 'pnpm')
  assert.equal(pnpmInstall.status, 0, `pnpm install failed:\n${pnpmInstall.stdout}\n${pnpmInstall.stderr}`)
  step(`pnpm ${tools.version} install (Node.js ${tools.nodeVersion})`)
  const pnpmLs = await pnpm(['ls', '--depth', '0'], 'pnpm')
  assert.equal(pnpmLs.status, 0, `pnpm ls failed:\n${pnpmLs.stdout}\n${pnpmLs.stderr}`)
  fs.renameSync(project, pnpmTree)
  fs.renameSync(storeDir, pnpmStore)
  step('pnpm ls')

  // 2. Ours, through the CLI, at the same path with an empty store at the same path.
  writeFixtureProject(project, fixtureDir, { storeDir, registry: registry.url, workspace })
  const ours = await run(process.execPath, [CLI, 'install', '--dir', project], {
    cwd: tmp, env: toolEnv(home('ours')), timeout: PROCESS_TIMEOUT
  })
  assert.equal(ours.status, 0, `pacquet-native install failed:\n${ours.stdout}\n${ours.stderr}`)
  step('pacquet-native install')

  const [pnpmList, ourList] = await Promise.all([listTree(pnpmTree), listTree(project)])
  step(`listing both trees (${pnpmList.size} and ${ourList.size} entries)`)

  const diff = diffListings(pnpmList, ourList, { mode: true, hash: true, nlink: true })
  const inTodo = (p) => treeTodo?.pattern.test(p) ?? false
  const treeDiff = (keep) => ({
    onlyA: diff.onlyA.filter(p => !ONLY_PNPM[p] && keep(p)),
    onlyB: diff.onlyB.filter(p => !ONLY_OURS[p] && keep(p)),
    differ: diff.differ.filter(d => d.path !== PARSED && d.path !== WORKSPACE_STATE && keep(d.path))
  })
  const assertSameTrees = (rest) => {
    const lines = formatDiff(rest, pnpmList, ourList, { labels: ['pnpm 11', 'ours'], limit: 60 })
    assert.deepEqual(lines, [], `${lines.length} differences (- pnpm only, + ours only, ~ differ; pnpm | ours):\n${lines.join('\n')}`)
  }

  await t.test('the projects are identical: paths, link targets, modes, contents, hardlinked or copied', () => {
    assert.ok(pnpmList.has('node_modules/.pnpm/lock.yaml') && pnpmList.size > 100, 'pnpm\'s tree was listed')
    assertSameTrees(treeDiff(p => !inTodo(p)))
    // the allowed ones are what they claim to be
    assert.ok(ourList.has(PARSED) && pnpmList.has(PARSED), '.modules.yaml on both sides')
    // (no repeat-install proof where local directory packages are re-imported on every install)
    assert.deepEqual(diff.onlyB.filter(p => ONLY_OURS[p]), relinksLocal ? [] : Object.keys(ONLY_OURS), 'our state file is there')
  })

  if (treeTodo) {
    await t.test(`the projects are identical: ${treeTodo.pattern}`, { todo: treeTodo.reason }, () => {
      assertSameTrees(treeDiff(inTodo))
    })
  }

  await t.test('pnpm\'s workspace state: the same settings, projects and digests', () => {
    const [pnpmState, ourState] = [pnpmTree, project].map(dir => JSON.parse(fs.readFileSync(path.join(dir, WORKSPACE_STATE), 'utf8')))
    assert.deepEqual(comparableWorkspaceState(ourState), comparableWorkspaceState(pnpmState))
  })

  const pnpmModules = readModulesYaml(pnpmTree)
  const ourModules = readModulesYaml(project)

  await t.test('.modules.yaml: the same fields with the same values', () => {
    const differences = []
    for (const field of new Set([...Object.keys(pnpmModules), ...Object.keys(ourModules)])) {
      if (TOOL_FIELDS[field] || MODULES_YAML_TODO[field]) continue
      if (!isDeepStrictEqual(normalizeField(field, pnpmModules[field]), normalizeField(field, ourModules[field]))) {
        differences.push({ field, pnpm: summarize(pnpmModules[field]), ours: summarize(ourModules[field]) })
      }
    }
    assert.deepEqual(differences, [])
    assert.deepEqual(Object.keys(ourModules).filter(k => !(k in pnpmModules) && !MODULES_YAML_TODO[k]), [], 'no field of our own')
    for (const [field, check] of Object.entries(TOOL_FIELDS)) {
      assert.ok(field in pnpmModules && field in ourModules, `${field} on both sides`)
      check(pnpmModules[field], ourModules[field], ctx)
    }
  })

  for (const [field, reason] of Object.entries(MODULES_YAML_TODO)) {
    await t.test(`.modules.yaml: ${field}`, { todo: reason }, () => {
      assert.equal(field in ourModules, field in pnpmModules, `${field} present in pnpm's: ${field in pnpmModules}, in ours: ${field in ourModules}`)
      assert.deepEqual(normalizeField(field, ourModules[field]), normalizeField(field, pnpmModules[field]))
    })
  }

  await t.test('pnpm ls --depth 0 lists the same on our tree', async () => {
    const ls = await pnpm(['ls', '--depth', '0'], 'ours')
    assert.equal(ls.status, 0, `pnpm ls failed:\n${ls.stdout}\n${ls.stderr}`)
    assert.match(pnpmLs.stdout, /dependencies:/)
    assert.equal(ls.stdout, pnpmLs.stdout)
  })

  // 3. pnpm 11 on our tree, offline, with our store; then, where pnpm re-links local packages,
  //    on its own tree too (moved back to the project path, its store to the store path).
  step('comparisons, pnpm ls on ours')
  const offlineArgs = ['install', '--frozen-lockfile', '--offline', '--store-dir', storeDir]
  const offline = await pnpm(offlineArgs, 'ours')
  const afterList = await listTree(project)
  step('pnpm install --offline on ours, listing ours again')
  const changes = diffListings(ourList, afterList, { mode: true, hash: true, nlink: true })
  const changeLines = formatDiff(changes, ourList, afterList, { labels: ['before', 'after'], limit: 60 })
  const ourModulesAfter = readModulesYaml(project)
  const outputOf = (r) => `${r.stdout}\n${r.stderr}`

  await t.test('pnpm install --frozen-lockfile --offline succeeds on our tree', () => {
    assert.equal(offline.status, 0, `pnpm install --offline failed:\n${outputOf(offline)}`)
    assert.doesNotMatch(outputOf(offline), /downloaded [1-9]/, `pnpm downloaded packages:\n${outputOf(offline)}`)
  })

  if (!relinksLocal) {
    await t.test('pnpm install --frozen-lockfile --offline finds our tree up to date', () => {
      const out = outputOf(offline)
      assert.match(out, /Already up to date/, out)
      assert.doesNotMatch(out, /Lockfile is up to date, resolution step is skipped/, `pnpm did not take its up-to-date fast path:\n${out}`)
      assert.doesNotMatch(out, /Packages: [+-]\d/, `pnpm added or removed packages:\n${out}`)
    })
    await t.test('pnpm install --offline changes no file in our tree', () => {
      assert.deepEqual(changeLines, [], `pnpm changed ${changeLines.length} entries (- before only, + after only, ~ differ; before | after):\n${changeLines.join('\n')}`)
    })
    return
  }

  fs.renameSync(project, path.join(tmp, 'our-tree'))
  fs.renameSync(storeDir, path.join(tmp, 'our-store'))
  fs.renameSync(pnpmTree, project)
  fs.renameSync(pnpmStore, storeDir)
  const pnpmOffline = await pnpm(offlineArgs, 'pnpm')
  const pnpmAfterList = await listTree(project)
  step('pnpm install --offline on its own tree, listing it again')

  await t.test('pnpm install --offline does to our tree what it does to its own', () => {
    assert.equal(pnpmOffline.status, 0, `pnpm install --offline failed on its own tree:\n${outputOf(pnpmOffline)}`)
    const summary = (r) => outputOf(r).split('\n').filter(l => /^(Already up to date|Packages: |Progress: .*done|Lockfile is up to date)/.test(l))
    assert.deepEqual(summary(offline), summary(pnpmOffline))
    const pnpmChanges = diffListings(pnpmList, pnpmAfterList, { mode: true, hash: true, nlink: true })
    // .modules.yaml is rewritten on ours alone because it names another packageManager; after
    // the re-link both say the same (prunedAt aside: the time of each install).
    const changed = (c) => ({ onlyA: c.onlyA, onlyB: c.onlyB, differ: c.differ.map(d => d.path).filter(p => p !== PARSED).sort() })
    assert.deepEqual(changed(changes), changed(pnpmChanges))
    const withoutTime = ({ prunedAt, ...rest }) => rest
    assert.deepEqual(withoutTime(ourModulesAfter), withoutTime(readModulesYaml(project)))
  })
}

/** A .modules.yaml value as compared: lists whose order carries no meaning are sorted. */
function normalizeField (field, value) {
  return ORDER_FREE.has(field) && Array.isArray(value) ? [...value].sort() : value
}

/** node_modules/.modules.yaml parsed; pnpm writes it as JSON (which is YAML). */
function readModulesYaml (projectDir) {
  const file = path.join(projectDir, 'node_modules', '.modules.yaml')
  const text = fs.readFileSync(file, 'utf8')
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new Error(`${file} is not JSON: ${err.message}\n${text.slice(0, 500)}`)
  }
}

function summarize (value) {
  const s = JSON.stringify(value)
  return s === undefined ? '(absent)' : s.length > 400 ? `${s.slice(0, 400)}… (${s.length} chars)` : s
}
