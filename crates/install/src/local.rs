//! Local packages: directories named by the lockfile (`resolution: {directory: ...}`), which
//! is how pnpm records injected workspace projects (`file:packages/x`) and `file:../dir`
//! dependencies.
//!
//! pnpm imports only the files the package would publish (its directory fetcher runs
//! npm-packlist, as `npm pack` does): `files`, `.npmignore` or else `.gitignore`, the files
//! that are always in (`package.json`, readme, license, `main`, `bin`) and those that never
//! are (`node_modules`, `.git`, lockfiles, ...). The files are hardlinked from the project,
//! not stored. `.modules.yaml` lists every such slot under `injectedDeps`.
//!
//! The rules are globs with npm-packlist's options (minimatch with `matchBase`, `dot`,
//! `nocase`): `*`, `?`, `[...]` classes, `**`, `{a,b}` and `{1..3}` braces, `!` negation.
//! Extglobs (`@(a|b)` and friends) are matched as literal text.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::InstallError;
use crate::plan::{Plan, SlotPlan, Source};

/// A local package's files, ready to import: in-package path, source file, mode.
pub struct LocalPackage {
  pub files: Vec<(String, PathBuf, u32)>,
  /// Install scripts, `binding.gyp` or `.hooks/`: imported by copy and reported for a build.
  pub requires_build: bool,
}

/// The files of a directory package that pnpm imports (what `npm pack` would publish).
///
/// pnpm imports a directory package afresh on every install (the project may have changed):
/// whatever an earlier import left in the slot's package directory is removed here, except
/// its `node_modules` (pnpm keeps it), so the import that follows places the files anew.
pub fn list_directory(slot: &SlotPlan, dir: &Path) -> Result<LocalPackage, InstallError> {
  let err =
    |source| InstallError::LocalPackage { package: slot.dep_path.clone(), path: dir.to_path_buf(), source };
  clear_previous_import(&slot.pkg_dir)
    .map_err(|source| InstallError::Fs { path: slot.pkg_dir.clone(), source })?;
  let manifest = read_manifest(dir).map_err(err)?;
  let paths = packlist_with(dir, &manifest).map_err(err)?;
  let requires_build =
    pacquet_store::manifest::requires_build(Some(&manifest), paths.iter().map(String::as_str));
  let mut files = Vec::with_capacity(paths.len());
  for rel in paths {
    let path = dir.join(&rel);
    // Symlinks are hardlinked as they are (pnpm does the same); the mode only matters for a copy.
    let mode = match std::fs::metadata(&path).or_else(|_| std::fs::symlink_metadata(&path)) {
      #[cfg(unix)]
      Ok(meta) => std::os::unix::fs::PermissionsExt::mode(&meta.permissions()),
      #[cfg(not(unix))]
      Ok(_) => 0o644,
      Err(e) => return Err(err(e)),
    };
    files.push((rel, path, mode));
  }
  Ok(LocalPackage { files, requires_build })
}

/// `.modules.yaml`'s `injectedDeps`: for every directory package installed, its directory
/// (as the lockfile names it, relative to the lockfile's directory) → the slot directories
/// it was copied to, relative to the lockfile's directory. In install order, as pnpm does.
pub fn injected_deps(plan: &Plan, lockfile_dir: &Path) -> Value {
  let mut out: indexmap::IndexMap<String, Vec<String>> = indexmap::IndexMap::new();
  for slot in &plan.slots {
    if !matches!(slot.source, Source::Directory { .. }) || slot.name.is_empty() {
      continue;
    }
    let Some(source_id) = slot.version.strip_prefix("file:") else { continue };
    let target = pacquet_link::relative_path(lockfile_dir, &slot.pkg_dir).to_string_lossy().into_owned();
    let targets = out.entry(source_id.to_string()).or_default();
    if !targets.contains(&target) {
      targets.push(target);
    }
  }
  serde_json::to_value(out).unwrap_or_else(|_| Value::Object(Default::default()))
}

/// Empties a slot's package directory but for its `node_modules`.
fn clear_previous_import(pkg_dir: &Path) -> io::Result<()> {
  let entries = match std::fs::read_dir(pkg_dir) {
    Ok(entries) => entries,
    Err(e) if e.kind() == io::ErrorKind::NotFound || e.kind() == io::ErrorKind::NotADirectory => {
      return Ok(())
    }
    Err(e) => return Err(e),
  };
  for entry in entries {
    let entry = entry?;
    if entry.file_name() == "node_modules" {
      continue;
    }
    let path = entry.path();
    if entry.file_type()?.is_dir() {
      std::fs::remove_dir_all(&path)?;
    } else {
      std::fs::remove_file(&path)?;
    }
  }
  Ok(())
}

fn read_manifest(dir: &Path) -> io::Result<Value> {
  match std::fs::read(dir.join("package.json")) {
    Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Value::Object(Default::default())),
    Err(e) => Err(e),
  }
}

/// The package's files as npm-packlist lists them (paths relative to `dir`, `/`-separated).
#[cfg(test)]
pub fn packlist(dir: &Path) -> io::Result<Vec<String>> {
  packlist_with(dir, &read_manifest(dir)?)
}

fn packlist_with(dir: &Path, manifest: &Value) -> io::Result<Vec<String>> {
  let ctx =
    PackCtx { manifest: normalize_manifest(manifest), defaults: compile(&DEFAULT_RULES.map(String::from)) };
  let mut root = Walker {
    dir: dir.to_path_buf(),
    basename: String::new(),
    parent: None,
    is_package: true,
    sources: &ROOT_SOURCES,
    rules: HashMap::new(),
    exact: false,
    required: Vec::new(),
  };
  root.rules.insert(RuleSource::Defaults, ctx.defaults.clone());
  let mut out = Vec::new();
  root.walk(&ctx, "", &mut out)?;
  out.retain(|rel| is_internal(dir, rel));
  out.sort();
  Ok(out)
}

