//! A workspace: projects linked to each other (`link:`) and injected (`file:` directories),
//! laid out as pnpm 11 lays it out.

mod support;

use std::path::Path;
use std::sync::Arc;

use pacquet_install::{install, InstallOptions, LockfileSource, NoopReporter};
use support::{integrity, Pkg, Registry};
use tokio_util::sync::CancellationToken;

fn write(root: &Path, files: &[(&str, &str)]) {
  for (path, content) in files {
    let p = root.join(path);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
  }
}

/// Every file and symlink below `dir` (not following links), `/`-separated, sorted.
fn tree(dir: &Path) -> Vec<String> {
  let mut out = Vec::new();
  let mut stack = vec![(dir.to_path_buf(), String::new())];
  while let Some((path, rel)) = stack.pop() {
    for entry in std::fs::read_dir(&path).unwrap() {
      let entry = entry.unwrap();
      let name = entry.file_name().to_string_lossy().into_owned();
      let rel = if rel.is_empty() { name } else { format!("{rel}/{name}") };
      if entry.file_type().unwrap().is_dir() {
        stack.push((entry.path(), rel));
      } else {
        out.push(rel);
      }
    }
  }
  out.sort();
  out
}

fn link(path: &Path) -> String {
  std::fs::read_link(path)
    .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    .to_string_lossy()
    .into_owned()
}

