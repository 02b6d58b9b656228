#!/usr/bin/env node
// Scaling chart: median wall time of each tool and scenario against the size of the fixture,
// as packages and as tarball bytes, with a least-squares line per series. One SVG, two panels.
//
//   node plot.mjs <out.svg> <mirror-dir> <fixture-dir>=<results.tsv>...
//   node plot.mjs --sizes <mirror-dir> <fixture-dir>...      (only print each fixture's size)
//
// results.tsv is run-scenarios.sh's table (several tables of one fixture may be joined).
// A fixture's size counts what pnpm installs from its lockfile: the snapshots (one
// node_modules/.pnpm entry each) minus the optional ones whose os/cpu/libc the fixture's
// supportedArchitectures exclude; bytes are those packages' tarballs as they lie in the mirror
// (fill-mirror.mjs). No dependencies: plain Node.js.
import fs from 'node:fs'
import path from 'node:path'

const median = xs => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2 }

// --- fixture size ----------------------------------------------------------------------

// The few lockfile fields needed, read line by line (v9 layout: two-space keys under the
// top-level `packages:` and `snapshots:`, four-space fields below them).
function readLockfile (text) {
  const packages = new Map(); const snapshots = new Map()
  let section = null; let entry = null
  for (const line of text.split('\n')) {
    if (/^\S/.test(line)) { section = line.replace(/:.*/, ''); entry = null; continue }
    const k = line.match(/^ {2}'?([^' ][^']*?)'?:(?: \{\})?\s*$/)
    if (k) {
      entry = {}
      if (section === 'packages') packages.set(k[1], entry)
      else if (section === 'snapshots') snapshots.set(k[1], entry)
      else entry = null
      continue
    }
    if (!entry) continue
    const f = line.match(/^ {4}(os|cpu|libc|optional|resolution): (.*)$/)
    if (!f) continue
    if (f[1] === 'resolution') {
      entry.integrity = f[2].match(/integrity: ([^,}\s]+)/)?.[1]
      entry.tarball = f[2].match(/tarball: ([^,}\s]+)/)?.[1]
    } else if (f[1] === 'optional') entry.optional = f[2].trim() === 'true'
    else entry[f[1]] = f[2].replace(/[[\]\s']/g, '').split(',').filter(Boolean)
  }
  return { packages, snapshots }
}