// ---------------------------------------------------------------------------------------
// The walk (npm-packlist over ignore-walk)

/// Excluded everywhere, at every directory level (npm-packlist's defaults).
const DEFAULT_RULES: [&str; 22] = [
  ".npmignore",
  ".gitignore",
  "**/.git",
  "**/.svn",
  "**/.hg",
  "**/CVS",
  "**/.git/**",
  "**/.svn/**",
  "**/.hg/**",
  "**/CVS/**",
  "/.lock-wscript",
  "/.wafpickle-*",
  "/build/config.gypi",
  "npm-debug.log",
  "**/.npmrc",
  ".*.swp",
  ".DS_Store",
  "**/.DS_Store/**",
  "._*",
  "**/._*/**",
  "*.orig",
  "/archived-packages/**",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum RuleSource {
  Defaults,
  PackageJson,
  NpmIgnore,
  GitIgnore,
  Strict,
}

/// The rule sets a directory consults, in the order they apply (later ones win).
const ROOT_SOURCES: [RuleSource; 5] = [
  RuleSource::Defaults,
  RuleSource::PackageJson,
  RuleSource::NpmIgnore,
  RuleSource::GitIgnore,
  RuleSource::Strict,
];
const CHILD_SOURCES: [RuleSource; 4] =
  [RuleSource::Defaults, RuleSource::NpmIgnore, RuleSource::GitIgnore, RuleSource::Strict];

struct PackCtx {
  manifest: Value,
  defaults: Vec<Rule>,
}

struct Walker<'p> {
  dir: PathBuf,
  basename: String,
  parent: Option<&'p Walker<'p>>,
  is_package: bool,
  sources: &'static [RuleSource],
  rules: HashMap<RuleSource, Vec<Rule>>,
  /// The parent excluded this directory but a rule names it: its own rules may re-include.
  exact: bool,
  /// Files `files` names one level below (or at) this directory: always included.
  required: Vec<String>,
}

