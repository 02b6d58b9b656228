//! pnpm's bin linking: which commands a package provides, which package wins a command name,
//! where pnpm puts the shims, and the shim itself (the POSIX `sh` script pnpm 11 writes, byte
//! for byte). Facts taken from pnpm 11.28.11 and checked against trees it installed.
//!
//! # Commands of a package ([`PackageBins`])
//!
//! - `bin` (any value JS finds truthy) decides alone: a string is one command named after the
//!   package (`@scope/x` → `x`); an object (or array) gives one command per key. Keys
//!   `@scope/x` become `x`. A name must be URL-safe (`[A-Za-z0-9-_.!~*'()]+`, not `.`/`..`) or
//!   be `$`; others are dropped. Paths: `\` → `/`; a path with a root (`/x`, `C:x`) is dropped;
//!   `..` cannot climb above the package (`../../x` is `x`); a path naming the package itself
//!   is dropped. Non-string paths are dropped (pnpm would crash on them).
//! - Otherwise `directories.bin`: every file under that directory (not through dot-named
//!   entries), each a command named after the file's base name, no name check. A directory
//!   outside the package gives nothing.
//!
//! # Where pnpm puts shims, and what each one points at
//!
//! - A package's dependencies: `<slot>/node_modules/<pkg>/node_modules/.bin` ([`slot_bin_dir`])
//!   gets the commands of the package's children (its snapshot's `dependencies`, plus
//!   `optionalDependencies` when included; skipped ones are not children), in that order,
//!   those the lockfile marks `hasBin`. Targets are in each child's *own* slot
//!   (`.pnpm/<child slot>/node_modules/<child>/…`), not through the symlink. Never the
//!   package's own commands. (A slot with a child outside the virtual store, a `link:`
//!   one, gets [`modules_dir_commands`] instead.) Then, separately, the packages the tarball
//!   bundles ([`bundled_commands`], when [`has_bundled_dependencies`]) — a second pass, so
//!   they replace a child's command of the same name.
//! - An importer: `<modules dir>/.bin` ([`link_importer_bins`]) gets its direct dependencies'
//!   commands through `<modules dir>/<alias>/…` (that is pnpm's final word when it runs the
//!   project's lifecycle step, which it does on every install unless scripts are ignored;
//!   with `ignoreScripts` the direct ones point into the slots instead), and the commands of
//!   the direct dependencies' auto-installed peers ([`auto_installed_peers`]) through the
//!   direct dependency's slot (`.pnpm/<direct slot>/node_modules/<peer>/…`), unless a direct
//!   dependency has a command of that name. Stale pnpm shims in that directory are removed.
//! - Hoisting: `<virtual store>/node_modules/.bin` ([`hoisted_bin_dir`]) gets the commands
//!   of the privately hoisted packages that have `hasBin`, through
//!   `<virtual store>/node_modules/<alias>/…`, in the hoisting order. Errors there are
//!   ignored by pnpm.
//!
//! # Conflicts ([`resolve_conflicts`])
//!
//! In one directory, per command name: direct dependencies' commands hide the others'; then,
//! between two candidates, the package owning the name (its name equals the command, or `npx`
//! for `npm`, `pnpm`/`pnpx`/`pn`/`pnx` for `pnpm` and `@pnpm/exe`) wins; else the package
//! whose name sorts *last* in ICU collation (JS `localeCompare`) wins; same package: the
//! higher version (semver) wins; a tie keeps the earlier candidate.
//!
//! # The shim ([`sh_shim`])
//!
//! A `sh` script (mode 0755): a fixed prelude that finds its own directory, a `NODE_PATH`
//! block, and an `exec` of the runtime the target's shebang (or extension) names, with the
//! target relative to the bin directory; the last line names the target
//! (`# cmd-shim-target=<absolute path>`). `NODE_PATH` (only when `extraNodePaths` is not
//! empty, see [`extra_node_path`]): from the target's *real* directory, the closest
//! `node_modules` whose parent is not `node_modules` → `<that>/<pkg>/node_modules`, `<that>`;
//! then the extra entries (duplicates dropped). The command `node` is a symlink instead;
//! with `preferSymlinkedExecutables` every command is a (relative) symlink.
//! After linking, each target is made executable (`mode | 0o111`) and a CRLF shebang line is
//! rewritten to LF, when its real path is inside a `node_modules`.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::plan::normalize;

/// The commands a package declares, independent of where the package is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageBins {
  /// The manifest's `name` (trimmed), `""` without one.
  pub name: String,
  /// The manifest's `version`, `""` without one.
  pub version: String,
  /// `(command, in-package path)`, in the manifest's order.
  pub commands: Vec<(String, String)>,
}

/// One command a package provides, at one location of the package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
  pub name: String,
  /// The file, through the location the package was found at (not resolved).
  pub target: PathBuf,
  pub pkg_name: String,
  pub pkg_version: String,
  /// The location of the package (`target` is inside it).
  pub pkg_dir: PathBuf,
}

impl PackageBins {
  #[cfg(test)]
  /// The commands of a package, from its manifest (the store row's subset is enough) and its
  /// files (in-package paths, `/`-separated; used for `directories.bin`).
  pub fn from_manifest(manifest: &Value, files: &[(String, PathBuf, u32)]) -> Self {
    let mut bins = Self::head(manifest);
    match manifest.get("bin") {
      Some(bin) if js_truthy(bin) => bins.commands = commands_from_bin(bin, &bins.name),
      _ => {
        if let Some(dir) = bin_dir_of(manifest) {
          let mut found: Vec<(usize, &str, &str)> = Vec::new();
          for (path, _, _) in files {
            let rest = if dir.is_empty() {
              Some(path.as_str())
            } else {
              path.strip_prefix(dir.as_str()).and_then(|r| r.strip_prefix('/'))
            };
            let Some(rest) = rest else { continue };
            if rest.is_empty() || rest.split('/').any(|s| s.starts_with('.') || s.is_empty()) {
              continue;
            }
            found.push((rest.matches('/').count(), rest, path));
          }
          found.sort();
          bins.commands = found
            .into_iter()
            .map(|(_, rest, path)| (base_name(rest).to_string(), path.to_string()))
            .collect();
        }
      }
    }
    bins
  }

