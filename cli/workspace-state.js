'use strict'
// pnpm 11 keeps `<lockfile dir>/node_modules/.pnpm-workspace-state-v1.json`: the settings the
// last install ran with and a proof of the inputs it installed (digests of the lockfile and of
// each project's manifest). When that file matches the project, `pnpm install` answers
// "Already up to date" without touching node_modules; without it, pnpm re-links the whole
// project. The CLI writes it after a successful install so that switching back to pnpm costs
// nothing. (pnpm, as a host of the addon, writes its own from its own configuration.)
//
// pnpm compares the recorded settings with its live configuration key by key, so they must be
// recorded with pnpm 11's defaults. A setting this CLI cannot know as pnpm resolves it (for
// instance a registry route built into pnpm that no configuration file names) only costs one
// re-link by pnpm, which then writes its own state.
const fs = require('node:fs')
const path = require('node:path')

const FILE = '.pnpm-workspace-state-v1.json'
const DIGEST_LENGTH = 32

// The settings pnpm 11 records, in its order, with the value its configuration has when no
// file sets them (`undefined`: not recorded unless set).
const SETTINGS = [
  ['enableGlobalVirtualStore', undefined],
  ['allowBuilds', undefined],
  ['autoInstallPeers', true],
  ['catalogs', {}],
  ['dangerouslyAllowAllBuilds', false],
  ['dedupeDirectDeps', false],
  ['dedupeInjectedDeps', true],
  ['dedupePeerDependents', true],
  ['dedupePeers', false],
  ['dev', true],
  ['excludeLinksFromLockfile', false],
  ['extendNodePath', true],
  ['hoistPattern', ['*']],
  ['hoistWorkspacePackages', true],
  ['ignoredOptionalDependencies', undefined],
  ['injectWorkspacePackages', false],
  ['linkWorkspacePackages', false],
  ['minimumReleaseAge', 24 * 60],
  ['minimumReleaseAgeStrict', undefined],
  ['minimumReleaseAgeExclude', undefined],
  ['minimumReleaseAgeIgnoreMissingTime', true],
  ['nodeLinker', 'isolated'],
  ['optional', true],
  ['overrides', undefined],
  ['packageExtensions', undefined],
  ['patchedDependencies', undefined],
  ['peersSuffixMaxLength', 1000],
  ['preferWorkspacePackages', false],
  ['production', true],
  ['publicHoistPattern', []],
  ['runtime', undefined],
  ['storeDir', undefined],
  ['supportedArchitectures', undefined],
  ['trustLockfile', undefined],
  ['trustPolicy', undefined],
  ['trustPolicyExclude', undefined],
  ['trustPolicyIgnoreAfter', undefined],
  ['virtualStoreDir', undefined],
  ['virtualStoreDirMaxLength', process.platform === 'win32' ? 60 : 120],
  ['workspacePackagePatterns', ['.']]
]

/**
 * The settings block as pnpm 11 would record it for this install.
 * `doc`: the parsed pnpm-workspace.yaml ({} when none); `options`: the addon's LinkOptions
 * (resolved storeDir / virtualStoreDir / include); `scopedRegistries`: { '@scope': url }.
 */
function recordedSettings (doc, options, scopedRegistries) {
  const settings = {}
  for (const [key, fallback] of SETTINGS) {
    const value = doc[key] ?? fallback
    if (value !== undefined) settings[key] = value
  }
  // With allowBuilds, pnpm's configuration has no dangerouslyAllowAllBuilds unless a file sets it.
  if (doc.allowBuilds != null && doc.dangerouslyAllowAllBuilds == null) delete settings.dangerouslyAllowAllBuilds
  // Setting minimumReleaseAge makes pnpm strict about it unless told otherwise.
  if (doc.minimumReleaseAge != null && doc.minimumReleaseAgeStrict == null) settings.minimumReleaseAgeStrict = true
  if (doc.shamefullyHoist === true && doc.publicHoistPattern == null) settings.publicHoistPattern = ['*']
  const include = options.include
  if (include) {
    settings.dev = include.devDependencies !== false
    settings.production = include.dependencies !== false
    settings.optional = include.optionalDependencies !== false
  }
  if (Array.isArray(doc.packages)) settings.workspacePackagePatterns = doc.packages
  // pnpm records store locations resolved, the store with its layout version.
  if (options.storeDir) {
    settings.storeDir = path.basename(options.storeDir) === 'v11' ? options.storeDir : path.join(options.storeDir, 'v11')
  } else delete settings.storeDir
  if (options.virtualStoreDir) settings.virtualStoreDir = options.virtualStoreDir
  else delete settings.virtualStoreDir
  if (options.supportedArchitectures) settings.supportedArchitectures = options.supportedArchitectures
  settings.registryRoutes = Object.fromEntries(Object.keys(scopedRegistries).sort().map(k => [k, scopedRegistries[k]]))
  return settings
}

