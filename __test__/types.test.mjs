// The published types compile for a strict TypeScript consumer.
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import test from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..')
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc')

test('index.d.ts type-checks a strict consumer (tsc --strict --noEmit)', { skip: !fs.existsSync(tsc) && 'typescript is not installed' }, () => {
  const r = spawnSync(process.execPath, [tsc, '--strict', '--noEmit', '--target', 'es2022', '--module', 'nodenext',
    '--moduleResolution', 'nodenext', '--lib', 'es2022,dom', '--skipLibCheck', 'false',
    path.join(root, '__test__', 'types', 'consumer.ts')], { encoding: 'utf8' })
  assert.equal(r.status, 0, r.stdout + r.stderr)
})
