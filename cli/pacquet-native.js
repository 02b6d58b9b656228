#!/usr/bin/env node
'use strict'
// pacquet-native: a frozen-lockfile `install` on top of the native addon.
// It needs nothing but the addon. pnpm's own reporter (@pnpm/default-reporter with
// @pnpm/logger) renders `--reporter=default` when those optional peer dependencies are
// installed; without them the built-in renderer below stands in.
//
// Requiring this file (instead of running it) exposes its parts for tests.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const { version: VERSION } = require('../package.json')
const { prepareWorkspaceState } = require('./workspace-state.js')

const HELP = `Usage: pacquet-native install [options]
       pacquet-native store path|status [options]

install       Installs node_modules from pnpm-lock.yaml (frozen lockfile) with pnpm's layout and store.
store path    Prints the store directory the install uses.
store status  Lists installed packages whose files differ from the store's record; exit 1 if any.

Options:
  -C, --dir <dir>              Project directory (default: the current directory)
      --store-dir <dir>        The pnpm store directory (\`/v11\` is appended)
      --virtual-store-dir <dir> Where the virtual store goes (default: node_modules/.pnpm)
      --registry <url>         The default registry (default: from npm config)
  -P, --prod                   Install dependencies and optionalDependencies only
  -D, --dev                    Install devDependencies only
      --import-method <m>      auto | hardlink | clone | copy | clone-or-copy
      --network-concurrency <n> Maximum number of concurrent downloads
      --offline                Use only the store; fail on anything missing from it
      --reporter <name>        default (pnpm's reporter when installed) | append-only | ndjson | silent
  -h, --help                   Show this help
  -v, --version                Show the version

Settings also read from <dir>/pnpm-workspace.yaml: storeDir, virtualStoreDir,
packageImportMethod, supportedArchitectures, networkConcurrency, virtualStoreDirMaxLength,
fetchRetries, fetchRetryFactor, fetchRetryMintimeout, fetchRetryMaxtimeout, fetchTimeout,
verifyStoreIntegrity. Command-line options win over the file.
`

const IMPORT_METHODS = ['auto', 'hardlink', 'clone', 'copy', 'clone-or-copy']
const REPORTERS = ['default', 'append-only', 'ndjson', 'silent']

class CliError extends Error {
  constructor (code, message, hint = '') {
    super(message)
    this.code = code
    this.hint = hint
  }
}

// ---------------------------------------------------------------------------------------
// Arguments

const FLAGS = {
  '--dir': 'dir',
  '-C': 'dir',
  '--store-dir': 'storeDir',
  '--virtual-store-dir': 'virtualStoreDir',
  '--registry': 'registry',
  '--import-method': 'importMethod',
  '--package-import-method': 'importMethod',
  '--network-concurrency': 'networkConcurrency',
  '--reporter': 'reporter'
}
const SWITCHES = {
  '--prod': 'prod',
  '--production': 'prod',
  '-P': 'prod',
  '--dev': 'dev',
  '-D': 'dev',
  '--offline': 'offline',
  '--help': 'help',
  '-h': 'help',
  '--version': 'version',
  '-v': 'version',
  // Accepted for muscle memory: this CLI only ever installs from the lockfile as it is.
  '--frozen-lockfile': 'frozenLockfile'
}

function parseArgs (argv) {
  const args = { command: undefined, reporter: 'default', extra: [] }
  const unknown = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '--') { unknown.push(...argv.slice(i + 1)); break }
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1
    const flag = eq === -1 ? arg : arg.slice(0, eq)
    if (FLAGS[flag]) {
      let value
      if (eq !== -1) value = arg.slice(eq + 1)
      else if (i + 1 < argv.length && !argv[i + 1].startsWith('-')) value = argv[++i]
      if (value === undefined || value === '') {
        throw new CliError('ERR_PACQUET_INVALID_OPTION', `Option ${flag} needs a value`)
      }
      args[FLAGS[flag]] = value
    } else if (SWITCHES[flag] && eq === -1) {
      args[SWITCHES[flag]] = true
    } else if (arg.startsWith('-')) {
      unknown.push(flag)
    } else if (args.command === undefined) {
      args.command = arg === 'i' ? 'install' : arg
    } else {
      args.extra.push(arg)
    }
  }
  if (unknown.length) {
    throw new CliError('ERR_PNPM_UNKNOWN_OPTIONS',
      `Unknown option${unknown.length > 1 ? 's' : ''}: ${unknown.map(u => `'${u}'`).join(', ')}`,
      'For help, run: pacquet-native --help')
  }
  if (!REPORTERS.includes(args.reporter)) {
    throw new CliError('ERR_PACQUET_INVALID_OPTION',
      `Unknown reporter '${args.reporter}'`, `Use one of: ${REPORTERS.join(', ')}`)
  }
  if (args.importMethod !== undefined && !IMPORT_METHODS.includes(args.importMethod)) {
    throw new CliError('ERR_PACQUET_INVALID_OPTION',
      `Unknown import method '${args.importMethod}'`, `Use one of: ${IMPORT_METHODS.join(', ')}`)
  }
  if (args.networkConcurrency !== undefined) {
    const n = Number(args.networkConcurrency)
    if (!Number.isInteger(n) || n < 1) {
      throw new CliError('ERR_PACQUET_INVALID_OPTION', `--network-concurrency must be a positive integer, got '${args.networkConcurrency}'`)
    }
    args.networkConcurrency = n
  }
  if (args.registry !== undefined) args.registry = normalizeRegistry(args.registry, '--registry')
  return args
}