// pnpm's digest of a JSON value: a type tag, lengths as u64 LE, object keys in byte order.
// The bytes are gathered and hashed in one call: a call per token cost ~1.5 ms per install.
function valueBytes (value, out) {
  if (Array.isArray(value)) {
    out.push(TAG.array, u64(value.length))
    for (const item of value) valueBytes(item, out)
  } else if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined)
      .map(([k, v]) => [Buffer.from(k), v]).sort(([a], [b]) => Buffer.compare(a, b))
    out.push(TAG.object, u64(entries.length))
    for (const [key, item] of entries) {
      out.push(u64(key.length), key)
      valueBytes(item, out)
    }
  } else if (typeof value === 'boolean') {
    out.push(value ? TAG.true : TAG.false)
  } else if (typeof value === 'number' || typeof value === 'string') {
    const bytes = Buffer.from(String(value))
    out.push(typeof value === 'number' ? TAG.number : TAG.string, u64(bytes.length), bytes)
  } else {
    out.push(TAG.null)
  }
}

const TAG = Object.fromEntries(Object.entries({ array: '[', object: '{', true: 't', false: 'f', number: '#', string: 's', null: 'n' })
  .map(([name, tag]) => [name, Buffer.from(tag)]))

function u64 (n) {
  const bytes = Buffer.alloc(8)
  bytes.writeUInt32LE(n % 0x100000000, 0)
  bytes.writeUInt32LE(Math.floor(n / 0x100000000), 4)
  return bytes
}

function valueDigest (value) {
  const out = []
  valueBytes(value, out)
  return sha256().update(Buffer.concat(out)).digest('hex').slice(0, DIGEST_LENGTH)
}

/** Importer ids and local resolutions, read from the lockfile text (pnpm writes both on one line each). */
function scanLockfile (text) {
  // Each section is searched whole by the regex engine: a loop over every line of a lockfile
  // of 1,352 packages took ~5 ms in a fresh process, on every install, repeat ones included.
  const section = topLevelSections(text)
  const importers = []
  for (const m of (section.importers ?? '').matchAll(/^ {2}(?:'((?:[^'\n]|'')*)'|"([^"\n]*)"|([^\s'"][^:\n]*)):[ \t\r]*$/gm)) {
    importers.push(m[1] !== undefined ? m[1].replace(/''/g, "'") : m[2] ?? m[3])
  }
  const packages = section.packages ?? ''
  const directories = new Set()
  for (const m of packages.matchAll(/^ {4}resolution: \{directory: ([^,}\n]+), type: directory\}/gm)) directories.add(unquote(m[1]))
  const tarballs = new Set()
  for (const m of packages.matchAll(/^ {4}resolution: \{.*\btarball: (file:[^,}\n]+)/gm)) tarballs.add(unquote(m[1]))
  return { importers, directories: [...directories], tarballs: [...tarballs] }
}

/** The text under each top-level key of a YAML document, by key. */
function topLevelSections (text) {
  const sections = {}
  let key = null
  let start = 0
  for (const m of text.matchAll(/^([A-Za-z]\w*):/gm)) {
    if (key !== null) sections[key] = text.slice(start, m.index)
    key = m[1]
    start = m.index + m[0].length
  }
  if (key !== null) sections[key] = text.slice(start)
  return sections
}

function unquote (s) {
  s = s.trim()
  return /^'.*'$/.test(s) ? s.slice(1, -1).replace(/''/g, "'") : /^".*"$/.test(s) ? s.slice(1, -1) : s
}

function manifestMtime (dir) {
  try { return fs.statSync(path.join(dir, 'package.json'), { bigint: true }).mtimeNs } catch { return null }
}

function readManifest (dir) {
  try { return JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) } catch { return {} }
}

/**
 * Writes `<dir>/node_modules/.pnpm-workspace-state-v1.json` for an install of the lockfile in
 * `dir` that just succeeded, unless the file there records the same inputs already. A file
 * that cannot be written is not an install failure: pnpm re-links without it. Returns the
 * state the file holds.
 */
function writeWorkspaceState (args) {
  return prepareWorkspaceState(args)()
}

/**
 * Reads what the workspace state of an install of the lockfile in `dir` records, and returns
 * the function that writes it (see `writeWorkspaceState`). The digests take a few ms in a
 * fresh process: the CLI reads while the addon installs, and writes once it has succeeded.
 */