impl Walker<'_> {
  fn walk(&mut self, ctx: &PackCtx, rel: &str, out: &mut Vec<String>) -> io::Result<()> {
    let mut entries: Vec<String> = Vec::new();
    for entry in std::fs::read_dir(&self.dir)? {
      entries.push(entry?.file_name().to_string_lossy().into_owned());
    }
    if self.is_package {
      entries.retain(|e| !is_lockfile_staging_file(e));
    }
    if entries.is_empty() {
      return Ok(());
    }
    let has = |name: &str| entries.iter().any(|e| e == name);
    if self.is_package && self.sources.contains(&RuleSource::PackageJson) && has("package.json") {
      self.process_package(ctx);
    }
    for (source, name) in [(RuleSource::NpmIgnore, ".npmignore"), (RuleSource::GitIgnore, ".gitignore")] {
      if has(name) {
        let text = std::fs::read_to_string(self.dir.join(name))?;
        self.rules.insert(source, compile_text(&text));
      }
    }
    // Precedence: `files` beats `.npmignore`, which beats `.gitignore`.
    if self.rules.contains_key(&RuleSource::PackageJson) {
      self.rules.remove(&RuleSource::NpmIgnore);
      self.rules.remove(&RuleSource::GitIgnore);
    } else if self.rules.contains_key(&RuleSource::NpmIgnore) {
      self.rules.remove(&RuleSource::GitIgnore);
    }

    for entry in &entries {
      let pass_file = self.filter_entry(entry, false, None);
      let pass_dir = self.filter_entry(entry, true, None);
      if !(pass_file || pass_dir) || entry.contains('*') {
        continue;
      }
      let path = self.dir.join(entry);
      let meta = std::fs::symlink_metadata(&path)?;
      let rel_path = if rel.is_empty() { entry.clone() } else { format!("{rel}/{entry}") };
      let kind = meta.file_type();
      if kind.is_symlink() || kind.is_file() {
        if pass_file {
          out.push(rel_path);
        }
      } else if kind.is_dir() && pass_dir {
        let exact = pass_file || self.filter_entry(&format!("{entry}/"), false, None);
        let required: Vec<String> = self
          .required
          .iter()
          .filter_map(|f| f.strip_prefix(entry.as_str())?.strip_prefix('/'))
          .filter(|rest| !rest.is_empty() && !rest.contains('/'))
          .map(str::to_string)
          .collect();
        let mut strict = vec!["/.git".to_string()];
        strict.extend(required.iter().map(|f| format!("!{f}")));
        let mut rules = HashMap::new();
        rules.insert(RuleSource::Defaults, ctx.defaults.clone());
        rules.insert(RuleSource::Strict, compile(&strict));
        let mut child = Walker {
          dir: path,
          basename: entry.clone(),
          parent: Some(self),
          is_package: false,
          sources: &CHILD_SOURCES,
          rules,
          exact,
          required,
        };
        child.walk(ctx, &rel_path, out)?;
      }
    }
    Ok(())
  }

  /// The rules `package.json` brings: `files` (as its own rule set) and the strict rules
  /// (always in: manifest, readme, license, main, bin; always out: node_modules, lockfiles).
  fn process_package(&mut self, ctx: &PackCtx) {
    let pkg = &ctx.manifest;
    let dir = self.dir.to_string_lossy().into_owned();
    let mut strict: Vec<String> = [
      "/.git",
      "!/package.json",
      "!/readme{,.*[^~$]}",
      "!/copying{,.*[^~$]}",
      "!/license{,.*[^~$]}",
      "!/licence{,.*[^~$]}",
      "/.git",
      "/node_modules",
      ".npmrc",
      "/package-lock.json",
      "/yarn.lock",
      "/pnpm-lock.yaml",
      "/bun.lockb",
    ]
    .map(String::from)
    .to_vec();
    let files: Option<Vec<String>> = match pkg.get("files") {
      Some(Value::Array(list)) => Some(list.iter().filter_map(|v| v.as_str().map(str::to_string)).collect()),
      // A string is iterated character by character, as JavaScript's `for...of` does.
      Some(Value::String(s)) if !s.is_empty() => Some(s.chars().map(String::from).collect()),
      Some(v) if truthy(v) => Some(vec![]),
      _ => None,
    };
    let mut symlinked = Vec::new();
    if let Some(files) = &files {
      let mut ignores = Vec::new();
      for entry in files {
        let mut file = entry.strip_prefix("./").map(|f| format!("/{f}")).unwrap_or_else(|| entry.clone());
        if file.ends_with("/*") {
          file.push('*');
        }
        let inverse = format!("!{file}");
        match std::fs::symlink_metadata(format!("{dir}/{}", file.trim_start_matches('!'))) {
          Ok(m) if m.is_file() => {
            strict.insert(0, inverse);
            self.required.push(file.strip_prefix('/').unwrap_or(&file).to_string());
          }
          Ok(m) if m.is_dir() => {
            let all = format!("{inverse}/**");
            ignores.push(inverse);
            ignores.push(all);
          }
          Ok(_) => {}
          Err(_) => ignores.push(inverse),
        }
      }
      let mut rules = vec!["*".to_string()];
      rules.extend(ignores);
      self.rules.insert(RuleSource::PackageJson, compile(&rules));
      // pnpm: a symlink that `files` names is included too (npm-packlist requires regular files).
      for entry in files.iter().filter(|e| !e.starts_with('!')) {
        let file = entry.strip_prefix("./").map(|f| format!("/{f}")).unwrap_or_else(|| entry.clone());
        let is_link = std::fs::symlink_metadata(format!("{dir}/{}", file.trim_start_matches('/')))
          .is_ok_and(|m| m.file_type().is_symlink());
        if is_link {
          symlinked.push(format!("!{file}"));
          self.required.push(file.strip_prefix('/').unwrap_or(&file).to_string());
        }
      }
    }
    if let Some(browser) = pkg.get("browser").and_then(Value::as_str).filter(|s| !s.is_empty()) {
      strict.push(format!("!/{browser}"));
    }
    if let Some(main) = pkg.get("main").and_then(Value::as_str).filter(|s| !s.is_empty()) {
      strict.push(format!("!/{main}"));
    }
    if let Some(Value::Object(bin)) = pkg.get("bin") {
      for target in bin.values().filter_map(Value::as_str) {
        strict.push(format!("!/{target}"));
      }
    }
    let mut all = symlinked;
    all.extend(strict);
    all.push("!/package.yaml".into());
    all.push("!/package.json5".into());
    self.rules.insert(RuleSource::Strict, compile(&all));
  }

  /// ignore-walk's verdict on `entry` (a path relative to this directory): the parent's
  /// verdict on `<basename>/<entry>`, then this directory's rules in order, the last
  /// matching rule deciding. `partial` asks whether a directory could hold included files.
  fn filter_entry(&self, entry: &str, partial: bool, entry_basename: Option<&str>) -> bool {
    let mut included = true;
    if let Some(parent) = self.parent {
      let parent_entry = format!("{}/{entry}", self.basename);
      included = parent.filter_entry(&parent_entry, partial, Some(entry_basename.unwrap_or(entry)));
      if !included && !self.exact {
        return false;
      }
    }
    for source in self.sources {
      let Some(rules) = self.rules.get(source) else { continue };
      for rule in rules {
        if rule.negate == included {
          continue;
        }
        let relative_rule = entry_basename.is_some()
          && rule
            .glob_parts
            .iter()
            .any(|p| p.len() <= if p.last().is_some_and(|s| !s.is_empty()) { 1 } else { 2 });
        let slashed = format!("/{entry}");
        let hit = rule.matches(&slashed, false)
          || rule.matches(entry, false)
          || (partial
            && (rule.matches(&format!("/{entry}/"), false)
              || rule.matches(&format!("{entry}/"), false)
              || (rule.negate && (rule.matches(&slashed, true) || rule.matches(entry, true)))
              || (relative_rule && {
                let base = entry_basename.unwrap_or_default();
                rule.matches(&format!("/{base}/"), false)
                  || rule.matches(&format!("{base}/"), false)
                  || (rule.negate && (rule.matches(&format!("/{base}"), true) || rule.matches(base, true)))
              })));
        if hit {
          included = rule.negate;
        }
      }
    }
    included
  }
}

fn truthy(v: &Value) -> bool {
  match v {
    Value::Null => false,
    Value::Bool(b) => *b,
    Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
    Value::String(s) => !s.is_empty(),
    _ => true,
  }
}

