#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/seeds/<target>/: small, realistic inputs the fuzzer
mutates from. Run from anywhere; the output is committed, so this only needs rerunning when
the seeds change."""

import gzip
import io
import json
import pathlib
import tarfile

FUZZ = pathlib.Path(__file__).resolve().parent
ROOT = FUZZ.parent
SEEDS = FUZZ / "seeds"


def put(target, name, data):
    path = SEEDS / target / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())


# --- lockfile ---------------------------------------------------------------------------------

put("lockfile", "small.yaml", (ROOT / "bench/fixtures/small/pnpm-lock.yaml").read_bytes())
put("lockfile", "peers-aliases.yaml", """lockfileVersion: '9.0'
settings:
  autoInstallPeers: true
importers:
  .:
    dependencies:
      app:
        specifier: ^1.0.0
        version: 1.0.0(peer@2.0.0)
      alias:
        specifier: npm:real@1.0.0
        version: real@1.0.0
      local:
        specifier: link:packages/local
        version: link:packages/local
    devDependencies:
      '@scope/Dev':
        specifier: 3.0.0
        version: 3.0.0
    optionalDependencies:
      native:
        specifier: 1.0.0
        version: 1.0.0
  packages/local:
    dependencies:
      peer:
        specifier: 2.0.0
        version: 2.0.0
packages:
  app@1.0.0:
    resolution: {integrity: sha512-AAAA}
    peerDependencies:
      peer: '*'
  peer@2.0.0:
    resolution: {integrity: sha512-BBBB}
    hasBin: true
  real@1.0.0:
    resolution: {tarball: 'http://127.0.0.1/real.tgz'}
  '@scope/Dev@3.0.0':
    resolution: {integrity: sha1-CCCC}
    engines: {node: '>=18'}
  native@1.0.0:
    resolution: {integrity: sha512-DDDD}
    os: [darwin, '!win32']
    cpu: [arm64]
    libc: [musl]
    requiresBuild: true
  dir@file:packages/dir:
    resolution: {directory: packages/dir, type: directory}
  tgz@file:vendor/tgz.tgz:
    resolution: {integrity: sha512-EEEE, tarball: file:vendor/tgz.tgz}
snapshots:
  app@1.0.0(peer@2.0.0):
    dependencies:
      peer: 2.0.0
      dir: file:packages/dir
  peer@2.0.0: {}
  real@1.0.0:
    optionalDependencies:
      tgz: file:vendor/tgz.tgz
  '@scope/Dev@3.0.0': {}
  native@1.0.0:
    optional: true
  dir@file:packages/dir: {}
  tgz@file:vendor/tgz.tgz: {}
""")
put("lockfile", "object.json", json.dumps({
    "lockfileVersion": "9.0",
    "importers": {".": {"dependencies": {"a": {"specifier": "1", "version": "1.0.0(b@1.0.0)"}}}},
    "packages": {"a@1.0.0": {"resolution": {"integrity": "sha512-AA=="}},
                 "b@1.0.0": {"resolution": {"integrity": "sha512-BB=="}}},
    "snapshots": {"a@1.0.0(b@1.0.0)": {"dependencies": {"b": "1.0.0"}}, "b@1.0.0": {}},
}))
put("lockfile", "old-version.yaml", "lockfileVersion: '6.0'\n")

# --- tar_extract ------------------------------------------------------------------------------


def tarball(entries, compress=True, fmt=tarfile.GNU_FORMAT):
    """entries: (name, kind, payload, mode); payload is bytes for files, a target for links."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for name, kind, payload, mode in entries:
            info = tarfile.TarInfo(name)
            info.mode = mode
            info.mtime = 499162500  # pnpm's fixed date; keeps the seeds reproducible
            info.type = kind
            if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                info.linkname = payload
                tar.addfile(info)
            elif kind == tarfile.REGTYPE:
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
            else:
                tar.addfile(info)
    # Without the zero padding to a 10 KiB record: the fuzzer mutates structure, not padding.
    raw = buf.getvalue().rstrip(b"\0")
    raw += b"\0" * (-len(raw) % 512)
    return gzip.compress(raw, mtime=0) if compress else raw


F, D, S, H = tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE
pkg = b'{"name":"fuzz","version":"1.0.0","bin":"cli.js"}\n'
put("tar_extract", "package.tgz", tarball([
    ("package/package.json", F, pkg, 0o644),
    ("package/index.js", F, b"module.exports = 1\n", 0o644),
    ("package/cli.js", F, b"#!/usr/bin/env node\n", 0o755),
    ("package/lib/", D, None, 0o755),
    ("package/lib/a.js", F, b"exports.a = 'a'\n", 0o644),
]))
put("tar_extract", "plain.tar", tarball([
    ("package/package.json", F, b"\xef\xbb\xbf" + pkg, 0o644),
    ("package/empty", F, b"", 0o600),
], compress=False))
hostile = [
    ("package/../../escape.js", F, b"x", 0o644),
    ("/abs/path.js", F, b"y", 0o644),
    ("package\\..\\..\\win.js", F, b"z", 0o644),
    ("package/./a/../b.js", F, b"b", 0o644),
    ("package/link", S, "../../../../etc/passwd", 0o777),
    ("package/hard", H, "package/index.js", 0o644),
    ("package/dup.js", F, b"first", 0o644),
    ("package/dup.js", F, b"second", 0o755),
]
put("tar_extract", "hostile.tgz", tarball(hostile))
# Uncompressed, so mutations hit tar headers rather than break the deflate stream.
put("tar_extract", "hostile.tar", tarball(hostile, compress=False))
put("tar_extract", "pax-long-name.tar", tarball([
    ("package/" + "d/" * 60 + "long.js", F, b"long", 0o644),
    ("package/\u00e9t\u00e9.js", F, b"utf8", 0o644),
], compress=False, fmt=tarfile.PAX_FORMAT))

# --- msgpackr_row -----------------------------------------------------------------------------

vectors = json.loads((ROOT / "crates/store/src/msgpackr/vectors.json").read_text())
for vector in vectors:
    # The str32 vector is 200 kB; the rest are under 2 kB.
    if vector.get("hex"):
        put("msgpackr_row", vector["name"] + ".bin", bytes.fromhex(vector["hex"]))