function prepareWorkspaceState (args) {
  const { dir, doc = {}, options = {}, scopedRegistries = {} } = args
  const modulesDir = path.join(dir, 'node_modules')
  const lockfilePath = path.join(dir, 'pnpm-lock.yaml')
  const file = path.join(modulesDir, FILE)
  const stat = fs.statSync(lockfilePath, { bigint: true })
  const settings = recordedSettings(doc, options, scopedRegistries)
  // A repeat install usually finds its own record still true; computing it again cost ~8 ms
  // of a 50 ms repeat install (the digests, and loading node:crypto for them).
  const current = stateOnDisk(file, lockfilePath, stat, settings)
  if (current) return () => current
  const lockfileBytes = fs.readFileSync(lockfilePath)
  const lockfile = sha256().update(lockfileBytes).digest('hex').slice(0, DIGEST_LENGTH)
  const scan = scanLockfile(lockfileBytes.toString('utf8'))
  const projects = (scan.importers.length ? scan.importers : ['.']).map(id => {
    const rootDir = id === '.' ? dir : path.join(dir, id)
    return { id, rootDir, mtimeNs: manifestMtime(rootDir), manifest: readManifest(rootDir) }
  })

  const manifests = {}
  for (const p of projects) manifests[p.id] = valueDigest(p.manifest)
  // One digest of every project's bins, kept for the root and for each project with dependencies.
  const bins = {}
  for (const p of projects) {
    const bin = p.manifest.bin ?? null
    const directory = p.manifest.directories?.bin ?? null
    if (bin !== null || directory !== null) bins[p.id] = { name: p.manifest.name ?? null, bin, directory }
  }
  let workspaceBins
  if (Object.keys(bins).length) {
    const digest = valueDigest(bins)
    for (const p of projects) {
      const m = p.manifest
      const hasDeps = [m.dependencies, m.devDependencies, m.optionalDependencies, m.peerDependencies]
        .some(d => d != null && Object.keys(d).length > 0)
      if (p.id === '.' || hasDeps) (workspaceBins ??= {})[p.id] = digest
    }
  }
  const local = {}
  if (scan.tarballs.length) local.tarballs = scan.tarballs.map(t => path.resolve(dir, t.slice('file:'.length))).sort()
  if (scan.directories.length) local.directories = scan.directories.map(d => path.resolve(dir, d)).sort()

  return () => {
    // A manifest edited since it was read (during the install): read everything again, or the
    // record, newer than the edit, would vouch for the old digest.
    if (projects.some(p => manifestMtime(p.rootDir) !== p.mtimeNs)) return prepareWorkspaceState(args)()
    // The record's time is the mtime the filesystem gives the file that becomes the record (what
    // pnpm compares the lockfile's mtime with), so the coarser kernel clock cannot put a lockfile
    // written before the install after it. One fixed temp name: a temp file that a killed install
    // left behind is truncated and renamed away by the next one instead of lingering.
    const temp = `${file}.pacquet.tmp`
    const fd = fs.openSync(temp, 'w')
    let state
    try {
      const recordedAtNs = Number(fs.fstatSync(fd, { bigint: true }).mtimeNs)
      state = {
        lastValidatedTimestamp: Math.trunc(recordedAtNs / 1e6),
        projects: Object.fromEntries(projects.map(p => [p.rootDir, { name: p.manifest.name, version: p.manifest.version }])),
        pnpmfiles: [],
        settings,
        filteredInstall: false,
        validation: {
          recordedAtNs,
          files: {
            [lockfilePath]: { mtimeNs: Number(stat.mtimeNs), ctimeNs: Number(stat.ctimeNs), size: Number(stat.size), digest: lockfile }
          },
          lockfile,
          manifests,
          ...(workspaceBins ? { workspaceBins } : {}),
          localDependencies: { [lockfile]: local }
        }
      }
      fs.writeFileSync(fd, JSON.stringify(state, undefined, 2) + '\n')
    } finally {
      fs.closeSync(fd)
    }
    fs.renameSync(temp, file)
    return state
  }
}

/**
 * The state in `file` if it records these inputs still: the same lockfile (its size, mtime and
 * ctime, which pnpm compares too), the same settings, and every project's manifest older than
 * the record (pnpm re-reads a manifest only when it is newer). Anything else: undefined.
 */
function stateOnDisk (file, lockfilePath, lockfileStat, settings) {
  let state
  try { state = JSON.parse(fs.readFileSync(file, 'utf8')) } catch { return undefined }
  const recordedAtNs = state?.validation?.recordedAtNs
  const lockfile = state?.validation?.files?.[lockfilePath]
  if (typeof recordedAtNs !== 'number' || !lockfile) return undefined
  if (lockfile.size !== Number(lockfileStat.size) || lockfile.mtimeNs !== Number(lockfileStat.mtimeNs) ||
    lockfile.ctimeNs !== Number(lockfileStat.ctimeNs)) return undefined
  if (JSON.stringify(state.settings) !== JSON.stringify(settings)) return undefined
  const projects = Object.keys(state.projects ?? {})
  if (!projects.length) return undefined
  for (const rootDir of projects) {
    const mtimeNs = manifestMtime(rootDir)
    if (mtimeNs === null || !(Number(mtimeNs) < recordedAtNs)) return undefined
  }
  return state
}

/** Loaded on first use: most repeat installs need no digest at all. */
function sha256 () {
  return require('node:crypto').createHash('sha256')
}

/**
 * The state without what records the moment of the install (the time of the record, and the
 * lockfile's mtime and ctime): two installs of the same project compare equal on the rest.
 */
function comparableWorkspaceState (state) {
  const copy = structuredClone(state)
  delete copy.lastValidatedTimestamp
  if (copy.validation) {
    delete copy.validation.recordedAtNs
    for (const file of Object.values(copy.validation.files ?? {})) { delete file.mtimeNs; delete file.ctimeNs }
  }
  return copy
}

module.exports = { FILE, writeWorkspaceState, prepareWorkspaceState, recordedSettings, valueDigest, scanLockfile, comparableWorkspaceState }
