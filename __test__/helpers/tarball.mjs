// Builds npm-style package tarballs (.tgz) in memory, with no dependencies.
//
//   makeTarball({ 'package.json': '{"name":"a","version":"1.0.0"}',
//                 'bin/cli.js': { content: '#!/usr/bin/env node\n', mode: 0o755 } })
//
// Entries go under `package/` like `npm pack` output. Paths that do not fit the
// 100-byte ustar name field are split into the ustar prefix field when possible,
// otherwise carried by a pax extended header ('x'), so long-path handling of the
// extractor is exercised both ways.
//
// `options.raw` is an escape hatch for hostile archives: each raw entry is written
// verbatim (no `package/` prefix, no validation), e.g.
//   { name: '../../escape.txt', content: 'x' }
//   { name: '/abs/path.txt', content: 'x' }
//   { name: 'package/link', type: '2', linkname: '/etc/passwd' }       // symlink
//   { name: 'package/hard', type: '1', linkname: 'package/index.js' }  // hardlink
//   { name: 'package/dev', type: '3', devmajor: 1, devminor: 3 }       // char device
// Any ustar header field can be given (mode, uid, gid, mtime, uname, gname, prefix...).
import { createHash } from 'node:crypto'
import { gzipSync } from 'node:zlib'

const BLOCK = 512
// A fixed mtime keeps tarballs (and thus their integrity) reproducible across runs.
const DEFAULT_MTIME = 499162500 // 1985-10-26, what npm pack uses

/** `sha512-<base64>` of a buffer: the SRI string a pnpm lockfile records. */
export function integrityOf (buf) {
  return `sha512-${createHash('sha512').update(buf).digest('base64')}`
}

/** Hex SHA-512 of file content: names the blob in the store (`files/xx/<rest>`). */
export function sha512Hex (buf) {
  return createHash('sha512').update(buf).digest('hex')
}

/**
 * Normalizes one `files` value to `{ content: Buffer, mode: number }`.
 * Accepts a string, a Buffer, or `{ content, mode }`.
 */
export function normalizeFile (value) {
  if (typeof value === 'string' || Buffer.isBuffer(value)) {
    return { content: Buffer.from(value), mode: 0o644 }
  }
  if (value && typeof value === 'object' && 'content' in value) {
    return { content: Buffer.from(value.content), mode: value.mode ?? 0o644 }
  }
  throw new TypeError(`Unsupported file value: ${JSON.stringify(value)}`)
}

/**
 * Returns an uncompressed tar archive (Buffer).
 * @param {Record<string, string|Buffer|{content, mode?}>} files paths relative to the package root
 * @param {{ prefix?: string, raw?: object[], rawFirst?: boolean, mtime?: number }} options
 */
export function makeTar (files = {}, options = {}) {
  const prefix = options.prefix ?? 'package/'
  const mtime = options.mtime ?? DEFAULT_MTIME
  const blocks = []
  const raw = (options.raw ?? []).map(e => rawEntry(e, mtime))
  if (options.rawFirst) for (const b of raw) blocks.push(...b)
  for (const [rel, value] of Object.entries(files)) {
    const { content, mode } = normalizeFile(value)
    blocks.push(...fileEntry(prefix + rel, content, mode, mtime))
  }
  if (!options.rawFirst) for (const b of raw) blocks.push(...b)
  // End of archive: two zero blocks.
  blocks.push(Buffer.alloc(BLOCK * 2))
  return Buffer.concat(blocks)
}

/** Returns a gzipped tarball (Buffer); see makeTar for the arguments. */
export function makeTarball (files = {}, options = {}) {
  return gzipSync(makeTar(files, options), { level: options.gzipLevel ?? 6 })
}

function fileEntry (name, content, mode, mtime) {
  const out = []
  let nameField = name
  let prefixField = ''
  if (Buffer.byteLength(name) > 100) {
    const split = splitUstarName(name)
    if (split) {
      ;[prefixField, nameField] = split
    } else {
      // Neither field fits: a pax header carries the full path; the ustar name is a stub.
      out.push(...paxEntry({ path: name }, mtime))
      nameField = truncateBytes(name, 100)
    }
  }
  out.push(header({ name: nameField, prefix: prefixField, mode, size: content.length, mtime, type: '0' }))
  out.push(...padded(content))
  return out
}