  /// Like [`PackageBins::from_manifest`], listing `directories.bin` from disk.
  pub fn from_manifest_on_disk(manifest: &Value, pkg_dir: &Path) -> Self {
    let mut bins = Self::head(manifest);
    match manifest.get("bin") {
      Some(bin) if js_truthy(bin) => bins.commands = commands_from_bin(bin, &bins.name),
      _ => {
        if let Some(dir) = bin_dir_of(manifest) {
          let mut found = Vec::new();
          walk_files(&pkg_dir.join(&dir), String::new(), &mut found);
          found.sort_by(|a, b| (a.matches('/').count(), a).cmp(&(b.matches('/').count(), b)));
          bins.commands = found
            .into_iter()
            .map(|rest| {
              let path = if dir.is_empty() { rest.clone() } else { format!("{dir}/{rest}") };
              (base_name(&rest).to_string(), path)
            })
            .collect();
        }
      }
    }
    bins
  }

  fn head(manifest: &Value) -> Self {
    let text = |key: &str| manifest.get(key).and_then(Value::as_str).unwrap_or("").to_string();
    PackageBins { name: text("name").trim().to_string(), version: text("version"), commands: Vec::new() }
  }

  pub fn is_empty(&self) -> bool {
    self.commands.is_empty()
  }

  /// The commands with the package at `location`.
  pub fn at(&self, location: &Path) -> Vec<Command> {
    self
      .commands
      .iter()
      .map(|(name, path)| Command {
        name: name.clone(),
        target: location.join(path),
        pkg_name: self.name.clone(),
        pkg_version: self.version.clone(),
        pkg_dir: location.to_path_buf(),
      })
      .collect()
  }
}

#[cfg(test)]
/// The commands of the package at `pkg_dir`.
pub fn commands(pkg_dir: &Path, manifest: &Value, files: &[(String, PathBuf, u32)]) -> Vec<Command> {
  PackageBins::from_manifest(manifest, files).at(pkg_dir)
}

#[cfg(test)]
/// In-package paths of the package's executables (what [`PackageBins`] finds), each once.
pub fn targets(manifest: &Value, files: &[(String, PathBuf, u32)]) -> Vec<String> {
  let mut seen = HashSet::new();
  PackageBins::from_manifest(manifest, files)
    .commands
    .into_iter()
    .map(|(_, path)| path)
    .filter(|path| seen.insert(path.clone()))
    .collect()
}

fn commands_from_bin(bin: &Value, pkg_name: &str) -> Vec<(String, String)> {
  let entries: Vec<(String, &Value)> = match bin {
    Value::String(_) => vec![(pkg_name.to_string(), bin)],
    Value::Object(map) => js_order(map.iter().map(|(k, v)| (k.clone(), v)).collect()),
    Value::Array(items) => items.iter().enumerate().map(|(i, v)| (i.to_string(), v)).collect(),
    _ => Vec::new(),
  };
  let mut out = Vec::new();
  for (key, value) in entries {
    let name = resolve_bin_name(&key);
    if !is_safe_bin_name(name) {
      continue;
    }
    let Some(path) = value.as_str().and_then(normalize_bin_path) else {
      continue;
    };
    out.push((name.to_string(), path));
  }
  out
}

/// `@scope/x` → `x`.
fn resolve_bin_name(name: &str) -> &str {
  match name.strip_prefix('@') {
    Some(_) => name.find('/').map_or(name, |i| &name[i + 1..]),
    None => name,
  }
}

fn is_safe_bin_name(name: &str) -> bool {
  if name.is_empty() || name == "." || name == ".." {
    return false;
  }
  name == "$" || name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.!~*'()".contains(c))
}

/// A `bin` path as pnpm reads it: in-package, `/`-separated; `None` when it has a root or
/// names the package itself.
fn normalize_bin_path(path: &str) -> Option<String> {
  let path = path.replace('\\', "/");
  if has_win32_root(&path) {
    return None;
  }
  let mut parts: Vec<&str> = Vec::new();
  for part in path.split('/') {
    match part {
      "" | "." => {}
      ".." => {
        parts.pop();
      }
      part => parts.push(part),
    }
  }
  let mut out = parts.join("/");
  if !out.is_empty() && path.ends_with('/') {
    out.push('/');
  }
  (!out.is_empty() && !has_win32_root(&out)).then_some(out)
}

fn has_win32_root(path: &str) -> bool {
  let b = path.as_bytes();
  matches!(b.first(), Some(b'/' | b'\\')) || (b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':')
}

/// `directories.bin`, in-package (`""` is the package itself); `None` when absent or outside.
fn bin_dir_of(manifest: &Value) -> Option<String> {
  let dir = manifest.pointer("/directories/bin")?.as_str()?;
  if dir.is_empty() {
    return None;
  }
  let mut parts: Vec<&str> = Vec::new();
  for part in dir.split('/') {
    match part {
      "" | "." => {}
      ".." => {
        parts.pop()?;
      }
      part => parts.push(part),
    }
  }
  Some(parts.join("/"))
}

fn base_name(path: &str) -> &str {
  path.rsplit('/').next().unwrap_or(path)
}

/// Files under `dir`, relative, skipping dot-named entries and not following symlinks.
fn walk_files(dir: &Path, prefix: String, out: &mut Vec<String>) {
  let Ok(entries) = std::fs::read_dir(dir) else { return };
  for entry in entries.flatten() {
    let name = entry.file_name().to_string_lossy().into_owned();
    if name.starts_with('.') {
      continue;
    }
    let rel = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
    match entry.file_type() {
      Ok(t) if t.is_dir() => walk_files(&entry.path(), rel, out),
      Ok(t) if t.is_file() => out.push(rel),
      _ => {}
    }
  }
}

fn js_truthy(value: &Value) -> bool {
  match value {
    Value::Null => false,
    Value::Bool(b) => *b,
    Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
    Value::String(s) => !s.is_empty(),
    _ => true,
  }
}

/// JS object key order: integer-like keys first, ascending; the others as written.
fn js_order<T>(entries: Vec<(String, T)>) -> Vec<(String, T)> {
  let index = |k: &str| -> Option<u32> {
    let n: u32 = k.parse().ok()?;
    (n != u32::MAX && n.to_string() == k).then_some(n)
  };
  let (mut ints, rest): (Vec<_>, Vec<_>) = entries.into_iter().partition(|(k, _)| index(k).is_some());
  ints.sort_by_key(|(k, _)| index(k));
  ints.extend(rest);
  ints
}