/// The workspace of bench/fixtures/workspace in small: `app` injects `lib` (which declares
/// `files` and has a peer) and `native` (which has an install script), and links `tool`.
fn workspace(registry: &Registry, root: &Path) {
  let dep = Pkg::new("dep", "1.0.0");
  let peer = Pkg::new("peer", "2.0.0");
  for p in [&dep, &peer] {
    registry.add(&p.tarball_path(), p.tarball());
  }
  write(
    root,
    &[
      ("package.json", r#"{"name":"root","private":true}"#),
      ("pnpm-workspace.yaml", "packages:\n  - packages/*\n"),
      (
        "packages/app/package.json",
        r#"{"name":"app","dependencies":{"lib":"workspace:*","native":"workspace:*","peer":"2.0.0","tool":"workspace:*"},"dependenciesMeta":{"lib":{"injected":true},"native":{"injected":true}}}"#,
      ),
      (
        "packages/lib/package.json",
        r#"{"name":"lib","version":"1.0.0","main":"./lib/index.js","files":["lib","types"],"dependencies":{"dep":"1.0.0","tool":"workspace:*"},"peerDependencies":{"peer":"*"}}"#,
      ),
      ("packages/lib/lib/index.js", "module.exports = 'lib'\n"),
      ("packages/lib/lib/util.js", "\n"),
      ("packages/lib/lib/util.test.js", "\n"),
      ("packages/lib/lib/.npmignore", "*.test.js\n"),
      ("packages/lib/README.md", "# lib\n"),
      ("packages/lib/.npmignore", "lib\n"),
      ("packages/lib/test/lib.test.js", "\n"),
      ("packages/lib/node_modules/stale/index.js", "\n"),
      (
        "packages/native/package.json",
        r#"{"name":"native","version":"0.1.0","scripts":{"install":"node build.js"}}"#,
      ),
      ("packages/native/build.js", "\n"),
      ("packages/native/.gitignore", "out/\n"),
      ("packages/native/out/build.log", "\n"),
      ("packages/tool/package.json", r#"{"name":"tool","version":"0.1.0","bin":{"tool-cli":"cli.js"}}"#),
      ("packages/tool/cli.js", "#!/usr/bin/env node\n"),
    ],
  );
  let lockfile = format!(
    "lockfileVersion: '9.0'

settings:
  autoInstallPeers: true
  excludeLinksFromLockfile: false

importers:

  .: {{}}

  packages/app:
    dependencies:
      lib:
        specifier: workspace:*
        version: file:packages/lib(peer@2.0.0)
      native:
        specifier: workspace:*
        version: file:packages/native
      peer:
        specifier: 2.0.0
        version: 2.0.0
      tool:
        specifier: workspace:*
        version: link:../tool
    dependenciesMeta:
      lib:
        injected: true
      native:
        injected: true

  packages/lib:
    dependencies:
      dep:
        specifier: 1.0.0
        version: 1.0.0
      tool:
        specifier: workspace:*
        version: link:../tool

  packages/native: {{}}

  packages/tool: {{}}

packages:

  dep@1.0.0:
    resolution: {{integrity: {dep}}}

  lib@file:packages/lib:
    resolution: {{directory: packages/lib, type: directory}}
    peerDependencies:
      peer: '*'

  native@file:packages/native:
    resolution: {{directory: packages/native, type: directory}}

  peer@2.0.0:
    resolution: {{integrity: {peer}}}

snapshots:

  dep@1.0.0: {{}}

  lib@file:packages/lib(peer@2.0.0):
    dependencies:
      dep: 1.0.0
      peer: 2.0.0
      tool: link:packages/tool

  native@file:packages/native: {{}}

  peer@2.0.0: {{}}
",
    dep = integrity(&dep.tarball()),
    peer = integrity(&peer.tarball()),
  );
  std::fs::write(root.join("pnpm-lock.yaml"), lockfile).unwrap();
}

/// The workspace in `<tmp>/w`, served by a registry that must outlive the install.
async fn setup() -> (Registry, tempfile::TempDir, InstallOptions) {
  let registry = Registry::start().await;
  let tmp = tempfile::tempdir().unwrap();
  workspace(&registry, &tmp.path().join("w"));
  let mut options = InstallOptions { store_dir: Some(tmp.path().join("store")), ..Default::default() };
  options.registries.insert("default".into(), registry.url.clone());
  (registry, tmp, options)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_workspace_projects_and_injects_their_published_files() {
  let (_registry, tmp, options) = setup().await;
  let root = tmp.path().join("w");
  let summary =
    install(LockfileSource::Path(root.clone()), options, Arc::new(NoopReporter), CancellationToken::new())
      .await
      .unwrap();

  let vsd = root.join("node_modules/.pnpm");
  let app = root.join("packages/app/node_modules");
  // Injected: a slot named after the directory, with the peer in its suffix.
  assert_eq!(
    link(&app.join("lib")),
    "../../../node_modules/.pnpm/lib@file+packages+lib_peer@2.0.0/node_modules/lib"
  );
  assert_eq!(
    link(&app.join("native")),
    "../../../node_modules/.pnpm/native@file+packages+native/node_modules/native"
  );
  // Linked: straight to the project.
  assert_eq!(link(&app.join("tool")), "../../tool");
  assert_eq!(link(&app.join("peer")), "../../../node_modules/.pnpm/peer@2.0.0/node_modules/peer");
  assert_eq!(link(&root.join("packages/lib/node_modules/tool")), "../../tool");
  assert_eq!(
    link(&root.join("packages/lib/node_modules/dep")),
    "../../../node_modules/.pnpm/dep@1.0.0/node_modules/dep"
  );

  // The injected slot's own dependencies, a `link:` one relative to the lockfile's directory.
  let slot = vsd.join("lib@file+packages+lib_peer@2.0.0/node_modules");
  assert_eq!(link(&slot.join("dep")), "../../dep@1.0.0/node_modules/dep");
  assert_eq!(link(&slot.join("peer")), "../../peer@2.0.0/node_modules/peer");
  assert_eq!(link(&slot.join("tool")), "../../../../packages/tool");

  // Only what `npm pack` would publish: `files` (which beats .npmignore), lib/.npmignore
  // inside it, the readme and package.json; never node_modules or tests. Plus the `.bin` of
  // the slot's linked dependency.
  assert_eq!(
    tree(&slot.join("lib")),
    ["README.md", "lib/index.js", "lib/util.js", "node_modules/.bin/tool-cli", "package.json"]
  );
  // Without `files` or .npmignore, .gitignore decides.
  let native = vsd.join("native@file+packages+native/node_modules/native");
  assert_eq!(tree(&native), ["build.js", "package.json"]);

  #[cfg(unix)]
  {
    use std::os::unix::fs::MetadataExt;
    let nlink = |p: &Path| std::fs::metadata(p).unwrap().nlink();
    let ino = |p: &Path| std::fs::metadata(p).unwrap().ino();
    // Hardlinked from the project, as pnpm does for directories ...
    assert_eq!(ino(&slot.join("lib/lib/index.js")), ino(&root.join("packages/lib/lib/index.js")));
    // ... but copied when the package has an install script (its build must not write
    // through to the project), and reported as needing a build.
    assert_eq!(nlink(&native.join("build.js")), 1);
    assert_eq!(nlink(&root.join("packages/native/build.js")), 1);
  }
  assert_eq!(summary.deps_requiring_build, ["native@file:packages/native"]);

  // Each importer's `.bin` has its direct dependencies' commands, linked ones included.
  assert!(app.join(".bin/tool-cli").is_file());
  // The project's own files are untouched.
  assert!(root.join("packages/lib/node_modules/stale/index.js").is_file());
  assert!(root.join("packages/lib/test/lib.test.js").is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_importer_that_leaves_the_lockfile_takes_its_links_and_its_packages_along() {
  let (_registry, tmp, options) = setup().await;
  let root = tmp.path().join("w");
  let run = || {
    install(
      LockfileSource::Path(root.clone()),
      options.clone(),
      Arc::new(NoopReporter),
      CancellationToken::new(),
    )
  };
  run().await.unwrap();
  let vsd = root.join("node_modules/.pnpm");
  #[cfg(unix)]
  let ino = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
  #[cfg(unix)]
  let kept = ino(&vsd.join("dep@1.0.0/node_modules/dep/package.json"));

  // `app` leaves the workspace (its directory stays), and with it the packages only it used.
  let lockfile = std::fs::read_to_string(root.join("pnpm-lock.yaml")).unwrap();
  let gone = ["  packages/app:", "  lib@file", "  native@file", "  peer@2.0.0"];
  let out: String = lockfile
    .split_inclusive("\n\n")
    .filter(|block| !gone.iter().any(|p| block.trim_start_matches('\n').starts_with(p)))
    .collect();
  let out = out.replace("      tool: link:packages/tool\n", "");
  std::fs::write(root.join("pnpm-lock.yaml"), &out).unwrap();
  let summary = run().await.unwrap();
  assert_eq!(summary.added, 0);

  // The links and shims the install made in app's node_modules are gone, and so is the
  // directory; the project's own files stay.
  assert!(!root.join("packages/app/node_modules").exists());
  assert!(root.join("packages/app/package.json").is_file());
  for slot in ["lib@file+packages+lib_peer@2.0.0", "native@file+packages+native", "peer@2.0.0"] {
    assert!(!vsd.join(slot).exists(), "{slot} is removed");
  }
  // What the other importers use stays as it was.
  assert_eq!(
    link(&root.join("packages/lib/node_modules/dep")),
    "../../../node_modules/.pnpm/dep@1.0.0/node_modules/dep"
  );
  #[cfg(unix)]
  assert_eq!(ino(&vsd.join("dep@1.0.0/node_modules/dep/package.json")), kept);
  assert_eq!(std::fs::read_to_string(vsd.join("lock.yaml")).unwrap(), out);
}