function normalizeRegistry (value, from) {
  let url
  try { url = new URL(value) } catch {
    throw new CliError('ERR_PACQUET_INVALID_OPTION', `${from} is not a valid URL: '${value}'`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new CliError('ERR_PACQUET_INVALID_OPTION', `${from} must be an http(s) URL: '${value}'`)
  }
  return url.href.endsWith('/') ? url.href : `${url.href}/`
}

// ---------------------------------------------------------------------------------------
// A minimal YAML reader: enough for pnpm-workspace.yaml (block mappings and sequences,
// flow [..] / {..}, quoted and plain scalars, comments). Not a general YAML parser.

function parseYaml (text) {
  const lines = []
  text.split(/\r?\n/).forEach((raw, idx) => {
    if (/^\s*(#.*)?$/.test(raw)) return
    if (/^(---|\.\.\.)(\s|$)/.test(raw)) return
    if (/^ *\t/.test(raw)) throw yamlError('tabs cannot be used for indentation', idx + 1)
    const indent = raw.match(/^ */)[0].length
    const content = stripComment(raw.slice(indent)).trimEnd()
    if (content) lines.push({ indent, text: content, line: idx + 1 })
  })
  let i = 0

  const isSeqItem = (t) => t === '-' || t.startsWith('- ')

  function parseNode (indent) {
    return isSeqItem(lines[i].text) ? parseSeq(indent) : parseMap(indent)
  }

  function parseMap (indent) {
    const obj = {}
    while (i < lines.length && lines[i].indent === indent && !isSeqItem(lines[i].text)) {
      const ln = lines[i++]
      const { key, rest } = splitKey(ln)
      if (rest === '') {
        if (i < lines.length && lines[i].indent > indent) obj[key] = parseNode(lines[i].indent)
        else if (i < lines.length && lines[i].indent === indent && isSeqItem(lines[i].text)) obj[key] = parseSeq(indent)
        else obj[key] = null
      } else if (/^[|>][-+]?$/.test(rest)) {
        // Block scalar: the more-indented lines that follow (comments inside are lost).
        const parts = []
        while (i < lines.length && lines[i].indent > indent) parts.push(lines[i++].text)
        obj[key] = parts.join(rest[0] === '|' ? '\n' : ' ')
      } else {
        obj[key] = parseInline(rest, ln.line)
      }
    }
    if (i < lines.length && lines[i].indent > indent) throw yamlError('unexpected indentation', lines[i].line)
    return obj
  }

  function parseSeq (indent) {
    const arr = []
    while (i < lines.length && lines[i].indent === indent && isSeqItem(lines[i].text)) {
      const ln = lines[i]
      const rest = ln.text.slice(1).trimStart()
      if (rest === '') {
        i++
        arr.push(i < lines.length && lines[i].indent > indent ? parseNode(lines[i].indent) : null)
      } else if (!/^["'[{]/.test(rest) && findMapColon(rest) !== -1) {
        // "- key: value" starts a mapping whose lines sit at the item's content column.
        lines[i] = { indent: indent + (ln.text.length - rest.length), text: rest, line: ln.line }
        arr.push(parseMap(lines[i].indent))
      } else {
        i++
        arr.push(parseInline(rest, ln.line))
      }
    }
    return arr
  }

  const result = lines.length ? parseNode(lines[0].indent) : {}
  if (i < lines.length) throw yamlError('unexpected content', lines[i].line)
  return result
}

function yamlError (message, line) {
  const err = new Error(`${message} (line ${line})`)
  err.code = 'ERR_PACQUET_YAML'
  return err
}

function stripComment (s) {
  let quote = null
  for (let j = 0; j < s.length; j++) {
    const c = s[j]
    if (quote) {
      if (c === quote) {
        if (quote === "'" && s[j + 1] === "'") { j++; continue }
        quote = null
      } else if (c === '\\' && quote === '"') j++
    } else if (c === '"' || c === "'") {
      if (j === 0 || /[\s[{,:]/.test(s[j - 1])) quote = c
    } else if (c === '#' && (j === 0 || /\s/.test(s[j - 1]))) {
      return s.slice(0, j)
    }
  }
  return s
}

// Index of the ':' that separates a plain mapping key from its value, or -1.
function findMapColon (s) {
  for (let j = 0; j < s.length; j++) {
    if (s[j] === ':' && (j === s.length - 1 || s[j + 1] === ' ')) return j
  }
  return -1
}

function splitKey (ln) {
  const t = ln.text
  if (t[0] === '"' || t[0] === "'") {
    const { value, end } = readQuoted(t, 0, ln.line)
    const after = t.slice(end).trimStart()
    if (after[0] !== ':') throw yamlError('expected ":" after a quoted key', ln.line)
    return { key: value, rest: after.slice(1).trim() }
  }
  const colon = findMapColon(t)
  if (colon === -1) throw yamlError(`expected "key: value", got "${t}"`, ln.line)
  return { key: t.slice(0, colon).trim(), rest: t.slice(colon + 1).trim() }
}

function readQuoted (s, start, line) {
  const q = s[start]
  let out = ''
  for (let j = start + 1; j < s.length; j++) {
    const c = s[j]
    if (q === "'") {
      if (c === "'") {
        if (s[j + 1] === "'") { out += "'"; j++; continue }
        return { value: out, end: j + 1 }
      }
      out += c
    } else {
      if (c === '"') return { value: out, end: j + 1 }
      if (c === '\\') {
        const n = s[++j]
        out += ({ n: '\n', t: '\t', r: '\r', '0': '\0', '"': '"', '\\': '\\', '/': '/' })[n] ?? n
        continue
      }
      out += c
    }
  }
  throw yamlError('unterminated quoted string', line)
}

function parseInline (s, line) {
  if (s[0] === '[' || s[0] === '{') {
    const state = { s, j: 0, line }
    const value = parseFlow(state)
    skipWs(state)
    if (state.j !== s.length) throw yamlError('unexpected text after a flow collection', line)
    return value
  }
  if (s[0] === '"' || s[0] === "'") {
    const { value, end } = readQuoted(s, 0, line)
    if (s.slice(end).trim()) throw yamlError('unexpected text after a quoted string', line)
    return value
  }
  if (s[0] === '&' || s[0] === '*' || s[0] === '!') throw yamlError('anchors, aliases and tags are not supported', line)
  return plainScalar(s)
}

function skipWs (st) {
  while (st.j < st.s.length && /\s/.test(st.s[st.j])) st.j++
}

function parseFlow (st) {
  skipWs(st)
  const c = st.s[st.j]
  if (c === '[') {
    st.j++
    const arr = []
    for (;;) {
      skipWs(st)
      if (st.s[st.j] === ']') { st.j++; return arr }
      arr.push(parseFlow(st))
      skipWs(st)
      if (st.s[st.j] === ',') { st.j++; continue }
      if (st.s[st.j] === ']') { st.j++; return arr }
      throw yamlError('expected "," or "]"', st.line)
    }
  }
  if (c === '{') {
    st.j++
    const obj = {}
    for (;;) {
      skipWs(st)
      if (st.s[st.j] === '}') { st.j++; return obj }
      const key = String(flowScalar(st, true))
      skipWs(st)
      if (st.s[st.j] !== ':') throw yamlError('expected ":" in a flow mapping', st.line)
      st.j++
      obj[key] = parseFlow(st)
      skipWs(st)
      if (st.s[st.j] === ',') { st.j++; continue }
      if (st.s[st.j] === '}') { st.j++; return obj }
      throw yamlError('expected "," or "}"', st.line)
    }
  }
  return flowScalar(st, false)
}

function flowScalar (st, isKey) {
  skipWs(st)
  if (st.j >= st.s.length) throw yamlError('unexpected end of a flow collection', st.line)
  const c = st.s[st.j]
  if (c === '"' || c === "'") {
    const { value, end } = readQuoted(st.s, st.j, st.line)
    st.j = end
    return value
  }
  const start = st.j
  while (st.j < st.s.length && !/[,\]}]/.test(st.s[st.j]) && !(isKey && st.s[st.j] === ':')) st.j++
  const raw = st.s.slice(start, st.j).trim()
  return isKey ? raw : plainScalar(raw)
}

function plainScalar (s) {
  if (/^(true|True|TRUE)$/.test(s)) return true
  if (/^(false|False|FALSE)$/.test(s)) return false
  if (/^(null|Null|NULL|~)$/.test(s) || s === '') return null
  if (/^[-+]?\d+$/.test(s)) return Number(s)
  if (/^[-+]?(\d+\.\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) return Number(s)
  return s
}

// ---------------------------------------------------------------------------------------
// Settings

const WORKSPACE_KEYS = {
  storeDir: 'string',
  virtualStoreDir: 'string',
  packageImportMethod: 'string',
  supportedArchitectures: 'object',
  networkConcurrency: 'number',
  virtualStoreDirMaxLength: 'number',
  fetchRetries: 'number',
  fetchRetryFactor: 'number',
  fetchRetryMintimeout: 'number',
  fetchRetryMaxtimeout: 'number',
  fetchTimeout: 'number',
  verifyStoreIntegrity: 'boolean',
  hoistPattern: 'object',
  publicHoistPattern: 'object',
  shamefullyHoist: 'boolean',
  allowBuilds: 'object',
  dangerouslyAllowAllBuilds: 'boolean',
  ignoreScripts: 'boolean'
}

/** <dir>/pnpm-workspace.yaml parsed ({} when there is none). */
function readWorkspaceManifest (dir, warn = () => {}) {
  const file = path.join(dir, 'pnpm-workspace.yaml')
  let text
  try { text = fs.readFileSync(file, 'utf8') } catch (err) {
    if (err.code === 'ENOENT') return {}
    throw err
  }
  let doc
  try {
    doc = parseYaml(text)
  } catch (err) {
    // Fall back to top-level "key: scalar" lines so an exotic construct elsewhere in the
    // file does not stop the install.
    warn(`Could not fully parse ${file}: ${err.message}. Reading only its simple top-level settings.`)
    doc = {}
    for (const line of text.split(/\r?\n/)) {
      const m = /^([A-Za-z][\w-]*):[ \t]+(.+)$/.exec(stripComment(line).trimEnd())
      if (m) { try { doc[m[1]] = parseInline(m[2], 0) } catch {} }
    }
  }
  return doc && typeof doc === 'object' && !Array.isArray(doc) ? doc : {}
}

/** The settings this CLI uses from <dir>/pnpm-workspace.yaml ({} when there is none). */
function readWorkspaceSettings (dir, warn = () => {}, doc = readWorkspaceManifest(dir, warn)) {
  const file = path.join(dir, 'pnpm-workspace.yaml')
  const settings = {}
  for (const [key, type] of Object.entries(WORKSPACE_KEYS)) {
    const value = doc[key]
    if (value === undefined || value === null) continue
    // Patterns are lists; other objects are maps.
    const isList = key === 'hoistPattern' || key === 'publicHoistPattern'
    const ok = type === 'object'
      ? typeof value === 'object' && Array.isArray(value) === isList
      : typeof value === type
    if (!ok) { warn(`Ignoring ${key} in ${file}: expected a ${type}`); continue }
    settings[key] = value
  }
  if (settings.supportedArchitectures) {
    const sa = {}
    for (const k of ['os', 'cpu', 'libc']) {
      const v = settings.supportedArchitectures[k]
      if (v == null) continue
      const list = Array.isArray(v) ? v : [v]
      sa[k] = list.map(String)
    }
    settings.supportedArchitectures = sa
  }
  return settings
}

function expandHome (p) {
  return p === '~' || p.startsWith('~/') ? path.join(os.homedir(), p.slice(1)) : p
}

/** Reads `key=value` lines of an .npmrc, expanding ${VAR} from env. */
function readNpmrc (file, env) {
  let text
  try { text = fs.readFileSync(file, 'utf8') } catch { return {} }
  const out = {}
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim()
    if (!line || line[0] === '#' || line[0] === ';') continue
    const eq = line.indexOf('=')
    if (eq === -1) continue
    const key = line.slice(0, eq).trim()
    let value = line.slice(eq + 1).trim()
    if (/^".*"$|^'.*'$/.test(value)) value = value.slice(1, -1)
    value = value.replace(/\$\{([^}]+)\}/g, (_, name) => env[name] ?? '')
    out[key] = value
  }
  return out
}

function readUserAndProjectNpmrc (dir, env) {
  const userrc = env.npm_config_userconfig || env.NPM_CONFIG_USERCONFIG || path.join(env.HOME || os.homedir(), '.npmrc')
  return { ...readNpmrc(userrc, env), ...readNpmrc(path.join(dir, '.npmrc'), env) }
}

/** `@scope:registry` entries of the user's and the project's .npmrc, as { '@scope': url }. */
function readScopedRegistries (dir, env) {
  const routes = {}
  for (const [key, value] of Object.entries(readUserAndProjectNpmrc(dir, env))) {
    const m = /^(@[^:/]+):registry$/.exec(key)
    if (m && value) routes[m[1]] = value.endsWith('/') ? value : `${value}/`
  }
  return routes
}

/**
 * Authorization headers by nerf-darted registry URI, from the user's and the project's
 * .npmrc (the project wins): `//host/:_authToken`, `//host/:_auth`,
 * `//host/:username` + `//host/:_password`.
 */
function readAuthHeaders (dir, env) {
  const conf = readUserAndProjectNpmrc(dir, env)
  const headers = {}
  const users = {}
  for (const [key, value] of Object.entries(conf)) {
    const m = /^(\/\/.+?):(_authToken|_auth|username|_password)$/.exec(key)
    if (!m || !value) continue
    const uri = m[1].endsWith('/') ? m[1] : `${m[1]}/`
    if (m[2] === '_authToken') headers[uri] = `Bearer ${value}`
    else if (m[2] === '_auth') headers[uri] ??= `Basic ${value}`
    else (users[uri] ??= {})[m[2]] = value
  }
  for (const [uri, { username, _password: password }] of Object.entries(users)) {
    if (username && password && !headers[uri]) {
      const plain = Buffer.from(password, 'base64').toString('utf8')
      headers[uri] = `Basic ${Buffer.from(`${username}:${plain}`).toString('base64')}`
    }
  }
  return Object.keys(headers).length ? headers : undefined
}

/** LinkOptions from the command line (wins) and pnpm-workspace.yaml settings. */
function buildOptions (args, settings, { dir, cwd, env = process.env }) {
  const options = { dir }
  if (args.storeDir) options.storeDir = path.resolve(cwd, expandHome(args.storeDir))
  else if (settings.storeDir) options.storeDir = path.resolve(dir, expandHome(settings.storeDir))
  if (args.virtualStoreDir) options.virtualStoreDir = path.resolve(cwd, expandHome(args.virtualStoreDir))
  else if (settings.virtualStoreDir) options.virtualStoreDir = path.resolve(dir, expandHome(settings.virtualStoreDir))
  const importMethod = args.importMethod ?? settings.packageImportMethod
  if (importMethod !== undefined) {
    if (!IMPORT_METHODS.includes(importMethod)) {
      throw new CliError('ERR_PACQUET_INVALID_OPTION', `Unknown packageImportMethod '${importMethod}'`, `Use one of: ${IMPORT_METHODS.join(', ')}`)
    }
    options.packageImportMethod = importMethod
  }
  if (args.networkConcurrency !== undefined) options.networkConcurrency = args.networkConcurrency
  else if (settings.networkConcurrency !== undefined) options.networkConcurrency = settings.networkConcurrency
  for (const key of ['supportedArchitectures', 'virtualStoreDirMaxLength', 'fetchRetries', 'fetchRetryFactor',
    'fetchRetryMintimeout', 'fetchRetryMaxtimeout', 'fetchTimeout', 'verifyStoreIntegrity', 'hoistPattern',
    'publicHoistPattern', 'shamefullyHoist', 'allowBuilds', 'dangerouslyAllowAllBuilds', 'ignoreScripts']) {
    if (settings[key] !== undefined) options[key] = settings[key]
  }
  if (args.offline) options.offline = true
  const include = includeOf(args)
  if (include) options.include = include
  // No --registry: leave it to the addon, which reads npm config (env, .npmrc files).
  if (args.registry) options.registries = { default: args.registry }
  const auth = readAuthHeaders(dir, env)
  if (auth) options.authHeaderByUri = auth
  return options
}

/** What --prod / --dev select, or undefined for everything. */
function includeOf (args) {
  if (args.prod && !args.dev) return { dependencies: true, devDependencies: false, optionalDependencies: true }
  if (args.dev && !args.prod) return { dependencies: false, devDependencies: true, optionalDependencies: false }
  return undefined
}

/** Last resort when the addon finds no registry: ask npm, once. */
function npmConfigRegistry (dir, env) {
  try {
    // Loaded here: child_process (with net and stream) adds ~1.5 ms to every start, and only
    // this rare path needs it.
    const { execFileSync } = require('node:child_process')
    const out = execFileSync(process.platform === 'win32' ? 'npm.cmd' : 'npm', ['config', 'get', 'registry'], {
      cwd: dir,
      // No update check: this lookup must not cause network traffic of its own.
      env: { ...env, npm_config_update_notifier: 'false' },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 30_000,
      shell: process.platform === 'win32'
    }).trim()
    if (!out || out === 'undefined' || out === 'null') return null
    return normalizeRegistry(out, 'npm config registry')
  } catch {
    return null
  }
}

// ---------------------------------------------------------------------------------------
// Reporting

function formatBytes (n) {
  if (!Number.isFinite(n)) return '0 B'
  if (n < 1024) return `${n} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} kB`
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MB`
  return `${(n / 1024 / 1024 / 1024).toFixed(2)} GB`
}

function formatDuration (ms) {
  return ms < 60_000 ? `${(ms / 1000).toFixed(1)}s` : `${Math.floor(ms / 60_000)}m ${Math.round((ms % 60_000) / 1000)}s`
}

/**
 * mode: default (live line on a TTY, else like append-only) | append-only | ndjson | silent.
 * Progress counts follow pnpm: resolved / reused (found_in_store) / downloaded (fetched) /
 * added (imported).
 */
function createReporter ({ mode = 'default', out = process.stdout, err = process.stderr, now = Date.now, color } = {}) {
  const live = mode === 'default' && Boolean(out.isTTY)
  const useColor = color ?? (Boolean(err.isTTY) && !process.env.NO_COLOR)
  // A TTY line can be redrawn often; appended lines are kept sparse so CI logs stay short.
  const interval = live ? 100 : 1000
  const counts = { resolved: 0, reused: 0, downloaded: 0, added: 0 }
  let statsAdded = null
  let statsRemoved = 0
  let skippedOptional = 0
  let lastRender = -Infinity
  let lastLine = ''
  let timer = null
  let lineOpen = false // a live line is on screen without its newline

  const progressLine = () =>
    `Progress: resolved ${counts.resolved}, reused ${counts.reused}, downloaded ${counts.downloaded}, added ${counts.added}`

  function render (final = false) {
    const line = progressLine() + (final ? ', done' : '')
    lastRender = now()
    if (live) {
      out.write(`\r${line}\x1b[K${final ? '\n' : ''}`)
      lineOpen = !final
    } else if (line !== lastLine) {
      out.write(`${line}\n`)
    }
    lastLine = line
  }

  function schedule () {
    if (timer) return
    const wait = interval - (now() - lastRender)
    if (wait <= 0) { render(); return }
    timer = setTimeout(() => { timer = null; render() }, wait)
    timer.unref?.()
  }

  function stopTimer () {
    if (timer) { clearTimeout(timer); timer = null }
  }

  function printAboveLine (text, stream = out) {
    if (lineOpen) { out.write('\r\x1b[K'); lineOpen = false }
    stream.write(text)
    if (live && lastLine) { out.write(`\r${lastLine}\x1b[K`); lineOpen = true }
  }

  function warn (message) {
    if (mode === 'silent') return
    if (mode === 'ndjson') { out.write(JSON.stringify({ name: 'pnpm:global', level: 'warn', message }) + '\n'); return }
    const tag = useColor ? '\x1b[43m\x1b[30m WARN \x1b[39m\x1b[49m' : ' WARN '
    printAboveLine(`${tag} ${message}\n`)
  }

  function onEvent (e) {
    if (!e || typeof e !== 'object') return
    if (mode === 'ndjson') { out.write(JSON.stringify(e) + '\n'); return }
    if (mode === 'silent') return
    switch (e.name) {
      case 'pnpm:progress':
        if (e.status === 'resolved') counts.resolved++
        else if (e.status === 'found_in_store') counts.reused++
        else if (e.status === 'fetched') counts.downloaded++
        else if (e.status === 'imported') counts.added++
        else return
        schedule()
        return
      case 'pnpm:stats':
        if (typeof e.added === 'number') statsAdded = (statsAdded ?? 0) + e.added
        if (typeof e.removed === 'number') statsRemoved += e.removed
        return
      case 'pnpm:skipped-optional-dependency':
        skippedOptional++
        return
      case 'pnpm:request-retry': {
        const reason = e.error?.httpStatusCode ?? e.error?.code ?? e.error?.message ?? 'error'
        const left = Number.isFinite(e.maxRetries) && Number.isFinite(e.attempt) ? e.maxRetries - e.attempt + 1 : null
        warn(`${e.method ?? 'GET'} ${e.url} error (${reason}). Will retry.${left != null ? ` ${left} retries left.` : ''}`)
        return
      }
      default:
        if (e.level === 'warn' && e.message) warn(String(e.message))
        else if (e.level === 'error' && e.message) printAboveLine(` ERROR  ${e.message}\n`, err)
    }
  }

  function finish (result = {}, elapsedMs = 0) {
    stopTimer()
    if (mode === 'ndjson') {
      out.write(JSON.stringify({ name: 'pacquet-native:summary', level: 'info', elapsedMs, version: VERSION, result: summaryOf(result) }) + '\n')
      return
    }
    if (mode === 'silent') return
    const added = typeof result.added === 'number' ? result.added : statsAdded ?? counts.added
    if (added === 0 && !result.fetched && !result.reused && !statsRemoved) {
      // What pnpm says when node_modules already matches the lockfile.
      out.write('Already up to date\n')
      out.write(`Done in ${formatDuration(elapsedMs)} using pacquet-native v${VERSION}\n`)
      return
    }
    render(true)
    out.write(`Packages: +${added}${statsRemoved ? ` -${statsRemoved}` : ''}\n`)
    if (live && added > 0) {
      const width = Math.max(10, Math.min(out.columns || 80, 120) - 1)
      out.write(`${'+'.repeat(Math.min(added, width))}\n`)
    }
    const parts = []
    if (typeof result.fetched === 'number') parts.push(`downloaded ${result.fetched} (${formatBytes(result.bytesDownloaded)})`)
    if (typeof result.reused === 'number') parts.push(`reused ${result.reused} from the store`)
    const skipped = Array.isArray(result.skipped) ? result.skipped.length : skippedOptional
    if (skipped) parts.push(`skipped ${skipped} optional`)
    if (typeof result.filesImported === 'number') parts.push(`${result.filesImported} files ${result.importMethod ? `imported by ${result.importMethod}` : 'imported'}`)
    if (parts.length) out.write(`${capitalize(parts.join(', '))}\n`)
    out.write(`Done in ${formatDuration(elapsedMs)} using pacquet-native v${VERSION}\n`)
  }

  function fail (error) {
    stopTimer()
    const code = error?.code || 'ERR_PACQUET_UNEXPECTED'
    const message = error?.message || String(error)
    const hint = typeof error?.hint === 'string' ? error.hint : ''
    if (mode === 'ndjson') {
      out.write(JSON.stringify({ name: 'pnpm', level: 'error', err: { code, message, hint } }) + '\n')
      return
    }
    if (lineOpen) { out.write('\n'); lineOpen = false }
    const tag = useColor ? `\x1b[41m\x1b[97m ${code} \x1b[39m\x1b[49m` : ` ${code} `
    let text = `${tag} ${message}\n`
    if (hint) text += `\n${hint}\n`
    if (code === 'ERR_PACQUET_UNEXPECTED' && error?.stack) text += `\n${error.stack}\n`
    err.write(text)
  }

  return { onEvent, warn, finish, fail, counts }
}

const PNPM_REPORTER_PACKAGES = ['@pnpm/default-reporter', '@pnpm/logger']
// The majors that peerDependencies accept (pnpm 11's reporter is not published on its own).
const PNPM_REPORTER_INSTALL = '@pnpm/default-reporter@1002 @pnpm/logger@1001'
const NOT_INSTALLED = 'not installed'

/**
 * pnpm's reporter and logger, or `{ missing }` (the reason) when they cannot be loaded.
 * `req` resolves from where this package is installed, as a peer dependency does.
 */
function loadPnpmReporter (req = require) {
  try {
    const { initDefaultReporter } = req(PNPM_REPORTER_PACKAGES[0])
    const { logger, streamParser } = req(PNPM_REPORTER_PACKAGES[1])
    if (typeof initDefaultReporter !== 'function' || typeof logger !== 'function' || !streamParser) {
      return { missing: 'they do not have the expected exports' }
    }
    return { initDefaultReporter, logger, streamParser }
  } catch (error) {
    return { missing: error?.code === 'MODULE_NOT_FOUND' ? NOT_INSTALLED : String(error?.message ?? error).split('\n')[0] }
  }
}

/**
 * Renders through pnpm's own reporter: events from the addon are logged with @pnpm/logger
 * and its stream parser feeds pnpm's default reporter, exactly as inside pnpm. Like pnpm,
 * a terminal gets the redrawn view and anything else the append-only one. Errors are printed
 * by the built-in renderer (stderr, code and hint) so that every reporter fails alike.
 */
function createPnpmReporter ({ pnpm, dir, include, out = process.stdout, err = process.stderr }) {
  const appendOnly = !out.isTTY
  // pnpm's reporter prints "devDependencies: skipped" and the like from these settings.
  const config = { dir }
  if (include) {
    config.production = include.dependencies
    config.dev = include.devDependencies
    config.optional = include.optionalDependencies
  }
  const stop = pnpm.initDefaultReporter({
    streamParser: pnpm.streamParser,
    context: { argv: ['install'], config },
    // pnpm's own throttling: a redraw every 200 ms on a terminal, a line a second otherwise.
    reportingOptions: { appendOnly, throttleProgress: appendOnly ? 1000 : 200, logLevel: 'info' }
  })
  const loggers = new Map()
  function log (event) {
    const { name, level, ...fields } = event
    if (typeof name !== 'string' || !name.startsWith('pnpm')) return
    let l = loggers.get(name)
    if (!l) {
      l = name === 'pnpm' ? pnpm.logger : pnpm.logger(name.slice('pnpm:'.length))
      loggers.set(name, l)
    }
    const write = typeof l[level] === 'function' ? l[level] : l.debug
    write.call(l, fields)
  }
  const builtIn = createReporter({ mode: 'append-only', out, err })
  // The reporter subscribes to the parser on a timer, and logs pass through a stream: wait
  // for both so that nothing logged is lost and nothing is printed after the command ends.
  const settle = () => new Promise((resolve) => setTimeout(resolve, 0)).then(() => new Promise((resolve) => setImmediate(resolve)))
  let stopped = false
  async function end () {
    await settle()
    if (!stopped) { stopped = true; stop() }
  }
  return {
    ready: settle(),
    onEvent (e) { if (e && typeof e === 'object') log(e) },
    warn (message) { log({ name: 'pnpm:global', level: 'warn', message }) },
    async finish (result, elapsedMs = 0) {
      const endedAt = Date.now()
      log({ name: 'pnpm:execution-time', level: 'debug', startedAt: endedAt - elapsedMs, endedAt })
      await end()
    },
    async fail (error) {
      await end()
      builtIn.fail(error)
    }
  }
}

function summaryOf (result) {
  const out = {}
  for (const [k, v] of Object.entries(result || {})) if (typeof v !== 'function') out[k] = v
  return out
}

function capitalize (s) {
  return s ? s[0].toUpperCase() + s.slice(1) : s
}

// ---------------------------------------------------------------------------------------
// Main

function loadAddon () {
  try {
    return require('../index.js')
  } catch (cause) {
    if (cause?.code === 'ERR_PACQUET_NATIVE_BINDING') throw new CliError(cause.code, cause.message, cause.hint)
    throw new CliError('ERR_PACQUET_NATIVE_BINDING', `Cannot load the native addon: ${cause.message}`,
      'Reinstall @pacquet/native so that the binary for this platform is present (or build it with `napi build --platform`).')
  }
}

/** `store path` and `store status`, as pnpm's `store` subcommands. */
async function storeCommand (args, { cwd, env, stdout, reporter }) {
  const [sub, ...rest] = args.extra
  if ((sub !== 'path' && sub !== 'status') || rest.length) {
    reporter.fail(new CliError('ERR_PACQUET_UNKNOWN_COMMAND', `Unknown store command '${args.extra.join(' ')}'`,
      'Use "pacquet-native store path" or "pacquet-native store status".'))
    return 1
  }
  try {
    const dir = path.resolve(cwd, args.dir ?? '.')
    const options = buildOptions(args, readWorkspaceSettings(dir, reporter.warn), { dir, cwd, env })
    const addon = loadAddon()
    if (sub === 'path') {
      stdout.write(`${addon.storePath(options)}\n`)
      return 0
    }
    const modified = await addon.storeStatus(path.join(dir, 'pnpm-lock.yaml'), options)
    if (modified.length === 0) {
      stdout.write('Packages in the store are untouched\n')
      return 0
    }
    // pnpm's wording and code for the same finding.
    reporter.fail(new CliError('ERR_PNPM_MODIFIED_DEPENDENCY', `Packages in the store have been mutated:\n${modified.map(m => `  ${m}`).join('\n')}`,
      'Reinstall them: remove node_modules and the changed packages from the store (pnpm store prune), then install again.'))
    return 1
  } catch (error) {
    reporter.fail(error)
    return 1
  }
}

/**
 * `default` is pnpm's reporter when its packages load, else the built-in one with a note on
 * stderr; the other names are always the built-in renderer.
 */
async function pickReporter (args, { cwd, stdout, stderr, load = loadPnpmReporter }) {
  if (args.reporter === 'default' && args.command === 'install') {
    const pnpm = load()
    if (!pnpm.missing) {
      const reporter = createPnpmReporter({
        pnpm,
        dir: path.resolve(cwd, args.dir ?? '.'),
        include: includeOf(args),
        out: stdout,
        err: stderr
      })
      await reporter.ready
      return reporter
    }
    const why = pnpm.missing === NOT_INSTALLED ? `not installed (npm install ${PNPM_REPORTER_INSTALL})` : `unusable: ${pnpm.missing}`
    stderr.write(`Note: pnpm's reporter is ${why}; using the built-in one.\n`)
  }
  return createReporter({ mode: args.reporter, out: stdout, err: stderr })
}

async function main (argv = process.argv.slice(2), io = {}) {
  const started = Date.now()
  const cwd = io.cwd ?? process.cwd()
  const env = io.env ?? process.env
  const stdout = io.stdout ?? process.stdout
  const stderr = io.stderr ?? process.stderr
  const proc = io.process ?? process

  let args
  try {
    args = parseArgs(argv)
  } catch (error) {
    createReporter({ out: stdout, err: stderr }).fail(error)
    return 1
  }
  if (args.version) { stdout.write(`${VERSION}\n`); return 0 }
  if (args.help) { stdout.write(HELP); return 0 }
  if (args.command === undefined) { stderr.write(HELP); return 1 }

  const reporter = await pickReporter(args, { cwd, stdout, stderr })
  if (args.command === 'store') return storeCommand(args, { cwd, env, stdout, reporter })
  if (args.command !== 'install') {
    reporter.fail(new CliError('ERR_PACQUET_UNKNOWN_COMMAND', `Unknown command '${args.command}'`, 'The commands are "install" and "store". For help, run: pacquet-native --help'))
    return 1
  }
  if (args.extra.length) {
    reporter.fail(new CliError('ERR_PACQUET_INVALID_OPTION', `Unexpected argument${args.extra.length > 1 ? 's' : ''}: ${args.extra.map(a => `'${a}'`).join(', ')}`,
      'install takes no package names: it installs what pnpm-lock.yaml lists.'))
    return 1
  }

  const controller = new AbortController()
  let interrupted = false
  const onSignal = (signal) => {
    if (interrupted) proc.exit(signal === 'SIGINT' ? 130 : 143) // a second ^C: leave now
    interrupted = signal
    if (args.reporter !== 'ndjson' && args.reporter !== 'silent') stderr.write('\nAborting...\n')
    controller.abort()
  }
  proc.on('SIGINT', onSignal)
  proc.on('SIGTERM', onSignal)

  try {
    const dir = path.resolve(cwd, args.dir ?? '.')
    const lockfile = path.join(dir, 'pnpm-lock.yaml')
    if (!fs.existsSync(lockfile)) {
      throw new CliError('ERR_PNPM_NO_LOCKFILE', `Cannot install with "frozen-lockfile" because pnpm-lock.yaml is absent in ${dir}`,
        'Run "pnpm install" once to create the lockfile, or point --dir at the project.')
    }
    const workspace = readWorkspaceManifest(dir, reporter.warn)
    const settings = readWorkspaceSettings(dir, reporter.warn, workspace)
    const options = buildOptions(args, settings, { dir, cwd, env })
    const addon = loadAddon()
    // Silence asks for nothing: without a listener the addon builds no events at all.
    if (args.reporter !== 'silent') options.onProgress = (event) => reporter.onEvent(event)
    options.signal = controller.signal

    let result
    const installing = addon.linkVirtualStore(lockfile, options)
    // The addon works on its own threads: meanwhile this one reads what pnpm's workspace state
    // will record (a few ms of digests in a fresh process), to write it once the install is done.
    let writeState
    try {
      writeState = prepareWorkspaceState({ dir, doc: workspace, options, scopedRegistries: readScopedRegistries(dir, env) })
    } catch (error) {
      writeState = () => { throw error }
    }
    try {
      result = await installing
    } catch (error) {
      if (error?.code !== 'ERR_PNPM_NO_REGISTRY' || options.registries || controller.signal.aborted) throw error
      const registry = npmConfigRegistry(dir, env)
      if (!registry) throw error
      options.registries = { default: registry }
      result = await addon.linkVirtualStore(lockfile, options)
    }
    try {
      writeState()
    } catch (error) {
      reporter.warn(`Could not write pnpm's workspace state (pnpm will re-link this project once): ${error.message}`)
    }
    await reporter.finish(result, Date.now() - started)
    return 0
  } catch (error) {
    if (error?.code === 'ABORT_ERR' && interrupted) {
      await reporter.fail(Object.assign(new Error('The installation was interrupted'), { code: 'ABORT_ERR', hint: '' }))
      return interrupted === 'SIGINT' ? 130 : 143
    }
    await reporter.fail(error)
    return 1
  } finally {
    proc.removeListener('SIGINT', onSignal)
    proc.removeListener('SIGTERM', onSignal)
  }
}

module.exports = {
  main,
  parseArgs,
  parseYaml,
  readWorkspaceSettings,
  readAuthHeaders,
  buildOptions,
  createReporter,
  createPnpmReporter,
  loadPnpmReporter,
  CliError,
  VERSION
}

if (require.main === module) {
  main().then((code) => {
    process.exitCode = code
    // Normally nothing is left and Node exits right away; if a handle were leaked, do not
    // hang the user's terminal or CI job over it.
    setTimeout(() => process.exit(code), 2000).unref()
  })
}