// ---------------------------------------------------------------------------------------
// Conflicts

/// Who may own a command besides the package of the same name.
const BIN_OWNERS: [(&str, &[&str]); 5] = [
  ("npx", &["npm"]),
  ("pn", &["pnpm", "@pnpm/exe"]),
  ("pnpm", &["@pnpm/exe"]),
  ("pnpx", &["pnpm", "@pnpm/exe"]),
  ("pnx", &["pnpm", "@pnpm/exe"]),
];

fn pkg_owns_bin(bin: &str, pkg: &str) -> bool {
  bin == pkg || BIN_OWNERS.iter().any(|(b, owners)| *b == bin && owners.contains(&pkg))
}

/// `> 0` when `left` beats `right` (and `0` on a tie, which keeps the earlier one).
pub fn compare_commands(left: &Command, right: &Command) -> Ordering {
  let left_owns = pkg_owns_bin(&left.name, &left.pkg_name);
  let right_owns = pkg_owns_bin(&right.name, &right.pkg_name);
  if left_owns != right_owns {
    return if left_owns { Ordering::Greater } else { Ordering::Less };
  }
  if left.pkg_name != right.pkg_name {
    return locale_compare(&left.pkg_name, &right.pkg_name);
  }
  semver_compare(&left.pkg_version, &right.pkg_version)
}

/// One command per name, as pnpm picks it. `true` marks a direct dependency's command: when
/// any candidate of a name is direct, only direct ones compete for it. The winners come in
/// the order of their names' first appearance (integer-like names first).
pub fn resolve_conflicts(candidates: Vec<(Command, bool)>) -> Vec<Command> {
  let direct_names: HashSet<String> =
    candidates.iter().filter(|(_, direct)| *direct).map(|(c, _)| c.name.clone()).collect();
  let (direct, others): (Vec<_>, Vec<_>) = candidates.into_iter().partition(|(_, direct)| *direct);
  let ordered = direct
    .into_iter()
    .chain(others.into_iter().filter(|(c, _)| !direct_names.contains(&c.name)))
    .map(|(c, _)| c);
  let mut groups: Vec<(String, Command)> = Vec::new();
  let mut index: HashMap<String, usize> = HashMap::new();
  for cmd in ordered {
    match index.get(&cmd.name) {
      Some(&i) => {
        if compare_commands(&groups[i].1, &cmd) == Ordering::Less {
          groups[i].1 = cmd;
        }
      }
      None => {
        index.insert(cmd.name.clone(), groups.len());
        groups.push((cmd.name.clone(), cmd));
      }
    }
  }
  js_order(groups).into_iter().map(|(_, c)| c).collect()
}

/// `a.localeCompare(b)` under ICU's root collation (what Node uses for `en-US`), for what
/// package names are made of: punctuation and symbols before digits before letters, letters
/// case-blind first, then lower before upper. Characters outside ASCII sort after all of
/// these by code point (an approximation: ICU knows them better).
pub fn locale_compare(a: &str, b: &str) -> Ordering {
  const ORDER: &str = " _-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$0123456789";
  fn primary(c: char) -> Option<u32> {
    if c.is_ascii_control() {
      return None;
    }
    if c.is_ascii_alphabetic() {
      return Some(100 + (c.to_ascii_lowercase() as u32 - 'a' as u32));
    }
    match ORDER.find(c) {
      Some(i) => Some(i as u32),
      None => Some(0x1000 + c as u32),
    }
  }
  let pa: Vec<u32> = a.chars().filter_map(primary).collect();
  let pb: Vec<u32> = b.chars().filter_map(primary).collect();
  pa.cmp(&pb).then_with(|| {
    let ta = a.chars().filter(|c| !c.is_ascii_control()).map(|c| c.is_ascii_uppercase());
    let tb = b.chars().filter(|c| !c.is_ascii_control()).map(|c| c.is_ascii_uppercase());
    ta.cmp(tb)
  })
}

/// `semver.compare` (versions that do not parse compare equal; pnpm would fail on them).
pub fn semver_compare(a: &str, b: &str) -> Ordering {
  match (SemVer::parse(a), SemVer::parse(b)) {
    (Some(a), Some(b)) => a.cmp(&b),
    _ => Ordering::Equal,
  }
}

#[derive(Debug, PartialEq, Eq)]
struct SemVer {
  core: [u64; 3],
  pre: Vec<PreId>,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum PreId {
  Num(u64),
  Text(String),
}

impl SemVer {
  fn parse(v: &str) -> Option<SemVer> {
    let v = v.trim().trim_start_matches(|c: char| c == '=' || c == 'v' || c.is_whitespace());
    let v = v.split_once('+').map_or(v, |(v, _)| v);
    let (core, pre) = match v.split_once('-') {
      Some((core, pre)) => (core, Some(pre)),
      None => (v, None),
    };
    let numeric = |s: &str| -> Option<u64> {
      if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0')) {
        return None;
      }
      s.parse().ok()
    };
    let mut parts = core.split('.');
    let core = [numeric(parts.next()?)?, numeric(parts.next()?)?, numeric(parts.next()?)?];
    if parts.next().is_some() {
      return None;
    }
    let pre = match pre {
      None => Vec::new(),
      Some(pre) => pre
        .split('.')
        .map(|id| {
          if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            None
          } else if id.bytes().all(|b| b.is_ascii_digit()) {
            numeric(id).map(PreId::Num)
          } else {
            Some(PreId::Text(id.to_string()))
          }
        })
        .collect::<Option<Vec<_>>>()?,
    };
    Some(SemVer { core, pre })
  }
}

impl PartialOrd for SemVer {
  fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
    Some(self.cmp(other))
  }
}

impl Ord for SemVer {
  fn cmp(&self, other: &Self) -> Ordering {
    self.core.cmp(&other.core).then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
      (true, true) => Ordering::Equal,
      (true, false) => Ordering::Greater,
      (false, true) => Ordering::Less,
      (false, false) => self.pre.cmp(&other.pre),
    })
  }
}

// ---------------------------------------------------------------------------------------
// The shim

const PRELUDE: &str = include_str!("bins/shim_prelude.sh");
const BASEDIR_ABS: &str =
  "basedir_abs=$(CDPATH= cd -P -- \"$basedir\" && pwd -P) || exit $?\nbasedir=\"$basedir_abs\"\n";