/// `main`, `browser` and `bin` without a leading `./`; a string `bin` keyed by the name.
fn normalize_manifest(manifest: &Value) -> Value {
  let strip = |s: &str| s.strip_prefix("./").unwrap_or(s).to_string();
  let mut m = manifest.clone();
  let Some(obj) = m.as_object_mut() else { return Value::Object(Default::default()) };
  for key in ["main", "browser"] {
    if let Some(Value::String(s)) = obj.get(key) {
      let v = strip(s);
      obj.insert(key.into(), Value::String(v));
    }
  }
  match obj.get("bin").cloned() {
    Some(Value::String(s)) => {
      let name =
        obj.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()).unwrap_or("bin").to_string();
      let mut bin = serde_json::Map::new();
      bin.insert(name, Value::String(strip(&s)));
      obj.insert("bin".into(), Value::Object(bin));
    }
    Some(Value::Object(map)) => {
      let bin = map
        .into_iter()
        .map(|(k, v)| match v {
          Value::String(s) => (k, Value::String(strip(&s))),
          other => (k, other),
        })
        .collect();
      obj.insert("bin".into(), Value::Object(bin));
    }
    _ => {}
  }
  m
}

/// `.pnpm-lock.yaml.<pid>.<id>.tmp`: pnpm's own lockfile being written.
fn is_lockfile_staging_file(name: &str) -> bool {
  let Some(rest) = name.strip_prefix(".pnpm-lock.yaml.") else { return false };
  let parts: Vec<&str> = rest.split('.').collect();
  parts.len() == 3
    && parts[2] == "tmp"
    && !parts[1].is_empty()
    && !parts[0].is_empty()
    && parts[0].bytes().all(|b| b.is_ascii_digit())
}

/// pnpm drops symlinks that point outside the package (or would, once packed).
fn is_internal(dir: &Path, rel: &str) -> bool {
  let abs = dir.join(rel);
  let Ok(meta) = std::fs::symlink_metadata(&abs) else { return false };
  if !meta.file_type().is_symlink() {
    return true;
  }
  let Ok(target) = std::fs::read_link(&abs) else { return false };
  let parent = abs.parent().unwrap_or(dir);
  let target = if target.is_absolute() { pacquet_link::relative_path(parent, &target) } else { target };
  // Where the link would point inside the packed package.
  let rel_parent = Path::new(rel).parent().unwrap_or(Path::new(""));
  if climbs_out(&rel_parent.join(&target)) {
    return false;
  }
  if !crate::plan::normalize(&parent.join(&target)).starts_with(dir) {
    return false;
  }
  match std::fs::canonicalize(&abs) {
    Ok(real) => real.starts_with(std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())),
    // A dangling link stays.
    Err(_) => true,
  }
}

/// Whether a relative path, resolved lexically, goes above where it starts.
fn climbs_out(path: &Path) -> bool {
  use std::path::Component;
  let mut depth = 0usize;
  for c in path.components() {
    match c {
      Component::ParentDir if depth == 0 => return true,
      Component::ParentDir => depth -= 1,
      Component::Normal(_) => depth += 1,
      Component::CurDir => {}
      Component::RootDir | Component::Prefix(_) => return true,
    }
  }
  false
}

// ---------------------------------------------------------------------------------------
// Globs (minimatch's semantics with matchBase, dot, nocase, flipNegate)

#[derive(Debug, Clone)]
struct Rule {
  negate: bool,
  /// One alternative per brace expansion, split at `/`.
  set: Vec<Vec<Part>>,
  /// The same, as text (ignore-walk looks at their lengths).
  glob_parts: Vec<Vec<String>>,
  empty: bool,
}

#[derive(Debug, Clone)]
enum Part {
  Globstar,
  Segment(Segment),
}

#[derive(Debug, Clone)]
struct Segment {
  tokens: Vec<Tok>,
  /// `*`, `**`-less: must match at least one character.
  only_stars: bool,
}

#[derive(Debug, Clone)]
enum Tok {
  Char(char),
  Any,
  Star,
  Class { negated: bool, items: Vec<ClassItem> },
}

type CharTest = fn(char) -> bool;

#[derive(Debug, Clone)]
enum ClassItem {
  Char(char),
  Range(char, char),
  Posix(CharTest),
}

fn compile_text(text: &str) -> Vec<Rule> {
  let lines: Vec<String> = text
    .split('\n')
    .map(|l| l.strip_suffix('\r').unwrap_or(l))
    .filter(|l| {
      let t = l.trim();
      !(t.is_empty() || t.starts_with('#'))
    })
    .map(|l| l.trim().to_string())
    .collect();
  compile(&lines)
}

fn compile(rules: &[String]) -> Vec<Rule> {
  rules
    .iter()
    .filter(|r| !r.trim().is_empty() && !r.trim().starts_with('#'))
    .map(|r| Rule::new(r.trim()))
    .collect()
}

impl Rule {
  fn new(pattern: &str) -> Rule {
    if pattern.is_empty() {
      return Rule { negate: false, set: vec![], glob_parts: vec![], empty: true };
    }
    let bangs = pattern.chars().take_while(|&c| c == '!').count();
    let negate = bangs % 2 == 1;
    let pattern = &pattern[bangs..];
    let mut expanded: Vec<String> = Vec::new();
    for p in brace_expand(pattern, true) {
      if !expanded.contains(&p) {
        expanded.push(p);
      }
    }
    let glob_parts: Vec<Vec<String>> = expanded
      .iter()
      .map(|p| {
        let mut parts: Vec<String> = Vec::new();
        for part in split_slashes(p) {
          let prev = parts.last().map(String::as_str);
          if part == "**" && prev == Some("**") {
            continue;
          }
          if part == ".." && prev.is_some_and(|p| !p.is_empty() && p != ".." && p != "." && p != "**") {
            parts.pop();
            continue;
          }
          parts.push(part.to_string());
        }
        if parts.is_empty() {
          parts.push(String::new());
        }
        parts
      })
      .collect();
    let set = glob_parts
      .iter()
      .map(|parts| {
        parts
          .iter()
          .map(|p| if p == "**" { Part::Globstar } else { Part::Segment(Segment::parse(p)) })
          .collect()
      })
      .collect();
    Rule { negate, set, glob_parts, empty: false }
  }