function rawEntry (e, mtime) {
  const content = e.content == null ? Buffer.alloc(0) : Buffer.from(e.content)
  const type = e.type ?? '0'
  // Only regular files (and pax/GNU long-name records) carry data by default.
  const hasData = e.size != null || type === '0' || type === '' || type === 'x' || type === 'g' || type === 'L'
  const out = []
  if (e.pax) out.push(...paxEntry(e.pax, mtime))
  out.push(header({
    ...e,
    mtime: e.mtime ?? mtime,
    mode: e.mode ?? (type === '5' ? 0o755 : 0o644),
    size: e.size ?? (hasData ? content.length : 0),
    type
  }))
  if (hasData && content.length) out.push(...padded(content))
  return out
}

function paxEntry (records, mtime) {
  let body = ''
  for (const [key, value] of Object.entries(records)) body += paxRecord(key, String(value))
  const content = Buffer.from(body)
  return [header({ name: 'PaxHeader', mode: 0o644, size: content.length, mtime, type: 'x' }), ...padded(content)]
}

// A pax record is "<len> <key>=<value>\n" where <len> counts the whole record, itself included.
function paxRecord (key, value) {
  const rest = ` ${key}=${value}\n`
  const restLen = Buffer.byteLength(rest)
  const digits = String(restLen).length
  let len = restLen + digits
  if (String(len).length !== digits) len = restLen + String(len).length // e.g. 98 + 2 -> 101
  return `${len}${rest}`
}

// ustar allows name = prefix + '/' + name with prefix <= 155 bytes and name <= 100 bytes.
function splitUstarName (name) {
  for (let i = name.indexOf('/'); i !== -1; i = name.indexOf('/', i + 1)) {
    const prefix = name.slice(0, i)
    const rest = name.slice(i + 1)
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(rest) <= 100 && rest.length > 0) {
      return [prefix, rest]
    }
  }
  return null
}

function truncateBytes (s, n) {
  const b = Buffer.from(s)
  return b.length <= n ? s : b.subarray(0, n).toString('latin1')
}

function padded (content) {
  const rem = content.length % BLOCK
  return rem === 0 ? [content] : [content, Buffer.alloc(BLOCK - rem)]
}

function header (f) {
  const h = Buffer.alloc(BLOCK)
  writeString(h, 0, 100, f.name ?? '')
  writeOctal(h, 100, 8, f.mode ?? 0o644)
  writeOctal(h, 108, 8, f.uid ?? 0)
  writeOctal(h, 116, 8, f.gid ?? 0)
  writeOctal(h, 124, 12, f.size ?? 0)
  writeOctal(h, 136, 12, f.mtime ?? DEFAULT_MTIME)
  h.fill(0x20, 148, 156) // checksum is computed with its own field as spaces
  writeString(h, 156, 1, f.type ?? '0')
  writeString(h, 157, 100, f.linkname ?? '')
  writeString(h, 257, 6, f.magic ?? 'ustar\0')
  writeString(h, 263, 2, f.version ?? '00')
  writeString(h, 265, 32, f.uname ?? '')
  writeString(h, 297, 32, f.gname ?? '')
  writeOctal(h, 329, 8, f.devmajor ?? 0)
  writeOctal(h, 337, 8, f.devminor ?? 0)
  writeString(h, 345, 155, f.prefix ?? '')
  let sum = 0
  for (const byte of h) sum += byte
  if (f.checksum != null) sum = f.checksum // lets hostile tests write a bad checksum
  // 6 octal digits, NUL, space: the form GNU tar and npm's tar write.
  h.write(sum.toString(8).padStart(6, '0').slice(-6) + '\0 ', 148, 8, 'latin1')
  return h
}

function writeString (buf, offset, len, value) {
  const b = Buffer.from(String(value))
  b.copy(buf, offset, 0, Math.min(b.length, len))
}

function writeOctal (buf, offset, len, value) {
  // len-1 octal digits followed by NUL.
  const s = Math.floor(value).toString(8).padStart(len - 1, '0')
  if (s.length > len - 1) throw new RangeError(`value ${value} does not fit a ${len}-byte tar field`)
  buf.write(s + '\0', offset, len, 'latin1')
}