/// How a shim runs its target: what its shebang names, else what its extension implies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Runtime {
  /// `node`, `/bin/sh`, …; `None`: the target is executed itself.
  pub program: Option<String>,
  /// What follows the program on the shebang line (with its leading space), `/C` for `cmd`.
  pub args: String,
  /// The target does not exist (yet): the shim says so on a line of its own.
  pub target_missing: bool,
}

impl Runtime {
  /// The runtime of a file with `content` (its first line) at `target` (its extension).
  pub fn from_content(content: &str, target: &Path) -> Runtime {
    let first = content.trim_matches(is_js_space).split('\n').next().unwrap_or("");
    let first = first.trim_end_matches('\r');
    match parse_shebang(first) {
      Some((program, args)) => Runtime { program: Some(program), args, target_missing: false },
      None => Runtime::from_extension(target),
    }
  }

  fn from_extension(target: &Path) -> Runtime {
    let ext = extension(target).to_ascii_lowercase();
    let program = match ext.as_str() {
      ".js" | ".cjs" | ".mjs" => Some("node"),
      ".cmd" | ".bat" => Some("cmd"),
      ".ps1" => Some("pwsh"),
      ".sh" => Some("sh"),
      _ => None,
    };
    Runtime {
      args: if program == Some("cmd") { "/C".into() } else { String::new() },
      program: program.map(str::to_string),
      target_missing: false,
    }
  }

  /// Reads the target. `Err` for what pnpm gives up on (a directory, unreadable).
  pub fn of(target: &Path) -> io::Result<Runtime> {
    use std::io::Read;
    let mut file = match std::fs::File::open(target) {
      Ok(f) => f,
      Err(e) if is_missing(&e) => {
        return Ok(Runtime { target_missing: true, ..Runtime::from_extension(target) })
      }
      Err(e) => return Err(e),
    };
    let mut head = Vec::new();
    (&mut file).take(64 * 1024).read_to_end(&mut head)?;
    let text = String::from_utf8_lossy(&head);
    let has_line = text.trim_start_matches(is_js_space).contains('\n');
    if has_line {
      return Ok(Runtime::from_content(&text, target));
    }
    let mut all = head;
    file.read_to_end(&mut all)?;
    Ok(Runtime::from_content(&String::from_utf8_lossy(&all), target))
  }
}

fn is_missing(e: &io::Error) -> bool {
  e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(20 /* ENOTDIR */)
}

/// JS `\s` (and what `String.prototype.trim` removes).
fn is_js_space(c: char) -> bool {
  matches!(
    c,
    '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
      ..='\u{200a}' | '\u{2028}' | '\u{2029}' | '\u{202f}' | '\u{205f}' | '\u{3000}' | '\u{feff}'
  )
}

