// A small npm registry for tests: HTTP/1.1 keep-alive on 127.0.0.1, random port.
//
//   const registry = await startRegistry({ tarballs })   // Map<'/a/-/a-1.0.0.tgz', Buffer>
//   registry.url        // 'http://127.0.0.1:PORT/'
//   registry.requests   // every request: { method, url, path, headers, status }
//   await registry.close()
//
// Options:
//   tarballs   Map<urlPath, Buffer> | { [urlPath]: Buffer } | directory (served read-only)
//   packuments Map<name, object|Function> | object: served at GET /<name> (and /@scope%2fname)
//   faults     { [urlPath]: [500, 503, 'reset', ...] } answers the first requests for a path
//              with these statuses ('reset' destroys the socket) before serving it normally.
//              Body faults (the path must have a tarball): 'reset-mid-body' (headers and half
//              the body, then the socket is destroyed), 'cut-short' (the whole length is
//              announced, half is sent, then the connection closes cleanly), { trickle: n }
//              (the body n bytes at a time, a few ms apart), { redirect: url } (302 to url)
//   delay      ms | { [urlPath]: ms } | (req) => ms before answering; Infinity = never answer
//              (held until close), to test aborts and timeouts without racing the clock
//   stall      { [urlPath]: bytes }: send the headers and the first `bytes` of the body, then
//              hang (a download in progress that never finishes)
//   requireAuth string | { [urlPath]: string }: expected `authorization` header, else 401
//   onRequest  (record) => void, called as soon as a request arrives (before any delay)
//
// Nothing here reaches outside 127.0.0.1; anything not configured is a 404, so a client that
// wants more fails loudly instead of silently reaching the network.
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'