  /// Whether the pattern (negation aside) matches the path.
  fn matches(&self, path: &str, partial: bool) -> bool {
    if self.empty {
      return path.is_empty();
    }
    if path == "/" && partial {
      return true;
    }
    let file: Vec<&str> = split_slashes(path).collect();
    let basename = file.iter().rev().find(|s| !s.is_empty()).copied().unwrap_or("");
    self.set.iter().any(|pattern| {
      if pattern.len() == 1 {
        match_one(&[basename], pattern, partial)
      } else {
        match_one(&file, pattern, partial)
      }
    })
  }
}

/// JavaScript's `split(/\/+/)`.
fn split_slashes(s: &str) -> impl Iterator<Item = &str> {
  let mut parts = Vec::new();
  let mut start = 0;
  let bytes = s.as_bytes();
  let mut i = 0;
  while i < bytes.len() {
    if bytes[i] == b'/' {
      parts.push(&s[start..i]);
      while i < bytes.len() && bytes[i] == b'/' {
        i += 1;
      }
      start = i;
    } else {
      i += 1;
    }
  }
  parts.push(&s[start..]);
  parts.into_iter()
}

fn is_dot_segment(s: &str) -> bool {
  s == "." || s == ".."
}

fn match_one(file: &[&str], pattern: &[Part], partial: bool) -> bool {
  if pattern.iter().any(|p| matches!(p, Part::Globstar)) {
    match_globstar(file, pattern, partial)
  } else {
    match_plain(file, 0, pattern, partial)
  }
}

/// Segment by segment from `fi`; a file that runs out first matches only when partial, a
/// pattern that runs out first only if all that is left is one trailing empty segment.
fn match_plain(file: &[&str], fi: usize, pattern: &[Part], partial: bool) -> bool {
  let mut fi = fi;
  let mut pi = 0;
  while fi < file.len() && pi < pattern.len() {
    match &pattern[pi] {
      Part::Globstar => return false,
      Part::Segment(seg) => {
        if !seg.matches(file[fi]) {
          return false;
        }
      }
    }
    fi += 1;
    pi += 1;
  }
  if fi == file.len() && pi == pattern.len() {
    true
  } else if fi == file.len() {
    partial
  } else {
    fi + 1 == file.len() && file[fi].is_empty()
  }
}

/// `head/**/body/**/.../tail`: head and tail anchor both ends, the body sections are placed
/// in between; `**` never matches `.` or `..`, and a trailing `**` matches at least one
/// segment. When partial, a path that matches the head is enough.
fn match_globstar(file: &[&str], pattern: &[Part], partial: bool) -> bool {
  let is_gs = |p: &Part| matches!(p, Part::Globstar);
  let first = pattern.iter().position(is_gs).unwrap_or(0);
  let last = pattern.iter().rposition(is_gs).unwrap_or(0);
  let (head, body, tail): (&[Part], &[Part], &[Part]) = if partial {
    (&pattern[..first], &pattern[first + 1..], &[])
  } else {
    let body: &[Part] = if first < last { &pattern[first + 1..last] } else { &[] };
    (&pattern[..first], body, &pattern[last + 1..])
  };
  let mut fi = 0;
  if !head.is_empty() {
    let file_head = &file[..head.len().min(file.len())];
    if !match_plain(file_head, 0, head, partial) {
      return false;
    }
    fi += head.len();
  }
  let mut tail_match = 0;
  if !tail.is_empty() {
    if tail.len() + fi > file.len() {
      return false;
    }
    let start = file.len() - tail.len();
    if match_plain(file, start, tail, partial) {
      tail_match = tail.len();
    } else {
      if file.last() != Some(&"") || fi + tail.len() == file.len() {
        return false;
      }
      if !match_plain(file, start - 1, tail, partial) {
        return false;
      }
      tail_match = tail.len() + 1;
    }
  }
  if body.is_empty() {
    let mut saw_some = tail_match > 0;
    for f in file.iter().take(file.len() - tail_match).skip(fi) {
      saw_some = true;
      if is_dot_segment(f) {
        return false;
      }
    }
    return partial || saw_some;
  }
  // Body sections between globstars, each with the last index it may start at.
  let mut sections: Vec<Vec<Part>> = vec![vec![]];
  let mut sums = vec![0usize];
  let mut non_gs = 0;
  for part in body {
    if is_gs(part) {
      sums.push(non_gs);
      sections.push(vec![]);
    } else {
      sections.last_mut().expect("one section").push(part.clone());
      non_gs += 1;
    }
  }
  let file_len = (file.len() - tail_match) as isize;
  let n = sections.len();
  let sections: Vec<(Vec<Part>, isize)> = sections
    .into_iter()
    .enumerate()
    .map(|(i, s)| {
      let after = file_len - (sums[n - 1 - i] + s.len()) as isize;
      (s, after)
    })
    .collect();
  match_sections(file, &sections, fi, 0, partial, 0, tail_match > 0) == Some(true)
}