/// `#!\s*(?:/usr/bin/env(?:\s+-S)?\s*)?([^ \t]+)(.*)$` on the first line, with the same
/// backtracking: `(program, rest of the line)`.
fn parse_shebang(line: &str) -> Option<(String, String)> {
  let chars: Vec<char> = line.strip_prefix("#!")?.chars().collect();
  let spaces = |from: usize| chars[from..].iter().take_while(|c| is_js_space(**c)).count();
  let starts =
    |at: usize, s: &str| chars.len() >= at + s.len() && chars[at..at + s.len()].iter().copied().eq(s.chars());
  let tail = |start: usize| -> Option<(String, String)> {
    let end = start + chars[start..].iter().take_while(|c| **c != ' ' && **c != '\t').count();
    (start + 1..=end).rev().find_map(|cut| {
      let rest = &chars[cut..];
      (!rest.iter().any(|c| matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}')))
        .then(|| (chars[start..cut].iter().collect(), rest.iter().collect()))
    })
  };
  for a in (0..=spaces(0)).rev() {
    if starts(a, "/usr/bin/env") {
      let b = a + "/usr/bin/env".len();
      let mut after_group: Vec<usize> =
        (1..=spaces(b)).rev().filter(|k| starts(b + k, "-S")).map(|k| b + k + 2).collect();
      after_group.push(b);
      for c in after_group {
        for d in (c..=c + spaces(c)).rev() {
          if let Some(m) = tail(d) {
            return Some(m);
          }
        }
      }
    }
    if let Some(m) = tail(a) {
      return Some(m);
    }
  }
  None
}

/// Node's `path.extname`.
fn extension(path: &Path) -> String {
  let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
  let trimmed = name.trim_start_matches('.');
  match trimmed.rfind('.') {
    Some(i) => trimmed[i..].to_string(),
    None => String::new(),
  }
}

fn sh_quote(text: &str) -> String {
  format!("'{}'", text.replace('\'', "'\\''"))
}

/// The shim pnpm 11 writes on POSIX for `target` (absolute, as linked), `relative_target`
/// being the target relative to the shim's directory, with `node_path` in `NODE_PATH`.
pub fn sh_shim(relative_target: &str, target: &Path, runtime: &Runtime, node_path: &[PathBuf]) -> String {
  let absolute = relative_target.starts_with('/');
  let mut sh = String::with_capacity(4096);
  if absolute {
    sh.push_str(&PRELUDE.replacen(BASEDIR_ABS, "", 1));
  } else {
    sh.push_str(PRELUDE);
  }
  if !node_path.is_empty() {
    let joined: Vec<String> = node_path.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let quoted = sh_quote(&joined.join(":"));
    sh.push_str(&format!(
      "if [ -z \"$NODE_PATH\" ]; then\n  export NODE_PATH={quoted}\nelse\n  export NODE_PATH={quoted}:\"$NODE_PATH\"\nfi\n"
    ));
  }
  let (target_abs, target_win) = if absolute {
    (sh_quote(relative_target), sh_quote(relative_target))
  } else {
    (
      format!("\"$basedir_abs\"/{}", sh_quote(relative_target)),
      format!("\"$basedir_win\"/{}", sh_quote(relative_target)),
    )
  };
  match &runtime.program {
    None => sh.push_str(&format!("exec {target_abs}   \"$@\"\nexit $?\n")),
    Some(program) => {
      let prog = program.replace('\\', "/");
      let mut args = runtime.args.clone();
      if program == "cmd" || program == "cmd.exe" {
        if let Some((at, switch)) = cmd_switch(&args) {
          args.replace_range(at..at + 2, &switch);
          sh.push_str(&format!(
            "if [ -n \"$msys\" ]; then\n  export MSYS2_ARG_CONV_EXCL=\"{switch}${{MSYS2_ARG_CONV_EXCL:+;$MSYS2_ARG_CONV_EXCL}}\"\nfi\n"
          ));
        }
      }
      let has_exe = prog.to_ascii_lowercase().ends_with(".exe");
      let prog_exe = if has_exe { prog.clone() } else { format!("{prog}.exe") };
      let long = format!("\"$basedir/{prog}\"");
      let long_exe = format!("\"$basedir/{prog_exe}\"");
      if has_exe {
        sh.push_str(&format!(
          "if [ -x {long_exe} ]; then\n  exec {long_exe} {args} {target_win} \"$@\"\nelse\n  exec {prog_exe} {args} {target_win} \"$@\"\nfi\n"
        ));
      } else {
        sh.push_str(&format!(
          "if [ -n \"$exe\" ] && [ -x {long_exe} ]; then\n  exec {long_exe} {args} {target_win} \"$@\"\n\
           elif [ -x {long} ]; then\n  exec {long} {args} {target_abs} \"$@\"\n\
           elif [ -n \"$msys\" ] && command -v {prog} >/dev/null 2>&1; then\n  exec {prog} {args} {target_win} \"$@\"\n\
           elif command -v {prog} >/dev/null 2>&1; then\n  exec {prog} {args} {target_abs} \"$@\"\n\
           elif [ -n \"$exe\" ] && command -v {prog_exe} >/dev/null 2>&1; then\n  exec {prog_exe} {args} {target_win} \"$@\"\n\
           else\n  exec {prog} {args} {target_abs} \"$@\"\nfi\n"
        ));
      }
    }
  }
  if runtime.target_missing {
    sh.push_str("# cmd-shim-missing-target\n");
  }
  sh.push_str(&format!("# cmd-shim-target={}\n", target.to_string_lossy().replace('\\', "/")));
  sh
}

/// The first `/c` or `/k` (any case) standing as a word: its byte offset and upper-case form.
fn cmd_switch(args: &str) -> Option<(usize, String)> {
  let b = args.as_bytes();
  (0..b.len().saturating_sub(1)).find_map(|i| {
    let before_ok = i == 0 || (b[i - 1] as char).is_whitespace();
    let after_ok = i + 2 == b.len() || (b[i + 2] as char).is_whitespace();
    (before_ok && after_ok && b[i] == b'/' && matches!(b[i + 1], b'c' | b'C' | b'k' | b'K'))
      .then(|| (i, args[i..i + 2].to_ascii_uppercase()))
  })
}

// ---------------------------------------------------------------------------------------
// NODE_PATH

/// pnpm's `extraNodePaths`: `[<virtual store>/node_modules]` with the isolated linker when
/// `hoistPattern` is not empty and `extendNodePath` is on (the defaults), else nothing —
/// and then shims carry no `NODE_PATH` at all.
pub fn extra_node_path(
  virtual_store_dir: &Path,
  hoist_pattern_set: bool,
  extend_node_path: bool,
) -> Vec<PathBuf> {
  if extend_node_path && hoist_pattern_set {
    vec![virtual_store_dir.join("node_modules")]
  } else {
    Vec::new()
  }
}

/// The `NODE_PATH` entries a target brings, from its *real* directory: the closest
/// `node_modules` whose parent is not a `node_modules`, preceded by the `node_modules` of
/// the package there. Empty outside any `node_modules`.
pub fn bin_node_path(real_target_dir: &Path) -> Vec<PathBuf> {
  match outermost_modules_dir(real_target_dir, "node_modules", |_| true) {
    Some(modules) => node_path_for_modules_dir(&modules, real_target_dir),
    None => Vec::new(),
  }
}

fn outermost_modules_dir(dir: &Path, name: &str, accept: impl Fn(&Path) -> bool) -> Option<PathBuf> {
  dir
    .ancestors()
    .find(|d| {
      d.file_name().is_some_and(|n| n == name)
        && d.parent().and_then(Path::file_name).is_none_or(|n| n != name)
        && accept(d)
    })
    .map(Path::to_path_buf)
}

fn node_path_for_modules_dir(modules: &Path, dir: &Path) -> Vec<PathBuf> {
  let mut out = Vec::new();
  if let Ok(rel) = dir.strip_prefix(modules) {
    let segments: Vec<_> = rel.components().collect();
    if let Some(first) = segments.first() {
      let first = first.as_os_str();
      let pkg = if first.to_string_lossy().starts_with('@') {
        segments.get(1).map(|second| modules.join(first).join(second))
      } else {
        Some(modules.join(first))
      };
      if let Some(pkg) = pkg {
        out.push(pkg.join("node_modules"));
      }
    }
  }
  out.push(modules.to_path_buf());
  out
}

/// The `NODE_PATH` of a shim for `target`; `None` when pnpm writes none.
fn shim_node_path(target: &Path, options: &LinkOptions) -> io::Result<Option<Vec<PathBuf>>> {
  if options.extra_node_path.is_empty() && options.project_modules_dir.is_none() {
    return Ok(None);
  }
  let dir = target.parent().unwrap_or(target);
  let dir = match std::fs::canonicalize(dir) {
    Ok(real) => real,
    Err(e) if e.kind() == io::ErrorKind::NotFound => dir.to_path_buf(),
    Err(e) => return Err(e),
  };
  let mut entries: Vec<PathBuf> = options.project_modules_dir.iter().cloned().collect();
  let mut own = bin_node_path(&dir);
  if own.is_empty() {
    if let Some(modules) = &options.project_modules_dir {
      let real = std::fs::canonicalize(modules).unwrap_or_else(|_| modules.clone());
      if dir.starts_with(&real) {
        own = node_path_for_modules_dir(&real, &dir);
      } else if let Some(name) = modules.file_name().filter(|n| *n != "node_modules") {
        let name = name.to_string_lossy();
        let contains_package = |m: &Path| {
          dir.strip_prefix(m).is_ok_and(|rel| {
            let segments: Vec<_> = rel.components().collect();
            match segments.first() {
              None => false,
              Some(first) if first.as_os_str().to_string_lossy().starts_with('@') => segments.len() >= 2,
              Some(_) => true,
            }
          })
        };
        if let Some(m) = outermost_modules_dir(&dir, &name, contains_package) {
          own = node_path_for_modules_dir(&m, &dir);
        }
      }
    }
  }
  entries.extend(own);
  entries.extend(options.extra_node_path.iter().cloned());
  let mut seen = HashSet::new();
  entries.retain(|p| seen.insert(p.clone()));
  Ok(Some(entries))
}

// ---------------------------------------------------------------------------------------
// Paths

/// Node's `path.relative` for absolute paths: `/`-separated, `""` for the same path.
pub fn relative(from: &Path, to: &Path) -> String {
  let from = normalize(from);
  let to = normalize(to);
  let a: Vec<_> = from.components().collect();
  let b: Vec<_> = to.components().collect();
  let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
  let mut parts: Vec<String> = vec!["..".to_string(); a.len() - common];
  parts.extend(b[common..].iter().map(|c| c.as_os_str().to_string_lossy().into_owned()));
  parts.join("/")
}

fn is_subdir_or_equal(parent: &Path, child: &Path) -> bool {
  normalize(child).starts_with(normalize(parent))
}

/// The directory the shim's relative target starts from: the bin directory, or where it
/// really is when a symlink leads to it (keeping the part both paths share as written).
fn sh_shim_dir(bin_dir: &Path, physical: &Path, target: &Path) -> PathBuf {
  if physical == bin_dir {
    return bin_dir.to_path_buf();
  }
  let ancestor = bin_dir.ancestors().find(|a| is_subdir_or_equal(a, target)).unwrap_or(bin_dir);
  if ancestor == bin_dir && !is_subdir_or_equal(bin_dir, target) {
    return physical.to_path_buf();
  }
  let real_ancestor = std::fs::canonicalize(ancestor).unwrap_or_else(|_| ancestor.to_path_buf());
  match physical.strip_prefix(&real_ancestor) {
    Ok(rest) => ancestor.join(rest),
    Err(_) => physical.to_path_buf(),
  }
}

// ---------------------------------------------------------------------------------------
// Linking

/// Settings that change what a bin directory gets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkOptions {
  /// pnpm's `extraNodePaths` (see [`extra_node_path`]); empty: no `NODE_PATH` block.
  pub extra_node_path: Vec<PathBuf>,
  /// A project's `modulesDir` when it is not `<project>/node_modules` (and `extendNodePath`).
  pub project_modules_dir: Option<PathBuf>,
  /// `preferSymlinkedExecutables`: symlinks instead of shims (POSIX).
  pub prefer_symlinked_executables: bool,
}