export async function startRegistry (options = {}) {
  const tarballs = toMap(options.tarballs)
  const tarballDir = typeof options.tarballs === 'string' ? path.resolve(options.tarballs) : null
  const packuments = toMap(options.packuments)
  const faults = new Map(Object.entries(options.faults ?? {}).map(([k, v]) => [k, [...v]]))
  const requests = []
  const waiters = []
  const held = new Set() // responses deliberately left open; ended on close
  const timers = new Set()
  let base = ''

  const server = http.createServer((req, res) => {
    const urlPath = normalizePath(req.url)
    const record = {
      method: req.method,
      url: req.url,
      path: urlPath,
      headers: { ...req.headers },
      status: null
    }
    requests.push(record)
    res.on('finish', () => { record.status = res.statusCode })
    options.onRequest?.(record)
    for (const w of [...waiters]) {
      if (w.predicate(record)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(record) }
    }

    const ms = delayFor(options.delay, urlPath, record)
    if (ms === Infinity) { held.add(res); res.on('close', () => held.delete(res)); return }
    if (ms > 0) {
      const t = setTimeout(() => { timers.delete(t); answer(req, res, urlPath) }, ms)
      timers.add(t)
      return
    }
    answer(req, res, urlPath)
  })

  function answer (req, res, urlPath) {
    if (res.destroyed) return
    const queue = faults.get(urlPath)
    if (queue && queue.length) {
      const fault = queue.shift()
      if (fault === 'reset') { req.socket.destroy(); return }
      if (fault?.redirect) {
        res.writeHead(302, { location: fault.redirect, 'content-length': 0 })
        res.end()
        return
      }
      if (fault === 'reset-mid-body' || fault === 'cut-short' || fault?.trickle) {
        bodyFault(req, res, lookupTarball(urlPath) ?? Buffer.alloc(0), fault)
        return
      }
      const status = typeof fault === 'object' ? fault.status : fault
      const body = typeof fault === 'object' && fault.body != null ? fault.body : `{"error":"fault ${status}"}`
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
      res.end(body)
      return
    }
    const expected = typeof options.requireAuth === 'string' ? options.requireAuth : options.requireAuth?.[urlPath]
    if (expected != null && req.headers.authorization !== expected) {
      send(res, 401, 'application/json', '{"error":"unauthorized"}')
      return
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'application/json', '{"error":"method not allowed"}')
      return
    }
    const body = lookupTarball(urlPath)
    if (body) {
      const stallAt = options.stall?.[urlPath]
      if (stallAt != null) {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length })
        res.write(body.subarray(0, Math.min(stallAt, body.length)))
        held.add(res)
        res.on('close', () => held.delete(res))
        return
      }
      send(res, 200, 'application/octet-stream', body, req.method === 'HEAD')
      return
    }
    const doc = lookupPackument(urlPath)
    if (doc) {
      send(res, 200, 'application/json', Buffer.from(JSON.stringify(doc)), req.method === 'HEAD')
      return
    }
    send(res, 404, 'application/json', '{"error":"not found"}')
  }

  function bodyFault (req, res, body, fault) {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length })
    const half = body.subarray(0, Math.floor(body.length / 2))
    if (fault === 'reset-mid-body') {
      res.write(half, () => req.socket.resetAndDestroy())
    } else if (fault === 'cut-short') {
      // Ends the TCP stream with the body incomplete: the client sees a clean close.
      res.write(half, () => req.socket.end())
    } else {
      let at = 0
      const next = () => {
        if (res.destroyed) return
        if (at >= body.length) { res.end(); return }
        res.write(body.subarray(at, at + fault.trickle))
        at += fault.trickle
        const t = setTimeout(() => { timers.delete(t); next() }, 2)
        timers.add(t)
      }
      next()
    }
  }

  function lookupTarball (urlPath) {
    if (tarballs.has(urlPath)) return tarballs.get(urlPath)
    if (tarballDir && urlPath.endsWith('.tgz')) {
      const file = path.join(tarballDir, urlPath)
      // Stay inside the served directory whatever the URL says.
      if (!file.startsWith(tarballDir + path.sep)) return null
      try { return fs.readFileSync(file) } catch { return null }
    }
    return null
  }

  function lookupPackument (urlPath) {
    const name = urlPath.replace(/^\//, '')
    if (!packuments.has(name)) return null
    const doc = packuments.get(name)
    return typeof doc === 'function' ? doc({ url: base, name }) : doc
  }

  server.keepAliveTimeout = 30_000
  server.headersTimeout = 35_000
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  const { port } = server.address()
  base = `http://127.0.0.1:${port}/`

  let closed = null
  return {
    url: base,
    port,
    host: `127.0.0.1:${port}`,
    /** nerf-darted form of the URL, the key npm uses for auth settings. */
    nerfDart: `//127.0.0.1:${port}/`,
    requests,
    tarballs,
    packuments,
    faults,
    /** Requests whose path matches (string equality or RegExp). */
    requestsTo (p) {
      return requests.filter(r => (p instanceof RegExp ? p.test(r.path) : r.path === p))
    },
    clearRequests () { requests.length = 0 },
    /** Resolves with the first request (already received or future) matching the predicate. */
    waitForRequest (predicate = () => true) {
      const seen = requests.find(predicate)
      if (seen) return Promise.resolve(seen)
      return new Promise(resolve => waiters.push({ predicate, resolve }))
    },
    close () {
      if (closed) return closed
      for (const t of timers) clearTimeout(t)
      timers.clear()
      for (const res of held) res.destroy()
      held.clear()
      closed = new Promise(resolve => server.close(() => resolve()))
      // Keep-alive sockets would otherwise keep the process (and server.close) waiting.
      server.closeAllConnections()
      return closed
    }
  }
}

function toMap (value) {
  if (value instanceof Map) return value
  if (value && typeof value === 'object') return new Map(Object.entries(value))
  return new Map()
}

// '/@scope%2fname/-/name-1.0.0.tgz?x' -> '/@scope/name/-/name-1.0.0.tgz'
function normalizePath (url) {
  const p = url.split('?')[0]
  try { return decodeURIComponent(p).replace(/\/{2,}/g, '/') } catch { return p }
}

function delayFor (delay, urlPath, record) {
  if (delay == null) return 0
  if (typeof delay === 'number') return delay
  if (typeof delay === 'function') return delay(record) ?? 0
  return delay[urlPath] ?? 0
}

function send (res, status, type, body, headOnly = false) {
  const buf = Buffer.isBuffer(body) ? body : Buffer.from(body)
  res.writeHead(status, { 'content-type': type, 'content-length': buf.length })
  res.end(headOnly ? undefined : buf)
}