/// `Some(false)`: no match here, try on; `None`: no match, stop trying.
fn match_sections(
  file: &[&str],
  sections: &[(Vec<Part>, isize)],
  fi: usize,
  index: usize,
  partial: bool,
  depth: usize,
  saw_tail: bool,
) -> Option<bool> {
  let Some((body, after)) = sections.get(index) else {
    let mut saw_tail = saw_tail;
    for f in file.iter().skip(fi) {
      saw_tail = true;
      if is_dot_segment(f) {
        return Some(false);
      }
    }
    return Some(saw_tail);
  };
  let mut fi = fi;
  while (fi as isize) <= *after {
    let end = (fi + body.len()).min(file.len());
    let hit = fi <= end && match_plain(&file[..end], fi, body, partial);
    if hit && depth < 200 {
      let sub = match_sections(file, sections, fi + body.len(), index + 1, partial, depth + 1, saw_tail);
      if sub != Some(false) {
        return sub;
      }
    }
    if file.get(fi).is_some_and(|f| is_dot_segment(f)) {
      return Some(false);
    }
    fi += 1;
  }
  if partial {
    Some(true)
  } else {
    None
  }
}

impl Segment {
  fn parse(p: &str) -> Segment {
    let chars: Vec<char> = p.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
      let c = chars[i];
      match c {
        '\\' if i + 1 < chars.len() => {
          tokens.push(Tok::Char(chars[i + 1]));
          i += 2;
          continue;
        }
        '*' => {
          if !matches!(tokens.last(), Some(Tok::Star)) {
            tokens.push(Tok::Star);
          }
        }
        '?' => tokens.push(Tok::Any),
        '[' => {
          if let Some((tok, next)) = parse_class(&chars, i) {
            tokens.push(tok);
            i = next;
            continue;
          }
          tokens.push(Tok::Char('['));
        }
        _ => tokens.push(Tok::Char(c)),
      }
      i += 1;
    }
    let only_stars = !tokens.is_empty() && tokens.iter().all(|t| matches!(t, Tok::Star));
    Segment { tokens, only_stars }
  }

  fn matches(&self, s: &str) -> bool {
    if self.only_stars {
      return !s.is_empty() && !is_dot_segment(s);
    }
    let chars: Vec<char> = s.chars().collect();
    let (mut ti, mut si) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while si < chars.len() {
      if let Some(tok) = self.tokens.get(ti) {
        if matches!(tok, Tok::Star) {
          backtrack = Some((ti, si));
          ti += 1;
          continue;
        }
        if tok.matches(chars[si]) {
          ti += 1;
          si += 1;
          continue;
        }
      }
      match backtrack {
        Some((star, from)) => {
          ti = star + 1;
          si = from + 1;
          backtrack = Some((star, from + 1));
        }
        None => return false,
      }
    }
    self.tokens[ti..].iter().all(|t| matches!(t, Tok::Star))
  }
}

impl Tok {
  fn matches(&self, c: char) -> bool {
    match self {
      Tok::Char(p) => eq_nocase(*p, c),
      Tok::Any => c != '/',
      Tok::Star => true,
      Tok::Class { negated, items } => {
        let variants = [c, lower(c), upper(c)];
        let hit = items.iter().any(|item| {
          variants.iter().any(|&v| match item {
            ClassItem::Char(x) => *x == v,
            ClassItem::Range(a, b) => *a <= v && v <= *b,
            ClassItem::Posix(f) => f(v),
          })
        });
        hit != *negated
      }
    }
  }
}

fn lower(c: char) -> char {
  c.to_lowercase().next().unwrap_or(c)
}

fn upper(c: char) -> char {
  c.to_uppercase().next().unwrap_or(c)
}

fn eq_nocase(a: char, b: char) -> bool {
  a == b || lower(a) == lower(b)
}

/// `[...]` starting at `start`; `None` when it does not close (then `[` is literal).
fn parse_class(chars: &[char], start: usize) -> Option<(Tok, usize)> {
  let mut i = start + 1;
  let mut negated = false;
  if matches!(chars.get(i), Some('!') | Some('^')) {
    negated = true;
    i += 1;
  }
  let mut items = Vec::new();
  let first = i;
  while i < chars.len() {
    let c = chars[i];
    if c == ']' && i > first {
      return Some((Tok::Class { negated, items }, i + 1));
    }
    if c == '[' && chars.get(i + 1) == Some(&':') {
      let rest: String = chars[i..].iter().collect();
      let classes: [(&str, CharTest); 12] = [
        ("[:alnum:]", |c| c.is_alphanumeric()),
        ("[:alpha:]", |c| c.is_alphabetic()),
        ("[:ascii:]", |c| c.is_ascii()),
        ("[:blank:]", |c| c == ' ' || c == '\t'),
        ("[:cntrl:]", |c| c.is_control()),
        ("[:digit:]", |c| c.is_numeric()),
        ("[:graph:]", |c| !c.is_whitespace() && !c.is_control()),
        ("[:lower:]", |c| c.is_lowercase()),
        ("[:print:]", |c| !c.is_control()),
        ("[:punct:]", |c| c.is_ascii_punctuation()),
        ("[:space:]", |c| c.is_whitespace()),
        ("[:upper:]", |c| c.is_uppercase()),
      ];
      if let Some((name, f)) = classes.iter().find(|(name, _)| rest.starts_with(name)) {
        items.push(ClassItem::Posix(*f));
        i += name.chars().count();
        continue;
      }
    }
    let c = if c == '\\' && i + 1 < chars.len() {
      i += 1;
      chars[i]
    } else {
      c
    };
    if chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(|&e| e != ']') {
      let mut end = chars[i + 2];
      let mut skip = 3;
      if end == '\\' && i + 3 < chars.len() {
        end = chars[i + 3];
        skip = 4;
      }
      items.push(ClassItem::Range(c, end));
      i += skip;
      continue;
    }
    items.push(ClassItem::Char(c));
    i += 1;
  }
  None
}