/// What linking one directory did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Linked {
  /// The names the directory was given (the conflict winners), also those that failed.
  pub names: Vec<String>,
  /// Shims or symlinks written (those already in place count too).
  pub written: usize,
  /// pnpm's warnings for commands it skipped (`Failed to create bin at …`).
  pub warnings: Vec<String>,
}

#[cfg(test)]
/// Writes shims for `candidates` into `bin_dir` (`true`: a direct dependency's command),
/// resolving name conflicts as pnpm does. `node_path`: pnpm's `extraNodePaths` for the
/// install ([`extra_node_path`]); each shim's `NODE_PATH` adds its target's own entries
/// ([`bin_node_path`]) in front. Targets must be in place: the shim depends on their
/// shebang. Returns the number of commands linked.
pub fn link_bins(
  bin_dir: &Path,
  candidates: Vec<(Command, bool)>,
  node_path: &[PathBuf],
) -> io::Result<usize> {
  let options = LinkOptions { extra_node_path: node_path.to_vec(), ..LinkOptions::default() };
  link_bins_with(bin_dir, candidates, &options).map(|l| l.written)
}

/// [`link_bins`] with all of pnpm's settings, reporting names and warnings.
pub fn link_bins_with(
  bin_dir: &Path,
  candidates: Vec<(Command, bool)>,
  options: &LinkOptions,
) -> io::Result<Linked> {
  let winners = resolve_conflicts(candidates);
  let mut linked = Linked::default();
  if winners.is_empty() {
    return Ok(linked);
  }
  std::fs::create_dir_all(bin_dir)?;
  let physical = std::fs::canonicalize(bin_dir)?;
  let mut first_error = None;
  for cmd in &winners {
    linked.names.push(cmd.name.clone());
    match link_one(cmd, bin_dir, &physical, options) {
      Ok(Some(warning)) => linked.warnings.push(warning),
      Ok(None) => linked.written += 1,
      Err(e) => {
        first_error.get_or_insert(e);
      }
    }
  }
  match first_error {
    Some(e) => Err(e),
    None => Ok(linked),
  }
}

/// Links one command; `Some(warning)` when pnpm would skip it.
fn link_one(
  cmd: &Command,
  bin_dir: &Path,
  physical: &Path,
  options: &LinkOptions,
) -> io::Result<Option<String>> {
  let external = bin_dir.join(&cmd.name);
  let skipped = |e: &io::Error| Some(format!("Failed to create bin at {}. {e}", external.display()));
  if cmd.pkg_name == "pnpm" {
    // No PowerShell shim for pnpm itself; one left from before would shadow the others.
    let _ = std::fs::remove_file(bin_dir.join(format!("{}.ps1", cmd.name)));
  }
  #[cfg(unix)]
  {
    if cmd.name == "node" {
      remove_any(&external)?;
      std::os::unix::fs::symlink(&cmd.target, &external)?;
      return Ok(None);
    }
    if options.prefer_symlinked_executables && can_symlink_executable(&cmd.target)? {
      let link = relative(bin_dir, &cmd.target);
      if std::fs::read_link(&external).ok().as_deref() != Some(Path::new(&link)) {
        remove_any(&external)?;
        std::os::unix::fs::symlink(&link, &external)?;
      }
      ensure_executable_if_needed(&cmd.target)?;
      return Ok(None);
    }
  }
  let runtime = match Runtime::of(&cmd.target) {
    Ok(r) => r,
    Err(e) if is_dir_error(&e) => return Ok(skipped(&e)),
    Err(e) => return Err(e),
  };
  let shim_dir = sh_shim_dir(bin_dir, physical, &cmd.target);
  let node_path = shim_node_path(&cmd.target, options)?;
  let content =
    sh_shim(&relative(&shim_dir, &cmd.target), &cmd.target, &runtime, node_path.as_deref().unwrap_or(&[]));
  write_shim(&external, &content)?;
  ensure_executable_if_needed(&cmd.target)?;
  Ok(None)
}

