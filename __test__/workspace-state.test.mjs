// pnpm's workspace state as the CLI writes it (cli/workspace-state.js). The parity suite
// compares the whole file with the one pnpm 11 writes and checks that pnpm then takes the
// project as up to date; these tests pin the parts that need no pnpm: the digests (values pnpm
// 11.28 computed for bench/fixtures/small) and the settings as pnpm resolves them.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { tempDir } from './helpers/fixture.mjs'

const require = createRequire(import.meta.url)
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const { prepareWorkspaceState, recordedSettings, scanLockfile, valueDigest, writeWorkspaceState } = require('../cli/workspace-state.js')
const SMALL = path.join(ROOT, 'bench', 'fixtures', 'small')

test('digests of a manifest and of a lockfile are the ones pnpm 11 records', (t) => {
  const manifest = JSON.parse(fs.readFileSync(path.join(SMALL, 'package.json'), 'utf8'))
  assert.equal(valueDigest(manifest), '1235d58e335c2b4bdcaa9a92434d8ce0')
  const dir = tempDir(t, 'pacquet-state-')
  fs.copyFileSync(path.join(SMALL, 'package.json'), path.join(dir, 'package.json'))
  fs.copyFileSync(path.join(SMALL, 'pnpm-lock.yaml'), path.join(dir, 'pnpm-lock.yaml'))
  fs.mkdirSync(path.join(dir, 'node_modules'))
  // What an install killed while writing the record leaves: the next record takes it over.
  fs.writeFileSync(path.join(dir, 'node_modules', '.pnpm-workspace-state-v1.json.pacquet.tmp'), '{"half')
  const state = writeWorkspaceState({ dir })
  assert.deepEqual(fs.readdirSync(path.join(dir, 'node_modules')), ['.pnpm-workspace-state-v1.json'])
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(dir, 'node_modules', '.pnpm-workspace-state-v1.json'), 'utf8')), state)
  assert.equal(state.validation.lockfile, 'f2e423b59acb8e3f1e729190c700b91a')
  assert.deepEqual(state.validation.manifests, { '.': '1235d58e335c2b4bdcaa9a92434d8ce0' })
  assert.deepEqual(state.projects, { [dir]: { name: 'small-fixture', version: '0.0.1' } })
  assert.deepEqual(state.validation.localDependencies, { f2e423b59acb8e3f1e729190c700b91a: {} })
  // The record is taken after the lockfile's last change (in the same clock tick at worst:
  // pnpm then re-hashes the file instead of trusting its mtime).
  const file = state.validation.files[path.join(dir, 'pnpm-lock.yaml')]
  assert.ok(file.mtimeNs <= state.validation.recordedAtNs)
  assert.equal(state.lastValidatedTimestamp, Math.trunc(state.validation.recordedAtNs / 1e6))
})

test('a record that still holds is kept; a newer manifest, lockfile or other settings replace it', (t) => {
  const dir = tempDir(t, 'pacquet-state-')
  for (const f of ['package.json', 'pnpm-lock.yaml']) fs.copyFileSync(path.join(SMALL, f), path.join(dir, f))
  fs.mkdirSync(path.join(dir, 'node_modules'))
  const file = path.join(dir, 'node_modules', '.pnpm-workspace-state-v1.json')
  const inode = () => fs.statSync(file).ino
  const first = writeWorkspaceState({ dir })
  const kept = inode()
  assert.deepEqual(writeWorkspaceState({ dir }), first, 'nothing changed: the same record')
  assert.equal(inode(), kept, 'and the file is not rewritten')

  // The manifest changes after the record: a new record, with the manifest's new digest.
  const later = (f) => { const at = new Date(Date.now() + 5000); fs.utimesSync(path.join(dir, f), at, at) }
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'))
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ ...manifest, description: 'changed' }))
  later('package.json')
  const second = writeWorkspaceState({ dir })
  assert.notEqual(inode(), kept)
  assert.notEqual(second.validation.manifests['.'], first.validation.manifests['.'])
  assert.equal(second.validation.manifests['.'], valueDigest({ ...manifest, description: 'changed' }))

  // Other settings: a new record with them.
  const third = writeWorkspaceState({ dir, options: { include: { dependencies: true, devDependencies: false, optionalDependencies: true } } })
  assert.equal(third.settings.dev, false)
  assert.deepEqual(writeWorkspaceState({ dir }).settings, first.settings)

  // The lockfile touched (same bytes): recorded again with its new times.
  later('pnpm-lock.yaml')
  const fourth = writeWorkspaceState({ dir })
  assert.equal(fourth.validation.files[path.join(dir, 'pnpm-lock.yaml')].mtimeNs,
    Number(fs.statSync(path.join(dir, 'pnpm-lock.yaml'), { bigint: true }).mtimeNs))
  assert.equal(fourth.validation.lockfile, first.validation.lockfile)
})

test('a manifest edited while the install runs is recorded as it is at the end', (t) => {
  const dir = tempDir(t, 'pacquet-state-')
  for (const f of ['package.json', 'pnpm-lock.yaml']) fs.copyFileSync(path.join(SMALL, f), path.join(dir, f))
  const write = prepareWorkspaceState({ dir })
  // The install (here: nothing) makes node_modules; meanwhile the manifest changes.
  fs.mkdirSync(path.join(dir, 'node_modules'))
  const edited = { ...JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')), description: 'edited' }
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify(edited))
  const at = new Date(Date.now() + 5000)
  fs.utimesSync(path.join(dir, 'package.json'), at, at)
  assert.equal(write().validation.manifests['.'], valueDigest(edited))
})

test('settings: pnpm 11 defaults, the workspace file, the flags and resolved store paths', () => {
  const defaults = recordedSettings({}, {}, {})
  assert.equal(defaults.minimumReleaseAge, 1440)
  assert.equal(defaults.minimumReleaseAgeStrict, undefined)
  assert.equal(defaults.dangerouslyAllowAllBuilds, false)
  assert.deepEqual(defaults.hoistPattern, ['*'])
  assert.equal('storeDir' in defaults, false)
  assert.deepEqual(defaults.registryRoutes, {})

  const s = recordedSettings(
    { minimumReleaseAge: 0, allowBuilds: { esbuild: true }, packages: ['packages/*'], shamefullyHoist: true },
    { storeDir: '/s', virtualStoreDir: '/p/vs', include: { dependencies: true, devDependencies: false, optionalDependencies: true } },
    { '@b': 'http://127.0.0.1:1/b/', '@a': 'http://127.0.0.1:1/a/' }
  )
  assert.equal(s.minimumReleaseAgeStrict, true)
  assert.equal('dangerouslyAllowAllBuilds' in s, false)
  assert.deepEqual(s.workspacePackagePatterns, ['packages/*'])
  assert.deepEqual(s.publicHoistPattern, ['*'])
  assert.equal(s.storeDir, '/s/v11')
  assert.equal(s.virtualStoreDir, '/p/vs')
  assert.equal(s.dev, false)
  assert.equal(s.production, true)
  assert.deepEqual(Object.keys(s.registryRoutes), ['@a', '@b'])
})

test('importers and local packages come from the lockfile', () => {
  const text = fs.readFileSync(path.join(ROOT, 'bench', 'fixtures', 'workspace', 'pnpm-lock.yaml'), 'utf8')
  assert.deepEqual(scanLockfile(text), {
    importers: ['.', 'packages/app', 'packages/lib', 'packages/tool', 'packages/util'],
    directories: ['packages/util', 'packages/lib', 'vendor/local-thing'],
    tarballs: []
  })
})