/// Bash-style brace expansion as the `brace-expansion` package does it: `a{b,c}d` →
/// `abd`, `acd`; `{1..3}`, `{a..c}`; a brace without a comma or a range stays literal.
/// At the top level, empty results are dropped.
fn brace_expand(pattern: &str, top: bool) -> Vec<String> {
  let chars: Vec<char> = pattern.chars().collect();
  // The first `{` (not escaped) with its matching `}`.
  let mut open = None;
  let mut depth = 0;
  let mut i = 0;
  let mut found = None;
  while i < chars.len() {
    match chars[i] {
      '\\' => i += 1,
      '{' => {
        if open.is_none() {
          open = Some(i);
        }
        depth += 1;
      }
      '}' if open.is_some() => {
        depth -= 1;
        if depth == 0 {
          found = Some((open.unwrap_or(0), i));
          break;
        }
      }
      _ => {}
    }
    i += 1;
  }
  let Some((start, end)) = found else {
    return vec![unescape_braces(pattern)];
  };
  let pre: String = chars[..start].iter().collect();
  let body: String = chars[start + 1..end].iter().collect();
  let post: String = chars[end + 1..].iter().collect();
  let posts = if post.is_empty() { vec![String::new()] } else { brace_expand(&post, false) };
  let keep = |s: &String, sequence: bool| !top || sequence || !s.is_empty();
  if pre.ends_with('$') {
    return posts.iter().map(|p| format!("{}{{{body}}}{p}", unescape_braces(&pre))).collect();
  }
  let pre = unescape_braces(&pre);
  let combine = |middles: Vec<String>, sequence: bool| -> Vec<String> {
    let mut out = Vec::new();
    for n in &middles {
      for p in &posts {
        let s = format!("{pre}{n}{p}");
        if keep(&s, sequence) {
          out.push(s);
        }
      }
    }
    out
  };
  if let Some(items) = sequence(&body) {
    return combine(items, true);
  }
  let options = split_top_commas(&body);
  if options.len() < 2 {
    // Not a set: keep the braces as text and expand what is inside.
    return combine(brace_expand(&body, false).into_iter().map(|n| format!("{{{n}}}")).collect(), false);
  }
  combine(options.iter().flat_map(|o| brace_expand(o, false)).collect(), false)
}

fn unescape_braces(s: &str) -> String {
  let mut out = String::with_capacity(s.len());
  let mut chars = s.chars().peekable();
  while let Some(c) = chars.next() {
    if c == '\\' {
      if let Some(&n) = chars.peek() {
        if matches!(n, '{' | '}' | ',' | '.' | '\\') {
          out.push(n);
          chars.next();
          continue;
        }
      }
    }
    out.push(c);
  }
  out
}

fn split_top_commas(body: &str) -> Vec<String> {
  let mut parts = Vec::new();
  let mut current = String::new();
  let mut depth = 0;
  let mut chars = body.chars();
  while let Some(c) = chars.next() {
    match c {
      '\\' => {
        current.push(c);
        if let Some(n) = chars.next() {
          current.push(n);
        }
        continue;
      }
      '{' => depth += 1,
      '}' => depth -= 1,
      ',' if depth == 0 => {
        parts.push(std::mem::take(&mut current));
        continue;
      }
      _ => {}
    }
    current.push(c);
  }
  parts.push(current);
  parts
}

/// `{1..5}`, `{01..10..2}`, `{a..e}`.
fn sequence(body: &str) -> Option<Vec<String>> {
  let parts: Vec<&str> = body.split("..").collect();
  if parts.len() != 2 && parts.len() != 3 {
    return None;
  }
  let step: i64 = match parts.get(2) {
    Some(s) => s.parse::<i64>().ok()?.abs().max(1),
    None => 1,
  };
  let is_int = |s: &str| {
    let d = s.strip_prefix('-').unwrap_or(s);
    !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())
  };
  if is_int(parts[0]) && is_int(parts[1]) {
    let (a, b): (i64, i64) = (parts[0].parse().ok()?, parts[1].parse().ok()?);
    let padded = |s: &str| {
      let d = s.strip_prefix('-').unwrap_or(s);
      d.len() > 1 && d.starts_with('0')
    };
    let width = if padded(parts[0]) || padded(parts[1]) { parts[0].len().max(parts[1].len()) } else { 0 };
    let mut out = Vec::new();
    let mut n = a;
    loop {
      if (a <= b && n > b) || (a > b && n < b) || out.len() > 100_000 {
        break;
      }
      let s = if width > 0 {
        if n < 0 {
          format!("-{:0w$}", -n, w = width.saturating_sub(1))
        } else {
          format!("{n:0width$}")
        }
      } else {
        n.to_string()
      };
      out.push(s);
      n = if a <= b { n + step } else { n - step };
    }
    return Some(out);
  }
  let single = |s: &str| {
    let mut it = s.chars();
    match (it.next(), it.next()) {
      (Some(c), None) if c.is_ascii_alphabetic() => Some(c),
      _ => None,
    }
  };
  let (a, b) = (single(parts[0])?, single(parts[1])?);
  let (a, b) = (a as i64, b as i64);
  let mut out = Vec::new();
  let mut n = a;
  loop {
    if (a <= b && n > b) || (a > b && n < b) {
      break;
    }
    let c = char::from_u32(n as u32)?;
    if c != '\\' {
      out.push(c.to_string());
    }
    n = if a <= b { n + step } else { n - step };
  }
  Some(out)
}

#[cfg(test)]
mod tests {
  use super::*;

  fn rule(p: &str) -> Rule {
    Rule::new(p)
  }