// supportedArchitectures from pnpm-workspace.yaml; 'current' (or nothing) means this machine.
function supported (workspaceYaml) {
  const here = {
    os: process.platform,
    cpu: process.arch,
    libc: process.platform !== 'linux' ? 'unknown' : process.report.getReport().header.glibcVersionRuntime ? 'glibc' : 'musl'
  }
  const out = { os: [], cpu: [], libc: [] }
  let inBlock = false; let key = null
  for (const line of (workspaceYaml ?? '').split('\n')) {
    if (/^\S/.test(line)) { inBlock = line.startsWith('supportedArchitectures:'); continue }
    if (!inBlock) continue
    const k = line.match(/^ {2}(os|cpu|libc):\s*(\[.*\])?\s*$/)
    if (k) { key = k[1]; if (k[2]) out[key].push(...k[2].replace(/[[\]\s'"]/g, '').split(',').filter(Boolean)); continue }
    const v = line.match(/^ {4}- ['"]?([^'"\s]+)/)
    if (v && key) out[key].push(v[1])
  }
  for (const f of Object.keys(out)) out[f] = out[f].length ? out[f].map(v => v === 'current' ? here[f] : v) : [here[f]]
  return out
}

// The package's own list wins: "!x" excludes x, plain names list the only ones allowed.
function installable (pkg, arch) {
  return ['os', 'cpu', 'libc'].every(f => {
    const list = pkg[f]
    if (!list?.length) return true
    const deny = list.filter(v => v.startsWith('!')).map(v => v.slice(1)); const allow = list.filter(v => !v.startsWith('!'))
    return arch[f].some(v => !deny.includes(v) && (allow.length === 0 || allow.includes(v)))
  })
}

function fixtureSize (dir, mirror) {
  const { packages, snapshots } = readLockfile(fs.readFileSync(path.join(dir, 'pnpm-lock.yaml'), 'utf8'))
  const ws = path.join(dir, 'pnpm-workspace.yaml')
  const arch = supported(fs.existsSync(ws) ? fs.readFileSync(ws, 'utf8') : null)
  const pkgKey = snap => { const at = snap.indexOf('@', 1); const paren = snap.indexOf('(', at); return paren < 0 ? snap : snap.slice(0, paren) }
  const used = new Set(); let count = 0; let skipped = 0
  for (const [snap, s] of snapshots) {
    const key = pkgKey(snap); const pkg = packages.get(key) ?? {}
    if (s.optional && !installable(pkg, arch)) { skipped++; continue }
    count++; used.add(key)
  }
  let bytes = 0; let missing = 0
  for (const key of used) {
    const pkg = packages.get(key)
    if (!pkg?.integrity || pkg.tarball) continue // not a registry tarball: fill-mirror skips it too
    const at = key.lastIndexOf('@'); const name = key.slice(0, at)
    const file = path.join(mirror, name, '-', `${name.split('/').pop()}-${key.slice(at + 1)}.tgz`)
    try { bytes += fs.statSync(file).size } catch { missing++ }
  }
  if (missing) throw new Error(`${dir}: ${missing} tarballs are not in ${mirror} (run fill-mirror.mjs first)`)
  return { name: path.basename(dir), count, skipped, snapshots: snapshots.size, packages: used.size, bytes }
}

// --- chart -----------------------------------------------------------------------------

const fit = pts => { // least squares y = a + b x; needs two distinct x
  const n = pts.length; const mx = pts.reduce((s, p) => s + p.x, 0) / n; const my = pts.reduce((s, p) => s + p.y, 0) / n
  const sxx = pts.reduce((s, p) => s + (p.x - mx) ** 2, 0)
  if (n < 2 || sxx === 0) return null
  const b = pts.reduce((s, p) => s + (p.x - mx) * (p.y - my), 0) / sxx; const a = my - b * mx
  const ssr = pts.reduce((s, p) => s + (p.y - a - b * p.x) ** 2, 0); const sst = pts.reduce((s, p) => s + (p.y - my) ** 2, 0)
  return { a, b, r2: sst ? 1 - ssr / sst : 1 }
}
const niceStep = max => { const raw = max / 5; const e = 10 ** Math.floor(Math.log10(raw)); return [1, 2, 5, 10].map(m => m * e).find(s => s >= raw) }
const esc = s => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;')
const num = x => Number(x.toFixed(1))

const palette = { native: '#c0392b', pnpm12: '#2471a3', pnpm11: '#27ae60', bun: '#d68910', pacquet: '#7d3c98' }
const extra = ['#117a65', '#873600', '#34495e', '#b03a2e']
const styles = { cold: { dash: '', mark: 'circle' }, warm: { dash: '7 4', mark: 'square' }, hot: { dash: '2 3', mark: 'triangle' } }

function marker (kind, x, y, color) {
  if (kind === 'square') return `<rect x="${num(x - 4)}" y="${num(y - 4)}" width="8" height="8" fill="white" stroke="${color}" stroke-width="2"/>`
  if (kind === 'triangle') return `<path d="M${num(x)} ${num(y - 5)}L${num(x + 5)} ${num(y + 4)}L${num(x - 5)} ${num(y + 4)}Z" fill="${color}"/>`
  return `<circle cx="${num(x)}" cy="${num(y)}" r="4.5" fill="${color}"/>`
}

function panel ({ x0, y0, w, h, series, xOf, xLabel, yMax, fixtures, id }) {
  const xMax = Math.max(...fixtures.map(xOf)) * 1.05
  const xs = niceStep(xMax); const ys = niceStep(yMax)
  const X = v => x0 + (v / xMax) * w; const Y = v => y0 + h - (v / yMax) * h
  const out = [`<clipPath id="${id}"><rect x="${x0}" y="${y0}" width="${w}" height="${h}"/></clipPath>`]
  for (let v = 0; v <= xMax + 1e-9; v += xs) {
    out.push(`<line x1="${num(X(v))}" y1="${y0}" x2="${num(X(v))}" y2="${y0 + h}" stroke="#eee"/>`,
      `<text x="${num(X(v))}" y="${y0 + h + 16}" text-anchor="middle">${esc(Number(v.toPrecision(6)))}</text>`)
  }
  for (let v = 0; v <= yMax + 1e-9; v += ys) {
    out.push(`<line x1="${x0}" y1="${num(Y(v))}" x2="${x0 + w}" y2="${num(Y(v))}" stroke="#eee"/>`,
      `<text x="${x0 - 6}" y="${num(Y(v) + 4)}" text-anchor="end">${esc(Number(v.toPrecision(6)))}</text>`)
  }
  fixtures.forEach((f, i) => { // where each fixture sits on this axis; names staggered as they may sit close
    out.push(`<line x1="${num(X(xOf(f)))}" y1="${y0}" x2="${num(X(xOf(f)))}" y2="${y0 + h}" stroke="#bbb" stroke-dasharray="1 3"/>`,
      `<text x="${num(X(xOf(f)) + 3)}" y="${y0 + 12 + 12 * i}" fill="#777">${esc(f.name)}</text>`)
  })
  out.push(`<rect x="${x0}" y="${y0}" width="${w}" height="${h}" fill="none" stroke="#444"/>`,
    `<text x="${x0 + w / 2}" y="${y0 + h + 36}" text-anchor="middle" font-size="13">${esc(xLabel)}</text>`,
    `<text transform="translate(${x0 - 42} ${y0 + h / 2}) rotate(-90)" text-anchor="middle" font-size="13">median wall time (s)</text>`)
  for (const s of series) {
    const pts = s.points.map(p => ({ x: xOf(p.fixture), y: p.y }))
    const line = fit(pts)
    if (line) {
      out.push(`<line x1="${num(X(0))}" y1="${num(Y(line.a))}" x2="${num(X(xMax))}" y2="${num(Y(line.a + line.b * xMax))}" ` +
        `stroke="${s.color}" stroke-width="1.5" stroke-dasharray="${s.style.dash}" clip-path="url(#${id})"/>`)
    }
    for (const p of pts) out.push(marker(s.style.mark, X(p.x), Y(p.y), s.color))
  }
  return out.join('\n')
}

function chart (fixtures, series) {
  const yMax = Math.max(...series.flatMap(s => s.points.map(p => p.y))) * 1.1 || 1
  const W = 1300; const pw = 400; const ph = 340; const top = 56; const legendX = 2 * (pw + 90) + 20
  const perK = x => x / 1000; const perMiB = x => x / 1048576
  const legend = series.map((s, i) => {
    const byPkg = fit(s.points.map(p => ({ x: perK(p.fixture.count), y: p.y })))
    const byMiB = fit(s.points.map(p => ({ x: perMiB(p.fixture.bytes) / 100, y: p.y })))
    const y = top + 10 + i * 34
    const slope = byPkg ? `${byPkg.a.toFixed(2)} s + ${byPkg.b.toFixed(2)} s/1000 pkgs; ${byMiB.b.toFixed(2)} s/100 MiB` : 'one size only: no line'
    return `<line x1="${legendX}" y1="${y}" x2="${legendX + 28}" y2="${y}" stroke="${s.color}" stroke-width="1.5" stroke-dasharray="${s.style.dash}"/>` +
      marker(s.style.mark, legendX + 14, y, s.color) +
      `<text x="${legendX + 36}" y="${y + 4}" font-size="13">${esc(`${s.tool} ${s.scenario}`)}</text>` +
      `<text x="${legendX + 36}" y="${y + 18}" fill="#555">${esc(slope)}</text>`
  }).join('\n')
  const H = Math.max(top + ph + 60, top + 20 + series.length * 34) + 24
  const sizes = fixtures.map(f => `${f.name}: ${f.count} packages, ${(f.bytes / 1048576).toFixed(1)} MiB`).join(' · ')
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
<text x="20" y="24" font-size="16" font-weight="bold">Frozen-lockfile install: median wall time against fixture size</text>
<text x="20" y="42" fill="#555">${esc(sizes)} · lines: least squares over the fixtures</text>
${panel({ x0: 70, y0: top, w: pw, h: ph, series, xOf: f => f.count, xLabel: 'packages installed', yMax, fixtures, id: 'p1' })}
${panel({ x0: 70 + pw + 90, y0: top, w: pw, h: ph, series, xOf: f => f.bytes / 1048576, xLabel: 'tarball bytes (MiB)', yMax, fixtures, id: 'p2' })}
${legend}
</svg>
`
}

// --- main --------------------------------------------------------------------------------

const args = process.argv.slice(2)
if (args[0] === '--sizes') {
  const [, mirror, ...dirs] = args
  for (const d of dirs) console.log(JSON.stringify(fixtureSize(d, mirror)))
  process.exit(0)
}
const [outFile, mirror, ...pairs] = args
if (!outFile || !mirror || pairs.length === 0 || pairs.some(p => !p.includes('='))) {
  console.error('usage: node plot.mjs <out.svg> <mirror-dir> <fixture-dir>=<results.tsv>...')
  process.exit(2)
}
const fixtures = []; const rows = []
for (const pair of pairs) {
  const eq = pair.indexOf('='); const dir = pair.slice(0, eq); const file = pair.slice(eq + 1)
  const fixture = fixtureSize(dir, mirror); fixtures.push(fixture)
  let cols = null
  for (const line of fs.readFileSync(file, 'utf8').trim().split('\n')) {
    const cells = line.split('\t')
    if (cells[0] === 'tool') { cols = cells; continue } // a header, also where tables were joined
    const r = Object.fromEntries(cells.map((v, i) => [cols[i], v]))
    if (r.rc === '0') rows.push({ ...r, fixture })
  }
}
const series = []; let unknown = 0
for (const scenario of Object.keys(styles).concat([...new Set(rows.map(r => r.scenario))].filter(s => !styles[s]))) {
  for (const tool of [...new Set(rows.map(r => r.tool))]) {
    const points = fixtures.map(fixture => {
      const walls = rows.filter(r => r.tool === tool && r.scenario === scenario && r.fixture === fixture).map(r => Number(r.wall_s))
      return walls.length ? { fixture, y: median(walls), n: walls.length } : null
    }).filter(Boolean)
    if (points.length === 0) continue
    const color = palette[tool] ?? extra[unknown++ % extra.length]
    series.push({ tool, scenario, points, color, style: styles[scenario] ?? styles.cold })
  }
}
if (series.length === 0) { console.error('no successful runs in the tables'); process.exit(1) }
fs.writeFileSync(outFile, chart(fixtures, series))
for (const f of fixtures) console.log(`${f.name}: ${f.count} packages installed (${f.skipped} optional ones skipped), ${f.bytes} tarball bytes`)
for (const s of series) {
  const a = fit(s.points.map(p => ({ x: p.fixture.count, y: p.y }))); const b = fit(s.points.map(p => ({ x: p.fixture.bytes / 1048576, y: p.y })))
  console.log(`${s.tool} ${s.scenario}: ${s.points.map(p => `${p.fixture.name} ${p.y.toFixed(2)} s (n=${p.n})`).join(', ')}` +
    (a ? `; ${(a.b * 1000).toFixed(2)} s per 1000 packages (r² ${a.r2.toFixed(3)}), ${(b.b * 100).toFixed(2)} s per 100 MiB (r² ${b.r2.toFixed(3)})` : ''))
}
console.log(`wrote ${outFile}`)
