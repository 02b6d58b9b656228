#!/usr/bin/env node
// pnpm's own progress output for an install done by @pacquet/native: each event that
// `onProgress` receives is logged through @pnpm/logger, whose stream parser feeds pnpm's
// default reporter, the same path pnpm's own installs take.
//
//   npm install @pacquet/native @pnpm/default-reporter@1002 @pnpm/logger@1001
//   node pnpm-reporter.mjs [project dir] [--registry <url>] [--store-dir <dir>]
import { createRequire } from 'node:module'
import path from 'node:path'
import { parseArgs } from 'node:util'

const require = createRequire(import.meta.url)
// In a project of your own: require('@pacquet/native').
const { linkVirtualStore } = require('../index.js')
const { initDefaultReporter } = require('@pnpm/default-reporter')
const { logger, streamParser } = require('@pnpm/logger')

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { registry: { type: 'string' }, 'store-dir': { type: 'string' } }
})
const dir = path.resolve(positionals[0] ?? '.')

const stopReporting = initDefaultReporter({
  streamParser,
  // The reporter prints the summary ("dependencies: + …") of the project at `config.dir`.
  context: { argv: ['install'], config: { dir } },
  // Redrawn on a terminal, appended lines elsewhere (CI logs, pipes), throttled as pnpm does.
  reportingOptions: process.stdout.isTTY
    ? { appendOnly: false, throttleProgress: 200 }
    : { appendOnly: true, throttleProgress: 1000 }
})
// The reporter starts listening on the next timer tick; events logged before would be lost.
await new Promise((resolve) => setTimeout(resolve, 0))

try {
  await linkVirtualStore(dir, {
    storeDir: values['store-dir'],
    registries: values.registry ? { default: values.registry } : undefined,
    // `{ name: 'pnpm:progress', level: 'debug', ...fields }` is what
    // logger('progress').debug(fields) logs: pnpm's loggers are named channels of one logger.
    onProgress: ({ name, level, ...fields }) => logger(name.slice('pnpm:'.length))[level](fields)
  })
} catch (err) {
  // Printed here rather than by the reporter, which knows pnpm's remedies, not the addon's hints.
  process.exitCode = 1
  console.error(`${err.code}: ${err.message}${err.hint ? `\n${err.hint}` : ''}`)
} finally {
  // Logs travel through a stream: let the last ones reach the reporter before it stops.
  await new Promise((resolve) => setTimeout(resolve, 0))
  await new Promise((resolve) => setImmediate(resolve))
  stopReporting()
}