  #[test]
  fn globs_match_like_minimatch_with_npm_packlists_options() {
    assert!(rule("*.md").matches("docs/README.MD", false));
    assert!(rule("docs/").matches("docs/", false));
    assert!(!rule("docs/").matches("/docs/", false));
    assert!(!rule("docs/").matches("/docs", false));
    assert!(rule("/package.json").matches("/package.json", false));
    assert!(!rule("/package.json").matches("lib/package.json", false));
    assert!(rule("**/.git").matches("/.git", false));
    assert!(rule("**/.git/**").matches("/a/.git/x", false));
    assert!(!rule("**/.git/**").matches("/.git", false));
    assert!(rule("!lib/**").matches("lib", true));
    assert!(!rule("lib/**").matches("lib", false));
    assert!(rule("lib/**").matches("lib/a/b.js", false));
    assert!(rule("/readme{,.*[^~$]}").matches("/README.md", false));
    assert!(rule("/readme{,.*[^~$]}").matches("/readme", false));
    assert!(!rule("/readme{,.*[^~$]}").matches("/README.md~", false));
    assert!(rule("a/**/b").matches("a/b", false));
    assert!(rule("a/**/b").matches("a/x/y/b", false));
    assert!(rule("*").matches("/.hidden", false));
    assert!(rule("._*").matches("/x/._y", false));
    assert!(rule("f[0-9].js").matches("F1.JS", false));
    assert!(!rule("f[!0-9].js").matches("f1.js", false));
    assert!(rule("!x").negate && !rule("!!x").negate);
  }

  #[test]
  fn braces_expand_like_brace_expansion() {
    assert_eq!(brace_expand("a{b,c}d{e,f}", true), ["abde", "abdf", "acde", "acdf"]);
    assert_eq!(brace_expand("{,a}", true), ["a"]);
    assert_eq!(brace_expand("x{1..3}", true), ["x1", "x2", "x3"]);
    assert_eq!(brace_expand("x{a}", true), ["x{a}"]);
    assert_eq!(brace_expand("r{,.*[^~$]}", true), ["r", "r.*[^~$]"]);
  }

  fn write(root: &Path, files: &[(&str, &str)]) {
    for (path, content) in files {
      let p = root.join(path);
      std::fs::create_dir_all(p.parent().unwrap()).unwrap();
      std::fs::write(p, content).unwrap();
    }
  }

  #[test]
  fn the_files_field_wins_and_always_included_files_stay() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(
      d,
      &[
        (
          "package.json",
          r#"{"name":"x","main":"./main.js","bin":"cli/x.js","files":["lib","dist/*.js","one.txt"]}"#,
        ),
        ("main.js", ""),
        ("cli/x.js", ""),
        ("cli/other.js", ""),
        ("lib/a.js", ""),
        ("lib/sub/b.js", ""),
        ("lib/.npmignore", "b.js\n"),
        ("dist/x.js", ""),
        ("dist/x.map", ""),
        ("one.txt", ""),
        ("README.md", ""),
        ("LICENSE", ""),
        ("CHANGELOG.md", ""),
        ("test/t.js", ""),
        (".npmignore", "lib\n"),
        ("node_modules/dep/index.js", ""),
        ("pnpm-lock.yaml", ""),
      ],
    );
    let files = packlist(d).unwrap();
    assert_eq!(
      files,
      [
        "LICENSE",
        "README.md",
        "cli/x.js",
        "dist/x.js",
        // lib/.npmignore's `b.js` applies below it too (a rule without `/` matches basenames).
        "lib/a.js",
        "main.js",
        "one.txt",
        "package.json"
      ]
    );
  }

  #[test]
  fn npmignore_then_gitignore_then_everything() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(
      d,
      &[
        ("package.json", r#"{"name":"x"}"#),
        ("index.js", ""),
        ("docs/guide.md", ""),
        ("src/a.js", ""),
        ("src/a.test.js", ""),
        ("src/.gitignore", "*.test.js\n"),
        (".gitignore", "src\n"),
        (".npmrc", ""),
        ("x.orig", ""),
        (".DS_Store", ""),
        ("node_modules/y/index.js", ""),
      ],
    );
    // .gitignore applies when there is no .npmignore.
    assert_eq!(packlist(d).unwrap(), ["docs/guide.md", "index.js", "package.json"]);
    write(d, &[(".npmignore", "docs/\n")]);
    assert_eq!(packlist(d).unwrap(), ["index.js", "package.json", "src/a.js"]);
  }

  #[test]
  fn injected_deps_lists_directory_slots_relative_to_the_lockfile() {
    let slot = |dep_path: &str, name: &str, version: &str, source: Source| SlotPlan {
      dep_path: dep_path.into(),
      name: name.into(),
      version: version.into(),
      source,
      index_key: None,
      slot_dir: PathBuf::from("/w/node_modules/.pnpm/x"),
      pkg_dir: PathBuf::from(format!(
        "/w/node_modules/.pnpm/{}/node_modules/{name}",
        dep_path.replace('/', "+")
      )),
      links: vec![],
      optional: false,
    };
    let dir = || Source::Directory { path: "/w/packages/a".into() };
    let plan = Plan {
      slots: vec![
        slot("a@file:packages/a(b@1.0.0)", "a", "file:packages/a", dir()),
        slot("r@1.0.0", "r", "1.0.0", Source::Remote { url: String::new(), integrity: None }),
        slot("a@file:packages/a(b@2.0.0)", "a", "file:packages/a", dir()),
      ],
      skipped: vec![],
      importers: vec![],
      warnings: vec![],
    };
    assert_eq!(
      injected_deps(&plan, Path::new("/w")),
      serde_json::json!({"packages/a": [
        "node_modules/.pnpm/a@file:packages+a(b@1.0.0)/node_modules/a",
        "node_modules/.pnpm/a@file:packages+a(b@2.0.0)/node_modules/a",
      ]})
    );
  }
}
