use super::*;
use serde_json::json;

fn files(paths: &[&str]) -> Vec<(String, PathBuf, u32)> {
  paths.iter().map(|p| (p.to_string(), PathBuf::new(), 0o644)).collect()
}

fn bins_of(manifest: Value, paths: &[&str]) -> Vec<(String, String)> {
  PackageBins::from_manifest(&manifest, &files(paths)).commands
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
  list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

fn cmd(name: &str, pkg: &str, version: &str) -> Command {
  Command {
    name: name.into(),
    target: PathBuf::from(format!("/m/{pkg}/{name}.js")),
    pkg_name: pkg.into(),
    pkg_version: version.into(),
    pkg_dir: PathBuf::from(format!("/m/{pkg}")),
  }
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
  use std::os::unix::fs::PermissionsExt;
  std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn write(path: &Path, content: &str) {
  std::fs::create_dir_all(path.parent().unwrap()).unwrap();
  std::fs::write(path, content).unwrap();
}

#[test]
fn bin_string_is_named_after_the_package() {
  assert_eq!(bins_of(json!({"name": "foo", "bin": "./cli.js"}), &[]), pairs(&[("foo", "cli.js")]));
  assert_eq!(bins_of(json!({"name": "@s/foo", "bin": "cli.js"}), &[]), pairs(&[("foo", "cli.js")]));
  // Without a name there is no command.
  assert!(bins_of(json!({"bin": "cli.js"}), &[]).is_empty());
}

#[test]
fn bin_object_names_and_paths() {
  let manifest = json!({"name": "p", "bin": {
    "a": "bin/a",
    "@scope/b": "bin\\b.js",
    "bad name": "x.js",
    "%20": "x.js",
    ".": "x.js",
    "..": "x.js",
    "$": "dollar.js",
    "ok!~*'()._-": "odd.js",
    "up": "../../x.js",
    "abs": "/etc/passwd",
    "drive": "C:\\x.js",
    "self": "./",
    "empty": "",
    "num": 5,
    "10": "ten.js",
    "2": "two.js",
  }});
  assert_eq!(
    bins_of(manifest, &[]),
    pairs(&[
      ("2", "two.js"),
      ("10", "ten.js"),
      ("a", "bin/a"),
      ("b", "bin/b.js"),
      ("$", "dollar.js"),
      ("ok!~*'()._-", "odd.js"),
      ("up", "x.js"),
    ])
  );
  // An array counts as an object keyed by index.
  assert_eq!(bins_of(json!({"name": "p", "bin": ["a.js"]}), &[]), pairs(&[("0", "a.js")]));
  // A trailing slash is kept (pnpm then finds no file there).
  assert_eq!(bins_of(json!({"name": "p", "bin": {"d": "dir/"}}), &[]), pairs(&[("d", "dir/")]));
}

#[test]
fn directories_bin_only_without_a_truthy_bin() {
  let all = ["bin/a", "bin/sub/b.js", "bin/.hidden", "bin/.dir/c", "lib/x.js", "binx/y", "top.js"];
  assert_eq!(
    bins_of(json!({"directories": {"bin": "./bin"}}), &all),
    pairs(&[("a", "bin/a"), ("b.js", "bin/sub/b.js")])
  );
  assert_eq!(
    bins_of(json!({"bin": "", "name": "p", "directories": {"bin": "bin/"}}), &all),
    pairs(&[("a", "bin/a"), ("b.js", "bin/sub/b.js")])
  );
  // A truthy `bin` that gives nothing still hides `directories.bin`.
  assert!(bins_of(json!({"bin": {}, "directories": {"bin": "bin"}}), &all).is_empty());
  assert!(bins_of(json!({"bin": [], "directories": {"bin": "bin"}}), &all).is_empty());
  assert!(bins_of(json!({"directories": {"bin": "../bin"}}), &all).is_empty());
  // The package itself: every file not under a dot-named entry.
  assert_eq!(bins_of(json!({"directories": {"bin": "."}}), &all).len(), 5);
  // `/bin` is joined, not absolute.
  assert_eq!(bins_of(json!({"directories": {"bin": "/bin/sub"}}), &all), pairs(&[("b.js", "bin/sub/b.js")]));
}

#[test]
fn directories_bin_on_disk() {
  let dir = tempfile::tempdir().unwrap();
  write(&dir.path().join("bin/a"), "");
  write(&dir.path().join("bin/sub/b"), "");
  write(&dir.path().join("bin/.x"), "");
  let bins =
    PackageBins::from_manifest_on_disk(&json!({"name": "p", "directories": {"bin": "bin"}}), dir.path());
  assert_eq!(bins.commands, pairs(&[("a", "bin/a"), ("b", "bin/sub/b")]));
}

#[test]
fn targets_and_commands_at_a_location() {
  let manifest =
    json!({"name": "p", "version": "1.0.0", "bin": {"a": "cli.js", "b": "./cli.js", "c": "../../x"}});
  assert_eq!(targets(&manifest, &[]), ["cli.js", "x"]);
  let cmds = commands(Path::new("/v/p@1.0.0/node_modules/p"), &manifest, &[]);
  assert_eq!(cmds.len(), 3);
  assert_eq!(cmds[0].target, Path::new("/v/p@1.0.0/node_modules/p/cli.js"));
  assert_eq!(cmds[2].target, Path::new("/v/p@1.0.0/node_modules/p/x"));
  assert_eq!((cmds[0].pkg_name.as_str(), cmds[0].pkg_version.as_str()), ("p", "1.0.0"));
  assert!(targets(&json!({"bin": "/etc/passwd", "name": "p"}), &[]).is_empty());
}

#[test]
fn conflicts_owner_then_name_then_version() {
  let win = |list: Vec<Command>| -> (String, String) {
    let w = resolve_conflicts(list.into_iter().map(|c| (c, false)).collect());
    assert_eq!(w.len(), 1);
    (w[0].pkg_name.clone(), w[0].pkg_version.clone())
  };
  // The package named like the command wins, in any order.
  assert_eq!(win(vec![cmd("foo", "zzz", "1.0.0"), cmd("foo", "foo", "1.0.0")]).0, "foo");
  assert_eq!(win(vec![cmd("foo", "foo", "1.0.0"), cmd("foo", "zzz", "1.0.0")]).0, "foo");
  // Otherwise the name that sorts last.
  assert_eq!(win(vec![cmd("x", "foo", "1.0.0"), cmd("x", "bar", "9.0.0")]).0, "foo");
  assert_eq!(win(vec![cmd("x", "bar", "1.0.0"), cmd("x", "foo", "1.0.0")]).0, "foo");
  assert_eq!(win(vec![cmd("x", "a-c", "1.0.0"), cmd("x", "ab", "1.0.0")]).0, "ab");
  // Same package: the higher version.
  assert_eq!(win(vec![cmd("x", "p", "1.0.0"), cmd("x", "p", "1.10.0"), cmd("x", "p", "1.9.0")]).1, "1.10.0");
  assert_eq!(win(vec![cmd("x", "p", "2.0.0-rc.1"), cmd("x", "p", "1.0.0")]).1, "2.0.0-rc.1");
  assert_eq!(win(vec![cmd("x", "p", "2.0.0-rc.1"), cmd("x", "p", "2.0.0")]).1, "2.0.0");
  // npx belongs to npm, pnpx to pnpm.
  assert_eq!(win(vec![cmd("npx", "npm", "1.0.0"), cmd("npx", "npx", "1.0.0")]).0, "npx");
  assert_eq!(win(vec![cmd("npx", "zzz", "1.0.0"), cmd("npx", "npm", "1.0.0")]).0, "npm");
  assert_eq!(win(vec![cmd("pnpx", "zzz", "1.0.0"), cmd("pnpx", "pnpm", "1.0.0")]).0, "pnpm");
  // A tie keeps the first.
  let mut a = cmd("x", "p", "1.0.0");
  a.pkg_dir = PathBuf::from("/first");
  let w = resolve_conflicts(vec![(a, false), (cmd("x", "p", "1.0.0"), false)]);
  assert_eq!(w[0].pkg_dir, Path::new("/first"));
}

#[test]
fn direct_dependencies_hide_the_others() {
  let w = resolve_conflicts(vec![
    (cmd("x", "x", "1.0.0"), false),
    (cmd("x", "a", "1.0.0"), true),
    (cmd("y", "b", "1.0.0"), false),
  ]);
  let got: Vec<_> = w.iter().map(|c| (c.name.as_str(), c.pkg_name.as_str())).collect();
  assert_eq!(got, [("x", "a"), ("y", "b")]);
}

#[test]
fn locale_compare_matches_node() {
  // `a.localeCompare(b)` in Node 24 (ICU, en-US).
  let cases = [
    ("a-b", "ab", -1),
    ("a-b", "a.b", -1),
    ("ab", "a_b", 1),
    ("a1", "a-1", 1),
    ("Ab", "ab", 1),
    ("ab", "AC", -1),
    ("@types/x", "types", -1),
    ("a-c", "ab", -1),
    ("abc", "ab-c", 1),
    ("e", "f", -1),
    ("foo", "bar", 1),
    ("a", "a", 0),
    ("z9", "za", -1),
    ("@b/a", "@a/b", 1),
    ("a~", "a$", -1),
  ];
  for (a, b, expected) in cases {
    assert_eq!(locale_compare(a, b) as i32, expected, "{a} vs {b}");
  }
}

#[test]
fn semver() {
  use Ordering::*;
  assert_eq!(semver_compare("1.2.3", "1.2.3"), Equal);
  assert_eq!(semver_compare("1.2.3", "1.10.0"), Less);
  assert_eq!(semver_compare("v1.2.3", "1.2.2"), Greater);
  assert_eq!(semver_compare("1.0.0-alpha", "1.0.0-alpha.1"), Less);
  assert_eq!(semver_compare("1.0.0-alpha.beta", "1.0.0-beta"), Less);
  assert_eq!(semver_compare("1.0.0-beta.2", "1.0.0-beta.11"), Less);
  assert_eq!(semver_compare("1.0.0-rc.1", "1.0.0"), Less);
  assert_eq!(semver_compare("1.0.0-1", "1.0.0-a"), Less);
  assert_eq!(semver_compare("1.0.0+b", "1.0.0+a"), Equal);
  assert_eq!(semver_compare("x", "1.0.0"), Equal);
}

#[test]
fn shebangs() {
  let p = |line: &str| parse_shebang(line);
  let some = |a: &str, b: &str| Some((a.to_string(), b.to_string()));
  assert_eq!(p("#!/usr/bin/env node"), some("node", ""));
  assert_eq!(p("#!/usr/bin/env -S node --no-warnings"), some("node", " --no-warnings"));
  assert_eq!(p("#! /bin/sh -e"), some("/bin/sh", " -e"));
  assert_eq!(p("#!/usr/bin/node"), some("/usr/bin/node", ""));
  assert_eq!(p("#!/usr/bin/env"), some("/usr/bin/env", ""));
  assert_eq!(p("#!/usr/bin/env -S"), some("-S", ""));
  assert_eq!(p("#!/usr/bin/envnode x"), some("node", " x"));
  assert_eq!(p("#!node\rx"), some("node\rx", ""));
  assert_eq!(p("#!node a\rb"), None);
  assert_eq!(p("#!"), None);
  assert_eq!(p("// no"), None);
  let r = Runtime::from_content("\u{feff}\n#!/usr/bin/env node\r\nx", Path::new("a"));
  assert_eq!(r.program.as_deref(), Some("node"));
  assert_eq!(r.args, "");
  let r = Runtime::from_content("console.log(1)", Path::new("/x/a.CJS"));
  assert_eq!(r.program.as_deref(), Some("node"));
  let r = Runtime::from_content("x", Path::new("/x/a.bat"));
  assert_eq!((r.program.as_deref(), r.args.as_str()), (Some("cmd"), "/C"));
  assert_eq!(Runtime::from_content("x", Path::new("/x/.js")).program, None);
  assert_eq!(Runtime::from_content("", Path::new("/x/run")).program, None);
}

#[test]
fn relative_paths() {
  assert_eq!(relative(Path::new("/a/b/.bin"), Path::new("/a/b/c/x.js")), "../c/x.js");
  assert_eq!(relative(Path::new("/a/b"), Path::new("/a/b")), "");
  assert_eq!(relative(Path::new("/a/b/c"), Path::new("/x")), "../../../x");
  assert_eq!(relative(Path::new("/a/./b/../c"), Path::new("/a/c/d")), "d");
}

#[test]
fn node_path_of_a_target() {
  let v = Path::new("/p/node_modules/.pnpm");
  assert_eq!(
    bin_node_path(&v.join("mime@1.6.0/node_modules/mime")),
    [v.join("mime@1.6.0/node_modules/mime/node_modules"), v.join("mime@1.6.0/node_modules")]
  );
  assert_eq!(
    bin_node_path(&v.join("@babel+parser@7.0.0/node_modules/@babel/parser/bin")),
    [
      v.join("@babel+parser@7.0.0/node_modules/@babel/parser/node_modules"),
      v.join("@babel+parser@7.0.0/node_modules")
    ]
  );
  // A bundled package: its own `node_modules` is the closest.
  assert_eq!(
    bin_node_path(&v.join("a@1.0.0/node_modules/a/node_modules/b/bin")),
    [
      v.join("a@1.0.0/node_modules/a/node_modules/b/node_modules"),
      v.join("a@1.0.0/node_modules/a/node_modules")
    ]
  );
  assert!(bin_node_path(Path::new("/work/packages/tool/bin")).is_empty());
  assert_eq!(extra_node_path(v, true, true), [PathBuf::from("/p/node_modules/.pnpm/node_modules")]);
  assert!(extra_node_path(v, false, true).is_empty());
  assert!(extra_node_path(v, true, false).is_empty());
}

/// A tree like pnpm's: `<root>/node_modules/.pnpm/<slot>/node_modules/<name>/<file>`.
#[cfg(unix)]
fn slot_package(root: &Path, slot: &str, name: &str, file: &str, content: &str) -> PathBuf {
  let dir = root.join("node_modules/.pnpm").join(slot).join("node_modules").join(name);
  write(&dir.join(file), content);
  dir
}

#[cfg(unix)]
fn with_root(template: &str, root: &Path) -> String {
  template.replace("@ROOT@", &root.to_string_lossy())
}

#[cfg(unix)]
#[test]
fn importer_shim_is_byte_for_byte_pnpms() {
  let tmp = tempfile::tempdir().unwrap();
  let root = std::fs::canonicalize(tmp.path()).unwrap();
  let pkg = slot_package(
    &root,
    "autoprefixer@10.5.0_postcss@8.5.10",
    "autoprefixer",
    "bin/autoprefixer",
    "#!/usr/bin/env node\n\nlet mode = process.argv[2]\n",
  );
  std::os::unix::fs::symlink(
    ".pnpm/autoprefixer@10.5.0_postcss@8.5.10/node_modules/autoprefixer",
    root.join("node_modules/autoprefixer"),
  )
  .unwrap();
  let manifest =
    json!({"name": "autoprefixer", "version": "10.5.0", "bin": {"autoprefixer": "bin/autoprefixer"}});
  let modules = root.join("node_modules");
  let direct = commands(&modules.join("autoprefixer"), &manifest, &[]);
  let extra = extra_node_path(&modules.join(".pnpm"), true, true);
  let linked = link_importer_bins(
    &modules,
    direct.into_iter().map(|c| (c, true)).collect(),
    Vec::new(),
    &LinkOptions { extra_node_path: extra, ..LinkOptions::default() },
  )
  .unwrap();
  assert_eq!(linked.written, 1);
  let shim = modules.join(".bin/autoprefixer");
  assert_eq!(
    std::fs::read_to_string(&shim).unwrap(),
    with_root(include_str!("testdata/importer-autoprefixer.sh"), &root)
  );
  assert_eq!(mode(&shim), 0o755);
  // The target was 0644: pnpm makes it executable.
  assert_eq!(mode(&pkg.join("bin/autoprefixer")), 0o755);
}

#[cfg(unix)]
#[test]
fn slot_shim_is_byte_for_byte_pnpms() {
  let tmp = tempfile::tempdir().unwrap();
  let root = std::fs::canonicalize(tmp.path()).unwrap();
  let send = slot_package(&root, "send@0.19.2", "send", "index.js", "");
  let mime = slot_package(
    &root,
    "mime@1.6.0",
    "mime",
    "cli.js",
    "#!/usr/bin/env node\n\nvar mime = require('./mime.js');\n",
  );
  let manifest = json!({"name": "mime", "version": "1.6.0", "bin": {"mime": "cli.js"}});
  let candidates = commands(&mime, &manifest, &[]).into_iter().map(|c| (c, false)).collect();
  let extra = extra_node_path(&root.join("node_modules/.pnpm"), true, true);
  assert_eq!(link_bins(&slot_bin_dir(&send), candidates, &extra).unwrap(), 1);
  assert_eq!(
    std::fs::read_to_string(slot_bin_dir(&send).join("mime")).unwrap(),
    with_root(include_str!("testdata/slot-send-mime.sh"), &root)
  );
}

#[cfg(unix)]
#[test]
fn shim_variants() {
  let tmp = tempfile::tempdir().unwrap();
  let root = std::fs::canonicalize(tmp.path()).unwrap();
  let pkg = slot_package(&root, "t@1.0.0", "t", "plain", "echo hi\n");
  write(&pkg.join("args"), "#!/usr/bin/env -S node --no-warnings\n");
  write(&pkg.join("win.cmd"), "@echo off\r\n");
  write(&pkg.join("sh"), "#!/bin/sh\n");
  std::fs::create_dir_all(pkg.join("dir")).unwrap();
  let manifest = json!({"name": "t", "version": "1.0.0", "bin": {
    "plain": "plain", "args": "args", "win": "win.cmd", "sh": "sh", "gone": "gone.js", "dir": "dir"
  }});
  let bin_dir = root.join("bin-dir");
  let linked = link_bins_with(
    &bin_dir,
    commands(&pkg, &manifest, &[]).into_iter().map(|c| (c, false)).collect(),
    &LinkOptions::default(),
  )
  .unwrap();
  assert_eq!(linked.written, 5);
  assert_eq!(linked.warnings.len(), 1, "{:?}", linked.warnings);
  assert!(!bin_dir.join("dir").exists());
  let read = |name: &str| std::fs::read_to_string(bin_dir.join(name)).unwrap();
  let body = |name: &str| read(name)[PRELUDE.len()..].to_string();
  let rel = relative(&bin_dir, &pkg);
  // No extra node path: no NODE_PATH block at all.
  assert!(!read("plain").contains("NODE_PATH"));
  assert_eq!(
    body("plain"),
    format!(
      "exec \"$basedir_abs\"/'{rel}/plain'   \"$@\"\nexit $?\n# cmd-shim-target={}\n",
      pkg.join("plain").display()
    )
  );
  assert!(body("args")
    .contains(&format!("  exec \"$basedir/node\"  --no-warnings \"$basedir_abs\"/'{rel}/args' \"$@\"\n")));
  assert!(body("sh").contains("elif [ -x \"$basedir//bin/sh\" ]; then\n"));
  assert!(body("win").starts_with("if [ -n \"$msys\" ]; then\n  export MSYS2_ARG_CONV_EXCL=\"/C${MSYS2_ARG_CONV_EXCL:+;$MSYS2_ARG_CONV_EXCL}\"\nfi\n"));
  assert!(body("win").contains(" exec \"$basedir/cmd\" /C \"$basedir_abs\"/"));
  assert!(body("gone").contains("exec \"$basedir/node\"  \"$basedir_abs\"/"));
  assert!(body("gone")
    .ends_with(&format!("# cmd-shim-missing-target\n# cmd-shim-target={}\n", pkg.join("gone.js").display())));
  // Rewriting the same shim is a no-op; a different target replaces it.
  let before = std::fs::metadata(bin_dir.join("plain")).unwrap().modified().unwrap();
  link_bins(&bin_dir, vec![(commands(&pkg, &manifest, &[]).remove(0), false)], &[]).unwrap();
  assert_eq!(std::fs::metadata(bin_dir.join("plain")).unwrap().modified().unwrap(), before);
}

#[cfg(unix)]
#[test]
fn node_is_a_symlink_and_symlinked_executables() {
  let tmp = tempfile::tempdir().unwrap();
  let root = std::fs::canonicalize(tmp.path()).unwrap();
  let pkg = slot_package(&root, "n@1.0.0", "n", "bin/node", "binary");
  write(&pkg.join("cli.js"), "#!/usr/bin/env node\n");
  let manifest = json!({"name": "n", "version": "1.0.0", "bin": {"node": "bin/node", "cli": "cli.js"}});
  let bin_dir = root.join("b");
  link_bins(&bin_dir, commands(&pkg, &manifest, &[]).into_iter().map(|c| (c, false)).collect(), &[]).unwrap();
  assert_eq!(std::fs::read_link(bin_dir.join("node")).unwrap(), pkg.join("bin/node"));
  assert_eq!(mode(&pkg.join("bin/node")), 0o644);
  assert!(std::fs::symlink_metadata(bin_dir.join("cli")).unwrap().is_file());

  let options = LinkOptions { prefer_symlinked_executables: true, ..LinkOptions::default() };
  link_bins_with(
    &bin_dir,
    commands(&pkg, &manifest, &[]).into_iter().map(|c| (c, false)).collect(),
    &options,
  )
  .unwrap();
  assert_eq!(
    std::fs::read_link(bin_dir.join("cli")).unwrap(),
    Path::new("../node_modules/.pnpm/n@1.0.0/node_modules/n/cli.js")
  );
  assert_eq!(mode(&pkg.join("cli.js")), 0o755);
}

#[cfg(unix)]
#[test]
fn crlf_shebang_is_fixed_and_only_inside_node_modules() {
  let tmp = tempfile::tempdir().unwrap();
  let root = std::fs::canonicalize(tmp.path()).unwrap();
  let pkg = slot_package(&root, "c@1.0.0", "c", "cli.js", "#!/usr/bin/env node\r\nconsole.log(1)\r\n");
  let manifest = json!({"name": "c", "version": "1.0.0", "bin": "cli.js"});
  let extra = [root.join("node_modules/.pnpm/node_modules")];
  link_bins(
    &root.join("b"),
    commands(&pkg, &manifest, &[]).into_iter().map(|c| (c, false)).collect(),
    &extra,
  )
  .unwrap();
  assert_eq!(std::fs::read_to_string(pkg.join("cli.js")).unwrap(), "#!/usr/bin/env node\nconsole.log(1)\r\n");
  assert_eq!(mode(&pkg.join("cli.js")), 0o755);
  // A workspace package (outside any node_modules) is left as it is.
  let ws = root.join("packages/w");
  write(&ws.join("cli.js"), "#!/usr/bin/env node\n");
  link_bins(
    &root.join("b2"),
    commands(&ws, &manifest, &[]).into_iter().map(|c| (c, false)).collect(),
    &extra,
  )
  .unwrap();
  assert_eq!(mode(&ws.join("cli.js")), 0o644);
  // …and its shim's NODE_PATH is only the extra entry.
  assert!(std::fs::read_to_string(root.join("b2/c"))
    .unwrap()
    .contains(&format!("  export NODE_PATH='{}'\n", extra[0].display())));
}

#[cfg(unix)]
#[test]
fn importer_peers_and_stale_shims() {
  let tmp = tempfile::tempdir().unwrap();
  let root = std::fs::canonicalize(tmp.path()).unwrap();
  let modules = root.join("node_modules");
  let loader = slot_package(&root, "loader@1.0.0_webpack@5.0.0", "loader", "index.js", "");
  let other = slot_package(&root, "a-plugin@1.0.0_webpack@5.0.0", "a-plugin", "index.js", "");
  let webpack = slot_package(&root, "webpack@5.0.0", "webpack", "bin/webpack.js", "#!/usr/bin/env node\n");
  let tool = slot_package(&root, "tool@1.0.0", "tool", "cli.js", "#!/usr/bin/env node\n");
  for (slot, name) in [("loader@1.0.0_webpack@5.0.0", "loader"), ("a-plugin@1.0.0_webpack@5.0.0", "a-plugin")]
  {
    std::os::unix::fs::symlink(
      &webpack,
      root.join("node_modules/.pnpm").join(slot).join("node_modules/webpack"),
    )
    .unwrap();
    std::os::unix::fs::symlink(
      root.join("node_modules/.pnpm").join(slot).join("node_modules").join(name),
      modules.join(name),
    )
    .unwrap();
  }
  std::os::unix::fs::symlink(&tool, modules.join("tool")).unwrap();
  let webpack_manifest = json!({"name": "webpack", "version": "5.0.0", "bin": {"webpack": "bin/webpack.js", "tool": "bin/webpack.js"}});
  let loader_manifest = json!({"name": "loader", "peerDependencies": {"webpack": "5", "opt": "1"}, "peerDependenciesMeta": {"opt": {"optional": true}}});
  let peers = auto_installed_peers(&loader_manifest, |n| n == "webpack" || n == "opt");
  assert_eq!(peers, ["webpack"]);
  assert_eq!(peer_location(&loader, "webpack"), loader.parent().unwrap().join("webpack"));
  assert_eq!(peer_location(Path::new("/v/s/node_modules/@a/b"), "p"), Path::new("/v/s/node_modules/p"));
  let peer_cmds: Vec<Command> = [&loader, &other]
    .iter()
    .flat_map(|d| PackageBins::from_manifest(&webpack_manifest, &[]).at(&peer_location(d, "webpack")))
    .collect();
  let direct =
    commands(&modules.join("tool"), &json!({"name": "tool", "version": "1.0.0", "bin": "cli.js"}), &[]);
  // A shim from an earlier install, and a file that is not pnpm's.
  write(
    &modules.join(".bin/old"),
    "#!/bin/sh\n# Resolve $0 through symlinks so basedir is the shim's real directory.\n",
  );
  write(&modules.join(".bin/mine"), "#!/bin/sh\necho mine\n");
  let linked = link_importer_bins(
    &modules,
    direct.into_iter().map(|c| (c, true)).collect(),
    peer_cmds,
    &LinkOptions::default(),
  )
  .unwrap();
  assert_eq!(linked.written, 2);
  let mut names: Vec<_> = std::fs::read_dir(modules.join(".bin"))
    .unwrap()
    .map(|e| e.unwrap().file_name().into_string().unwrap())
    .collect();
  names.sort();
  assert_eq!(names, ["mine", "tool", "webpack"]);
  // The peer comes through the first direct dependency's slot (by path), `tool` from the
  // direct dependency.
  let webpack_shim = std::fs::read_to_string(modules.join(".bin/webpack")).unwrap();
  assert!(webpack_shim.ends_with(&format!(
    "# cmd-shim-target={}\n",
    other.parent().unwrap().join("webpack/bin/webpack.js").display()
  )));
  assert!(std::fs::read_to_string(modules.join(".bin/tool"))
    .unwrap()
    .ends_with(&format!("# cmd-shim-target={}\n", modules.join("tool/cli.js").display())));
}

#[cfg(unix)]
#[test]
fn bundled_packages() {
  let tmp = tempfile::tempdir().unwrap();
  let pkg = tmp.path().join("p");
  write(&pkg.join("node_modules/b/package.json"), r#"{"name":"b","version":"1.0.0","bin":"cli.js"}"#);
  write(
    &pkg.join("node_modules/@s/c/package.json"),
    r#"{"name":"@s/c","version":"1.0.0","directories":{"bin":"bin"}}"#,
  );
  write(&pkg.join("node_modules/@s/c/bin/cc"), "");
  write(&pkg.join("node_modules/nomanifest/x"), "");
  write(&pkg.join("node_modules/.bin/x"), "");
  let cmds = bundled_commands(&pkg).unwrap();
  let got: Vec<_> = cmds.iter().map(|c| (c.name.as_str(), c.target.clone())).collect();
  assert_eq!(got, [("cc", pkg.join("node_modules/@s/c/bin/cc")), ("b", pkg.join("node_modules/b/cli.js")),]);
  assert!(has_bundled_dependencies(&json!({"bundledDependencies": ["b"]})));
  assert!(has_bundled_dependencies(&json!({"bundleDependencies": true})));
  assert!(!has_bundled_dependencies(&json!({"name": "x"})));
}

#[test]
fn no_candidates_no_directory() {
  let tmp = tempfile::tempdir().unwrap();
  assert_eq!(link_bins(&tmp.path().join("b"), Vec::new(), &[]).unwrap(), 0);
  assert!(!tmp.path().join("b").exists());
}

/// Every shim pnpm 11 wrote for the `alotta` fixture, regenerated from its target and
/// compared byte for byte; and which commands each directory got, recomputed from the
/// lockfile and the packages' manifests.
#[cfg(unix)]
#[test]
fn matches_pnpm_11_install_of_alotta() {
  for root in ["/tmp/parity/pnpm11/project", "/tmp/parity/pnpm11-small/project"] {
    let root = Path::new(root);
    if !root.join("node_modules/.pnpm").exists() {
      eprintln!("skipped: no pnpm 11 install at {}", root.display());
      continue;
    }
    check_install(root);
  }
}

#[cfg(unix)]
fn check_install(root: &Path) {
  use pacquet_lockfile::{
    dep_path_to_filename, parse_pkg_key, read_lockfile, ref_to_dep_path, remove_peer_suffix, DependencyRef,
    LockfileSource,
  };

  let modules = root.join("node_modules");
  let vsd = modules.join(".pnpm");
  let options = LinkOptions { extra_node_path: extra_node_path(&vsd, true, true), ..LinkOptions::default() };
  let (lockfile, _) = read_lockfile(LockfileSource::Path(root.join("pnpm-lock.yaml"))).unwrap();
  let pkg_dir_of = |dep_path: &str| -> PathBuf {
    let key = parse_pkg_key(remove_peer_suffix(dep_path)).unwrap();
    vsd.join(dep_path_to_filename(dep_path, 120)).join("node_modules").join(key.name)
  };
  let has_bin = |dep_path: &str| {
    lockfile.packages.get(remove_peer_suffix(dep_path)).and_then(|p| p.has_bin).unwrap_or(false)
  };

  // What pnpm wrote: bin dir → (name → target).
  let read_dir = |dir: &Path| -> Vec<(String, String)> {
    let mut out: Vec<_> = match std::fs::read_dir(dir) {
      Ok(entries) => entries
        .map(|e| {
          let e = e.unwrap();
          let text = std::fs::read_to_string(e.path()).unwrap();
          let target = text.lines().last().unwrap().strip_prefix("# cmd-shim-target=").unwrap().to_string();
          (e.file_name().into_string().unwrap(), target)
        })
        .collect(),
      Err(_) => Vec::new(),
    };
    out.sort();
    out
  };
  let expect = |dir: &Path, winners: Vec<Command>| {
    let mut ours: Vec<_> =
      winners.into_iter().map(|c| (c.name, c.target.to_string_lossy().into_owned())).collect();
    ours.sort();
    assert_eq!(ours, read_dir(dir), "{}", dir.display());
  };

  let mut checked_shims = 0;
  let mut check_shims = |dir: &Path| {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let physical = std::fs::canonicalize(dir).unwrap();
    for e in entries {
      let path = e.unwrap().path();
      let theirs = std::fs::read_to_string(&path).unwrap();
      let target = PathBuf::from(theirs.lines().last().unwrap().strip_prefix("# cmd-shim-target=").unwrap());
      let runtime = Runtime::of(&target).unwrap();
      let node_path = shim_node_path(&target, &options).unwrap().unwrap();
      let ours =
        sh_shim(&relative(&sh_shim_dir(dir, &physical, &target), &target), &target, &runtime, &node_path);
      assert_eq!(ours, theirs, "{}", path.display());
      assert_eq!(mode(&path), 0o755, "{}", path.display());
      assert_eq!(mode(&target) & 0o111, 0o111, "{}", target.display());
      checked_shims += 1;
    }
  };

  // Slots: the children that have `hasBin`, at their own slots.
  for (dep_path, snapshot) in &lockfile.snapshots {
    let pkg_dir = pkg_dir_of(dep_path);
    let mut candidates = Vec::new();
    for (alias, reference) in snapshot.dependencies.iter().chain(&snapshot.optional_dependencies) {
      if let DependencyRef::Snapshot(child) = ref_to_dep_path(reference, alias) {
        if has_bin(&child) {
          let dir = pkg_dir_of(&child);
          candidates.extend(
            PackageBins::from_manifest(&manifest_at(&dir), &[]).at(&dir).into_iter().map(|c| (c, false)),
          );
        }
      }
    }
    expect(&slot_bin_dir(&pkg_dir), resolve_conflicts(candidates));
    check_shims(&slot_bin_dir(&pkg_dir));
  }

  // The importer: direct dependencies through `node_modules/<alias>`, then their peers.
  let importer = &lockfile.importers["."];
  let mut direct = Vec::new();
  let mut peers = Vec::new();
  for (alias, dep) in
    importer.dev_dependencies.iter().chain(&importer.dependencies).chain(&importer.optional_dependencies)
  {
    let DependencyRef::Snapshot(dep_path) = ref_to_dep_path(&dep.version, alias) else { continue };
    let location = modules.join(alias);
    let manifest = manifest_at(&location);
    direct.extend(PackageBins::from_manifest(&manifest, &[]).at(&location).into_iter().map(|c| (c, true)));
    let snapshot = &lockfile.snapshots[&dep_path];
    let slot_pkg = pkg_dir_of(&dep_path);
    for peer in auto_installed_peers(&manifest, |n| {
      snapshot.dependencies.contains_key(n) || snapshot.optional_dependencies.contains_key(n)
    }) {
      let location = peer_location(&slot_pkg, peer);
      peers.extend(PackageBins::from_manifest(&manifest_at(&location), &[]).at(&location));
    }
  }
  let direct_names: HashSet<_> = direct.iter().map(|(c, _)| c.name.clone()).collect();
  peers.sort_by(|a, b| a.pkg_dir.as_os_str().cmp(b.pkg_dir.as_os_str()));
  let mut winners = resolve_conflicts(direct);
  winners.extend(resolve_conflicts(
    peers.into_iter().filter(|c| !direct_names.contains(&c.name)).map(|c| (c, false)).collect(),
  ));
  expect(&modules.join(".bin"), winners);
  check_shims(&modules.join(".bin"));

  // Hoisted: the hoisted aliases' packages.
  let candidates = hoisted_candidates(&vsd);
  expect(&hoisted_bin_dir(&vsd), resolve_conflicts(candidates));
  check_shims(&hoisted_bin_dir(&vsd));
  assert!(checked_shims > 0);
  eprintln!("{}: {checked_shims} shims match", root.display());
}

#[cfg(unix)]
#[test]
fn a_slot_with_a_link_child_reads_its_node_modules() {
  let tmp = tempfile::tempdir().unwrap();
  let root = std::fs::canonicalize(tmp.path()).unwrap();
  let own = slot_package(&root, "a@1.0.0", "a", "package.json", r#"{"name":"a","bin":"a.js"}"#);
  let b =
    slot_package(&root, "b@1.0.0", "b", "package.json", r#"{"name":"b","version":"1.0.0","bin":"b.js"}"#);
  let ws = root.join("packages/w");
  write(&ws.join("package.json"), r#"{"name":"w","bin":{"w":"w.js"}}"#);
  let modules = own.parent().unwrap();
  std::os::unix::fs::symlink(&b, modules.join("b")).unwrap();
  std::os::unix::fs::symlink(&ws, modules.join("w")).unwrap();
  let got: Vec<_> =
    modules_dir_commands(modules, Some(&own)).unwrap().into_iter().map(|c| (c.name, c.target)).collect();
  assert_eq!(got, [("b".to_string(), modules.join("b/b.js")), ("w".to_string(), modules.join("w/w.js"))]);
}

#[test]
fn locale_compare_matches_node_on_generated_names() {
  let mut checked = 0;
  for line in include_str!("testdata/locale-compare.tsv").lines().skip(1) {
    let mut parts = line.split('\t');
    let (a, b, sign) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
    assert_eq!(locale_compare(a, b) as i32, sign.parse::<i32>().unwrap(), "{a:?} vs {b:?}");
    checked += 1;
  }
  assert_eq!(checked, 400);
}

#[cfg(unix)]
#[test]
fn a_project_reached_through_a_symlink() {
  let tmp = tempfile::tempdir().unwrap();
  let real = std::fs::canonicalize(tmp.path()).unwrap().join("real");
  let pkg = slot_package(&real, "m@1.0.0", "m", "cli.js", "#!/usr/bin/env node\n");
  let via = tmp.path().join("via");
  std::os::unix::fs::symlink(&real, &via).unwrap();
  let location = via.join("node_modules/.pnpm/m@1.0.0/node_modules/m");
  let cmds = commands(&location, &json!({"name": "m", "version": "1.0.0", "bin": "cli.js"}), &[]);
  let bin_dir = via.join("node_modules/.bin");
  let extra = [via.join("node_modules/.pnpm/node_modules")];
  link_bins(&bin_dir, cmds.into_iter().map(|c| (c, false)).collect(), &extra).unwrap();
  let shim = std::fs::read_to_string(bin_dir.join("m")).unwrap();
  // The target relative to the bin directory as reached, the target line as linked, and
  // NODE_PATH from the real directories.
  assert!(shim.contains("\"$basedir_abs\"/'../.pnpm/m@1.0.0/node_modules/m/cli.js' \"$@\"\n"));
  assert!(shim.ends_with(&format!("# cmd-shim-target={}\n", location.join("cli.js").display())));
  let node_path = format!(
    "{}:{}:{}",
    pkg.join("node_modules").display(),
    pkg.parent().unwrap().display(),
    extra[0].display()
  );
  assert!(shim.contains(&format!("  export NODE_PATH='{node_path}'\n")), "{shim}");
}

/// With `PACQUET_BINS_RELINK=<project>` (a copy of a pnpm-installed project whose `.bin`
/// directories were removed): links every bin directory as the pipeline would, to compare
/// the tree with pnpm's afterwards.
#[cfg(unix)]
#[test]
fn relink_a_copy_of_a_pnpm_install() {
  use pacquet_lockfile::{
    dep_path_to_filename, parse_pkg_key, read_lockfile, ref_to_dep_path, remove_peer_suffix, DependencyRef,
    LockfileSource,
  };
  let Ok(root) = std::env::var("PACQUET_BINS_RELINK") else { return };
  let root = PathBuf::from(root);
  let modules = root.join("node_modules");
  let vsd = modules.join(".pnpm");
  let options = LinkOptions { extra_node_path: extra_node_path(&vsd, true, true), ..LinkOptions::default() };
  let (lockfile, _) = read_lockfile(LockfileSource::Path(root.join("pnpm-lock.yaml"))).unwrap();
  let pkg_dir_of = |dep_path: &str| -> PathBuf {
    let key = parse_pkg_key(remove_peer_suffix(dep_path)).unwrap();
    vsd.join(dep_path_to_filename(dep_path, 120)).join("node_modules").join(key.name)
  };
  let has_bin = |dep_path: &str| {
    lockfile.packages.get(remove_peer_suffix(dep_path)).and_then(|p| p.has_bin).unwrap_or(false)
  };
  let mut written = 0;
  for (dep_path, snapshot) in &lockfile.snapshots {
    let mut candidates = Vec::new();
    for (alias, reference) in snapshot.dependencies.iter().chain(&snapshot.optional_dependencies) {
      if let DependencyRef::Snapshot(child) = ref_to_dep_path(reference, alias) {
        if has_bin(&child) {
          let dir = pkg_dir_of(&child);
          candidates.extend(
            PackageBins::from_manifest(&manifest_at(&dir), &[]).at(&dir).into_iter().map(|c| (c, false)),
          );
        }
      }
    }
    written += link_bins_with(&slot_bin_dir(&pkg_dir_of(dep_path)), candidates, &options).unwrap().written;
  }
  let importer = &lockfile.importers["."];
  let mut direct = Vec::new();
  let mut peers = Vec::new();
  for (alias, dep) in
    importer.dev_dependencies.iter().chain(&importer.dependencies).chain(&importer.optional_dependencies)
  {
    let DependencyRef::Snapshot(dep_path) = ref_to_dep_path(&dep.version, alias) else { continue };
    let location = modules.join(alias);
    let manifest = manifest_at(&location);
    direct.extend(PackageBins::from_manifest(&manifest, &[]).at(&location).into_iter().map(|c| (c, true)));
    let snapshot = &lockfile.snapshots[&dep_path];
    for peer in auto_installed_peers(&manifest, |n| {
      snapshot.dependencies.contains_key(n) || snapshot.optional_dependencies.contains_key(n)
    }) {
      let location = peer_location(&pkg_dir_of(&dep_path), peer);
      peers.extend(PackageBins::from_manifest(&manifest_at(&location), &[]).at(&location));
    }
  }
  written += link_importer_bins(&modules, direct, peers, &options).unwrap().written;
  let candidates = hoisted_candidates(&vsd);
  written += link_bins_with(&hoisted_bin_dir(&vsd), candidates, &options).unwrap().written;
  eprintln!("{written} bins written");
}

/// The bins of every package hoisted into `<vsd>/node_modules`, in alias order, as pnpm
/// collects them for the hoisted `.bin`.
fn hoisted_candidates(vsd: &Path) -> Vec<(Command, bool)> {
  let hoisted = vsd.join("node_modules");
  let mut candidates = Vec::new();
  let mut aliases: Vec<String> = Vec::new();
  for e in std::fs::read_dir(&hoisted).unwrap() {
    let name = e.unwrap().file_name().into_string().unwrap();
    if name.starts_with('@') {
      for s in std::fs::read_dir(hoisted.join(&name)).unwrap() {
        aliases.push(format!("{name}/{}", s.unwrap().file_name().into_string().unwrap()));
      }
    } else if !name.starts_with('.') {
      aliases.push(name);
    }
  }
  aliases.sort();
  for alias in aliases {
    let location = hoisted.join(&alias);
    candidates.extend(
      PackageBins::from_manifest(&manifest_at(&location), &[]).at(&location).into_iter().map(|c| (c, false)),
    );
  }
  candidates
}

fn manifest_at(dir: &Path) -> Value {
  serde_json::from_slice(&std::fs::read(dir.join("package.json")).unwrap()).unwrap()
}