fn is_dir_error(e: &io::Error) -> bool {
  e.kind() == io::ErrorKind::IsADirectory || e.raw_os_error() == Some(21 /* EISDIR */)
}

fn remove_any(path: &Path) -> io::Result<()> {
  match std::fs::symlink_metadata(path) {
    Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
    Ok(_) => std::fs::remove_file(path),
    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
    Err(e) => Err(e),
  }
}

fn write_shim(path: &Path, content: &str) -> io::Result<()> {
  if let Ok(meta) = std::fs::symlink_metadata(path) {
    if meta.is_file()
      && mode_of(&meta) & 0o7777 == 0o755
      && std::fs::read(path).is_ok_and(|b| b == content.as_bytes())
    {
      return Ok(());
    }
    let _ = std::fs::remove_file(path);
  }
  std::fs::write(path, content)?;
  set_mode(path, 0o755)
}

#[cfg(unix)]
fn mode_of(meta: &std::fs::Metadata) -> u32 {
  std::os::unix::fs::PermissionsExt::mode(&meta.permissions())
}

#[cfg(not(unix))]
fn mode_of(_: &std::fs::Metadata) -> u32 {
  0o755
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
  use std::os::unix::fs::PermissionsExt;
  std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_: &Path, _: u32) -> io::Result<()> {
  Ok(())
}

fn in_node_modules(real: &Path) -> bool {
  real.parent().is_some_and(|d| d.components().any(|c| c.as_os_str() == "node_modules"))
}

/// A first line `#!…\r\n` within the first 2 KiB.
fn has_windows_shebang(path: &Path) -> bool {
  use std::io::Read;
  let mut buf = Vec::with_capacity(2048);
  let Ok(file) = std::fs::File::open(path) else { return false };
  if file.take(2048).read_to_end(&mut buf).is_err() {
    return false;
  }
  buf.starts_with(b"#!")
    && buf.iter().position(|b| *b == b'\n').is_some_and(|p| p >= 4 && buf[p - 1] == b'\r')
}

fn is_runnable(path: &Path, meta: &std::fs::Metadata) -> bool {
  mode_of(meta) & 0o111 == 0o111 && !has_windows_shebang(path)
}

#[cfg(unix)]
fn can_symlink_executable(target: &Path) -> io::Result<bool> {
  match std::fs::canonicalize(target) {
    Ok(real) => Ok(in_node_modules(&real) || is_runnable(&real, &std::fs::metadata(&real)?)),
    Err(e) if is_missing(&e) => Ok(true),
    Err(e) => Err(e),
  }
}

/// Makes a linked target runnable as pnpm does: `mode | 0o111`, and a CRLF shebang line
/// rewritten to LF (a new file, so a store hard link is not touched by that part); only for
/// a target whose real path is inside a `node_modules`. A missing target is left alone.
fn ensure_executable_if_needed(target: &Path) -> io::Result<()> {
  let meta = match std::fs::metadata(target) {
    Ok(m) => m,
    Err(e) if is_missing(&e) => return Ok(()),
    Err(e) => return Err(e),
  };
  if mode_of(&meta) & 0o111 == 0o111 && !has_windows_shebang(target) {
    return Ok(());
  }
  let real = std::fs::canonicalize(target)?;
  if !in_node_modules(&real) {
    return Ok(());
  }
  let meta = std::fs::metadata(&real)?;
  if is_runnable(&real, &meta) {
    return Ok(());
  }
  let result = set_mode(&real, (mode_of(&meta) & 0o777) | 0o111).and_then(|()| {
    if has_windows_shebang(&real) {
      dos_to_unix(&real, mode_of(&meta) & 0o777 | 0o111)
    } else {
      Ok(())
    }
  });
  match result {
    Err(e)
      if matches!(e.kind(), io::ErrorKind::PermissionDenied)
        || e.raw_os_error() == Some(30 /* EROFS */) =>
    {
      match std::fs::metadata(&real) {
        Ok(m) if is_runnable(&real, &m) => Ok(()),
        _ => Err(e),
      }
    }
    other => other,
  }
}

fn dos_to_unix(path: &Path, mode: u32) -> io::Result<()> {
  let text = String::from_utf8_lossy(&std::fs::read(path)?).into_owned();
  let Some(end) = text.find('\n') else { return Ok(()) };
  if !(text.starts_with("#!") && end >= 4 && text.as_bytes()[end - 1] == b'\r') {
    return Ok(());
  }
  let fixed = format!("{}\n{}", &text[..end - 1], &text[end + 1..]);
  static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
  let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
  let tmp = path.with_file_name(format!(
    ".{}.{}-{n}.tmp",
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
    std::process::id()
  ));
  std::fs::write(&tmp, fixed)?;
  set_mode(&tmp, mode)?;
  std::fs::rename(&tmp, path).inspect_err(|_| {
    let _ = std::fs::remove_file(&tmp);
  })
}

// ---------------------------------------------------------------------------------------
// Locations

/// `<pkg_dir>/node_modules/.bin`: where the commands of a package's dependencies go.
pub fn slot_bin_dir(pkg_dir: &Path) -> PathBuf {
  pkg_dir.join("node_modules").join(".bin")
}

/// `<virtual store>/node_modules/.bin`: where the privately hoisted packages' commands go.
pub fn hoisted_bin_dir(virtual_store_dir: &Path) -> PathBuf {
  virtual_store_dir.join("node_modules").join(".bin")
}

/// The commands of the packages a tarball bundles in `<pkg_dir>/node_modules` (read from
/// disk: they are not in the lockfile), each at `<pkg_dir>/node_modules/<name>`.
pub fn bundled_commands(pkg_dir: &Path) -> io::Result<Vec<Command>> {
  modules_dir_commands(&pkg_dir.join("node_modules"), None)
}

/// The commands of every package in a `node_modules` directory, read from disk, each at
/// `<modules>/<name>` (through the symlink if it is one); `exclude` leaves a package out.
/// pnpm does this for a slot that has a child outside the virtual store (a `link:`
/// dependency): then the slot's `.bin` gets the commands of everything in
/// `<slot>/node_modules` but the package itself (`exclude`), `hasBin` or not.
pub fn modules_dir_commands(modules: &Path, exclude: Option<&Path>) -> io::Result<Vec<Command>> {
  let mut names = Vec::new();
  let entries = match std::fs::read_dir(modules) {
    Ok(e) => e,
    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
    Err(e) => return Err(e),
  };
  for entry in entries {
    let entry = entry?;
    let name = entry.file_name().to_string_lossy().into_owned();
    let kind = entry.file_type()?;
    if kind.is_file() || name.starts_with('.') {
      continue;
    }
    if name.starts_with('@') {
      if kind.is_symlink() {
        continue;
      }
      for sub in std::fs::read_dir(entry.path())? {
        let sub = sub?;
        let sub_name = sub.file_name().to_string_lossy().into_owned();
        if !sub.file_type()?.is_file() && !sub_name.starts_with('.') {
          names.push(format!("{name}/{sub_name}"));
        }
      }
    } else {
      names.push(name);
    }
  }
  names.sort();
  let mut out = Vec::new();
  for name in names {
    let location = modules.join(&name);
    if exclude.is_some_and(|e| e == location) {
      continue;
    }
    let manifest: Value = match std::fs::read(location.join("package.json")) {
      Ok(bytes) => {
        serde_json::from_slice(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
      }
      Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
      Err(e) => return Err(e),
    };
    out.extend(PackageBins::from_manifest_on_disk(&manifest, &location).at(&location));
  }
  Ok(out)
}

#[cfg(test)]
/// Whether pnpm looks for bundled packages' commands (the lockfile's `bundledDependencies`,
/// which comes from the manifest).
pub fn has_bundled_dependencies(manifest: &Value) -> bool {
  ["bundledDependencies", "bundleDependencies"]
    .iter()
    .any(|k| manifest.get(*k).is_some_and(|v| !v.is_null() && v != &Value::Bool(false)))
}

/// The peers of a direct dependency whose commands pnpm links into the importer's `.bin`
/// (with `autoInstallPeers`, the default, and the isolated linker): its required (not
/// `peerDependenciesMeta.<name>.optional`) `peerDependencies` that its snapshot resolves
/// (`resolved(name)`: the name is in the snapshot's `dependencies` or
/// `optionalDependencies`). Each is linked from [`peer_location`].
pub fn auto_installed_peers(manifest: &Value, resolved: impl Fn(&str) -> bool) -> Vec<&str> {
  let Some(peers) = manifest.get("peerDependencies").and_then(Value::as_object) else {
    return Vec::new();
  };
  peers
    .keys()
    .map(String::as_str)
    .filter(|name| {
      let optional = manifest
        .get("peerDependenciesMeta")
        .and_then(|m| m.get(*name))
        .and_then(|m| m.get("optional"))
        .is_some_and(js_truthy);
      !optional && resolved(name)
    })
    .collect()
}

/// Where a direct dependency's slot links its peer `name`: next to the dependency
/// (`<slot>/node_modules/<name>`).
pub fn peer_location(direct_pkg_dir: &Path, name: &str) -> PathBuf {
  let parent = direct_pkg_dir.parent().unwrap_or(direct_pkg_dir);
  let modules = match parent.file_name() {
    Some(n) if n.to_string_lossy().starts_with('@') => parent.parent().unwrap_or(parent),
    _ => parent,
  };
  modules.join(name)
}

/// An importer's `.bin` (`<modules_dir>/.bin`): `direct` are the commands of the packages in
/// `modules_dir`, each at `<modules_dir>/<alias>` (`true`: a direct dependency; `false`: a
/// publicly hoisted one, which only gets names no direct one has); `peers` the commands of
/// the direct dependencies' auto-installed peers (see [`auto_installed_peers`]), each at its
/// [`peer_location`]. Peers go in the order of their locations and never take a direct
/// dependency's name. Shims pnpm wrote earlier that no longer have a command are removed.
pub fn link_importer_bins(
  modules_dir: &Path,
  direct: Vec<(Command, bool)>,
  peers: Vec<Command>,
  options: &LinkOptions,
) -> io::Result<Linked> {
  let bin_dir = modules_dir.join(".bin");
  let direct_names: HashSet<String> =
    direct.iter().filter(|(_, d)| *d).map(|(c, _)| c.name.clone()).collect();
  let mut peers = peers;
  peers.sort_by(|a, b| a.pkg_dir.as_os_str().cmp(b.pkg_dir.as_os_str()));
  let mut seen = HashSet::new();
  peers.retain(|c| {
    !direct_names.contains(&c.name) && seen.insert((c.pkg_dir.clone(), c.name.clone(), c.target.clone()))
  });
  let from_peers = link_bins_with(&bin_dir, peers.into_iter().map(|c| (c, false)).collect(), options)?;
  let from_direct = link_bins_with(&bin_dir, direct, options)?;
  let mut linked = from_direct;
  linked.written += from_peers.written;
  linked.warnings.extend(from_peers.warnings);
  linked.names.extend(from_peers.names);
  prune_stale_bins(&bin_dir, &linked.names.iter().cloned().collect())?;
  Ok(linked)
}

/// Removes what pnpm recognises as its own shims (symlinks, and files that start like one of
/// its shims) whose names are not `claimed`.
pub fn prune_stale_bins(bin_dir: &Path, claimed: &HashSet<String>) -> io::Result<()> {
  let entries = match std::fs::read_dir(bin_dir) {
    Ok(e) => e,
    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
    Err(e) => return Err(e),
  };
  for entry in entries {
    let entry = entry?;
    let name = entry.file_name().to_string_lossy().into_owned();
    if claimed.contains(&name) {
      continue;
    }
    let kind = entry.file_type()?;
    let ours = kind.is_symlink() || (kind.is_file() && is_pnpm_shim(&entry.path()));
    if ours {
      match std::fs::remove_file(entry.path()) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
      }
    }
  }
  Ok(())
}

fn is_pnpm_shim(path: &Path) -> bool {
  use std::io::Read;
  let mut buf = Vec::with_capacity(128);
  let Ok(file) = std::fs::File::open(path) else { return false };
  if file.take(128).read_to_end(&mut buf).is_err() {
    return false;
  }
  let text = String::from_utf8_lossy(&buf);
  let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
  [
    "#!/bin/sh\n# Resolve $0 through symlinks",
    "#!/bin/sh\nbasedir=",
    "@SETLOCAL\r\n",
    "@IF EXIST",
    "#!/usr/bin/env pwsh\n$basedir=",
  ]
  .iter()
  .any(|p| text.starts_with(p))
}

#[cfg(test)]
mod tests;
