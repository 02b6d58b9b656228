//! pnpm's hoisting for the isolated layout: which packages also get a link in
//! `<virtualStoreDir>/node_modules/<alias>` ("private", `hoistPattern`) or in the root
//! `node_modules/<alias>` ("public", `publicHoistPattern`), and the `hoistedDependencies`
//! record of `.modules.yaml`. Pure: no I/O.
//!
//! The rules, as pnpm 11 (11.28) applies them on a full install:
//!
//! - Candidates are the aliases under which installed packages depend on each other, plus
//!   the direct dependencies of the selected importers. Each alias is hoisted at most once
//!   (compared in lower case); the first candidate in this order takes it:
//!   1. the importers' direct dependencies (the first importer with an alias supplies it);
//!   2. the dependencies of every installed package, package by package, ordered by the
//!      depth at which pnpm's graph walk reached the package and, within one depth, by the
//!      package's directory in the virtual store (UTF-16 code-unit order).
//! - The root importer's (`.`) own direct dependencies, `link:` ones included, take their
//!   aliases from the start, so they are not hoisted. Except when the private hoisted
//!   directory lies outside the project: then those the private pattern matches are hoisted
//!   privately (never publicly), and under such an alias only the root's own target.
//! - An alias is public when `publicHoistPattern` matches it, else private when
//!   `hoistPattern` matches it, else it is not hoisted and stays free.
//! - Skipped (not installed) packages are neither candidates nor walked through; `link:`
//!   targets are never hoisted (and do not take their alias).
//! - `hoistWorkspacePackages`: a named workspace project is linked under its name when a
//!   pattern matches the name, no importer has a direct dependency of that name, and the
//!   name does not nest with an alias hoisted the same way (`@a` and `@a/b`). Such names are
//!   then reserved: no package is hoisted under them. They are recorded after the packages,
//!   keyed by importer id.

use std::collections::{HashMap, HashSet};

use indexmap::IndexMap;
use pacquet_lockfile::{
  dep_path_to_filename, parse_pkg_key, ref_to_dep_path, remove_peer_suffix, DependencyRef, Importer, Lockfile,
};

use crate::options::Include;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoistOptions {
  /// `hoistPattern` (pnpm's default: `['*']`).
  pub hoist_pattern: Vec<String>,
  /// `publicHoistPattern` (default `[]`; `shamefullyHoist: true` makes it `['*']`).
  pub public_hoist_pattern: Vec<String>,
  /// Which dependencies the install includes. An importer's `optionalDependencies` count
  /// only when `dependencies` do too; packages' when `optional_dependencies` is set.
  pub include: Include,
  /// `virtualStoreDirMaxLength`: slot names decide the order among packages of one depth.
  pub virtual_store_dir_max_length: usize,
  /// `hoistWorkspacePackages` (pnpm's default): `(importer id, package name)` of every
  /// workspace project other than the root that has a name, in pnpm's project order.
  /// Empty when the setting is off.
  pub workspace_packages: Vec<(String, String)>,
  /// Whether `<virtualStoreDir>/node_modules` is outside the project (lockfile) directory
  /// (a `virtualStoreDir` elsewhere). Not for the default layout.
  pub private_dir_outside_project: bool,
}

impl Default for HoistOptions {
  fn default() -> Self {
    HoistOptions {
      hoist_pattern: vec!["*".to_string()],
      public_hoist_pattern: Vec::new(),
      include: Include::default(),
      virtual_store_dir_max_length: 120,
      workspace_packages: Vec::new(),
      private_dir_outside_project: false,
    }
  }
}

/// A package linked under `alias` in the private or the public hoisted directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hoisted {
  pub alias: String,
  pub dep_path: String,
  pub public: bool,
}

/// A workspace project linked under its package name (`hoistWorkspacePackages`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoistedProject {
  pub alias: String,
  pub importer_id: String,
  pub public: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HoistResult {
  /// In the order pnpm decides them (the order of `hoistedDependencies`).
  pub dependencies: Vec<Hoisted>,
  pub projects: Vec<HoistedProject>,
}

/// Decides what pnpm hoists.
///
/// `importer_ids`: the importers being installed, in pnpm's order (for a whole workspace,
/// the lockfile's). `skipped`: dep paths that are not installed (skipped optional packages
/// and whatever else the install leaves out). Snapshots missing from the lockfile count as
/// not installed.
pub fn hoist(
  lockfile: &Lockfile,
  importer_ids: &[String],
  skipped: &HashSet<String>,
  options: &HoistOptions,
) -> HoistResult {
  let mut graph = Graph {
    lockfile,
    skipped,
    include_optional: options.include.optional_dependencies,
    children: HashMap::new(),
  };
  let public = Matcher::new(&options.public_hoist_pattern);
  let private = Matcher::new(&options.hoist_pattern);
  let kind = |alias: &str| {
    if public.matches(alias) {
      Some(true)
    } else if private.matches(alias) {
      Some(false)
    } else {
      None
    }
  };

  // The selected importers' direct dependencies: installed packages, or anything else
  // (`link:`, a `file:` reference to a skipped package) that pnpm still keeps in the map.
  let mut by_importer: IndexMap<&str, IndexMap<&str, Target>> = IndexMap::new();
  for id in importer_ids {
    let Some(importer) = lockfile.importers.get(id) else { continue };
    let mut deps = IndexMap::new();
    for (alias, reference) in importer_refs(importer, options.include) {
      let target = match ref_to_dep_path(reference, alias) {
        DependencyRef::Snapshot(dep_path) if graph.installed(&dep_path) => Target::Package(dep_path),
        DependencyRef::Snapshot(_) if !reference.starts_with("file:") => continue,
        _ => Target::Other(reference.to_string()),
      };
      deps.insert(alias, target);
    }
    by_importer.insert(id, deps);
  }
  let by_importer = js_order(by_importer, |deps| deps);
  let no_deps = IndexMap::new();
  let root_deps = by_importer.get(".").unwrap_or(&no_deps);
  let private_root: HashSet<&str> = if options.private_dir_outside_project {
    root_deps.keys().copied().filter(|alias| private.matches(alias)).collect()
  } else {
    HashSet::new()
  };

  // Installed direct dependencies of all importers: where the walk starts.
  let direct: Vec<(&str, &str)> = by_importer
    .values()
    .flat_map(|deps| deps.iter())
    .filter_map(|(alias, target)| match target {
      Target::Package(dep_path) => Some((*alias, dep_path.as_str())),
      Target::Other(_) => None,
    })
    .collect();

  // The walk's first level: the root's own dependencies when they may be hoisted, then
  // every importer's installed ones, the first importer winning an alias.
  let mut root: IndexMap<&str, Target> = IndexMap::new();
  if !private_root.is_empty() {
    root.extend(root_deps.iter().map(|(alias, target)| (*alias, target.clone())));
  }
  for (alias, dep_path) in &direct {
    root.entry(alias).or_insert_with(|| Target::Package(dep_path.to_string()));
  }
  let root = js_order(root, |t| t);

  // pnpm's graph walk: every node of a level claims its unvisited children for the next
  // level, then each child level is walked to the bottom before its sibling levels.
  let mut visited: HashSet<String> = HashSet::new();
  let mut start = Vec::new();
  for (_, dep_path) in &direct {
    if visited.insert(dep_path.to_string()) {
      start.push(dep_path.to_string());
    }
  }
  let mut nodes: Vec<(usize, Vec<u16>, String)> = Vec::new();
  let mut levels = vec![(start, 0usize)];
  while let Some((level, depth)) = levels.pop() {
    let mut next_levels = Vec::with_capacity(level.len());
    for dep_path in level {
      let next: Vec<String> = graph
        .children(&dep_path)
        .iter()
        .filter_map(|(_, child)| match child {
          Target::Package(child) if visited.insert(child.clone()) => Some(child.clone()),
          _ => None,
        })
        .collect();
      next_levels.push(next);
      let key = sort_key(&dep_path, options.virtual_store_dir_max_length);
      nodes.push((depth, key, dep_path));
    }
    for next in next_levels.into_iter().rev() {
      if !next.is_empty() {
        levels.push((next, depth + 1));
      }
    }
  }
  nodes.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));

  let mut decide = |reserved: &[&str]| {
    let mut taken: HashSet<String> = root_deps
      .keys()
      .filter(|alias| !private_root.contains(*alias))
      .chain(reserved)
      .map(|alias| alias.to_lowercase())
      .collect();
    let mut decision = Decision::default();
    let mut consider = |alias: &str, target: &Target| {
      let public = if private_root.contains(alias) {
        // Only the root's own target, and only privately.
        if root_deps.get(alias) != Some(target) {
          return;
        }
        false
      } else {
        match kind(alias) {
          Some(public) => public,
          None => return,
        }
      };
      let normalized = alias.to_lowercase();
      if taken.contains(&normalized) {
        return;
      }
      decision.occupied.push((alias.to_string(), public));
      if let Target::Package(dep_path) = target {
        taken.insert(normalized);
        decision.hoisted.push(Hoisted { alias: alias.to_string(), dep_path: dep_path.clone(), public });
      }
    };
    for (alias, target) in &root {
      consider(alias, target);
    }
    for (_, _, dep_path) in &nodes {
      for (alias, target) in graph.children(dep_path) {
        consider(alias, target);
      }
    }
    decision
  };

  let first = decide(&[]);
  let root_aliases: Vec<&str> = root_deps.keys().copied().collect();
  let projects = workspace_projects(lockfile, skipped, options, &kind, &first.occupied, &root_aliases);
  let dependencies = if projects.is_empty() {
    first.hoisted
  } else {
    let reserved: Vec<&str> = projects.iter().map(|p| p.alias.as_str()).collect();
    decide(&reserved).hoisted
  };
  HoistResult { dependencies, projects }
}

/// `.modules.yaml`'s `hoistedDependencies`: `{ depPath: { alias: 'private' | 'public' } }`
/// (workspace projects under their importer id, after the packages), in pnpm's order.
pub fn hoisted_dependencies(result: &HoistResult) -> IndexMap<String, IndexMap<String, &'static str>> {
  let kind = |public: bool| if public { "public" } else { "private" };
  let mut out: IndexMap<String, IndexMap<String, &'static str>> = IndexMap::new();
  for h in &result.dependencies {
    out.entry(h.dep_path.clone()).or_default().insert(h.alias.clone(), kind(h.public));
  }
  for p in &result.projects {
    out.entry(p.importer_id.clone()).or_default().insert(p.alias.clone(), kind(p.public));
  }
  js_order(out, |aliases| js_order(aliases, |k| k))
}

/// Where a dependency points.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
  /// An installed package (its dep path).
  Package(String),
  /// Not a package of the graph (`link:`, a skipped `file:` package): never hoisted.
  Other(String),
}

#[derive(Default)]
struct Decision {
  hoisted: Vec<Hoisted>,
  /// Every alias a hoist was decided for, `link:` ones included (pnpm checks workspace
  /// project names against these).
  occupied: Vec<(String, bool)>,
}

/// An importer's dependencies as pnpm merges them: `devDependencies`, `dependencies`, then
/// `optionalDependencies` (only along with `dependencies`); a later group wins an alias but
/// keeps its place.
fn importer_refs(importer: &Importer, include: Include) -> IndexMap<&str, &str> {
  let groups = [
    (include.dev_dependencies, &importer.dev_dependencies),
    (include.dependencies, &importer.dependencies),
    (include.dependencies && include.optional_dependencies, &importer.optional_dependencies),
  ];
  let mut refs = IndexMap::new();
  for (_, deps) in groups.into_iter().filter(|(wanted, _)| *wanted) {
    for (alias, dep) in deps {
      refs.insert(alias.as_str(), dep.version.as_str());
    }
  }
  js_order(refs, |r| r)
}

/// `hoistWorkspacePackages`: the projects linked under their names.
fn workspace_projects(
  lockfile: &Lockfile,
  skipped: &HashSet<String>,
  options: &HoistOptions,
  kind: &impl Fn(&str) -> Option<bool>,
  occupied: &[(String, bool)],
  root_aliases: &[&str],
) -> Vec<HoistedProject> {
  if options.workspace_packages.is_empty() {
    return Vec::new();
  }
  // Names any importer (selected or not) depends on directly, `link:` aside.
  let mut taken: HashSet<String> = HashSet::new();
  for importer in lockfile.importers.values() {
    for (alias, reference) in importer_refs(importer, options.include) {
      if let DependencyRef::Snapshot(dep_path) = ref_to_dep_path(reference, alias) {
        if !skipped.contains(&dep_path) {
          taken.insert(alias.to_lowercase());
        }
      }
    }
  }
  let projects: IndexMap<&str, &str> =
    options.workspace_packages.iter().map(|(id, name)| (id.as_str(), name.as_str())).collect();
  let mut candidates = Vec::new();
  for (id, name) in js_order(projects, |n| n) {
    let Some(public) = kind(name) else { continue };
    if !taken.insert(name.to_lowercase()) {
      continue;
    }
    candidates.push(HoistedProject { alias: name.to_string(), importer_id: id.to_string(), public });
  }

  // A name may not nest with another hoisted alias of the same kind: `@a` and `@a/b`
  // would be one inside the other. Projects with the same name as an alias are fine: the
  // name is reserved for them.
  let mut conflicting: HashSet<String> = HashSet::new();
  for public in [false, true] {
    let mut aliases: HashSet<String> = HashSet::new();
    let mut ancestors: HashSet<String> = HashSet::new();
    let mut occupy = |alias: &str| {
      let alias = alias.to_lowercase();
      for (i, _) in alias.match_indices('/') {
        ancestors.insert(alias[..i].to_string());
      }
      aliases.insert(alias);
    };
    for (alias, p) in occupied {
      if *p == public {
        occupy(alias);
      }
    }
    if public {
      // pnpm counts the root's direct dependencies as public aliases.
      for alias in root_aliases {
        occupy(alias);
      }
    }
    let mut by_name: IndexMap<String, Vec<&str>> = IndexMap::new();
    for candidate in candidates.iter().filter(|c| c.public == public) {
      let name = candidate.alias.to_lowercase();
      let nests_in_occupied =
        ancestors.contains(&name) || name.match_indices('/').any(|(i, _)| aliases.contains(&name[..i]));
      if nests_in_occupied {
        conflicting.insert(candidate.importer_id.clone());
      } else {
        by_name.entry(name).or_default().push(&candidate.importer_id);
      }
    }
    let mut names: Vec<(&String, &Vec<&str>)> = by_name.iter().collect();
    names.sort_by(|a, b| compare_by_components(a.0, b.0));
    let mut open: Vec<(&String, &Vec<&str>)> = Vec::new();
    for current in names {
      while open.last().is_some_and(|(top, _)| !current.0.starts_with(&format!("{top}/"))) {
        open.pop();
      }
      if !open.is_empty() {
        for (_, ids) in open.iter().chain([&current]) {
          conflicting.extend(ids.iter().map(|id| id.to_string()));
        }
      }
      open.push(current);
    }
  }
  candidates.retain(|c| !conflicting.contains(&c.importer_id));
  candidates
}

fn compare_by_components(a: &str, b: &str) -> std::cmp::Ordering {
  let (a, b): (Vec<&str>, Vec<&str>) = (a.split('/').collect(), b.split('/').collect());
  for (x, y) in a.iter().zip(&b) {
    let order = x.encode_utf16().cmp(y.encode_utf16());
    if order.is_ne() {
      return order;
    }
  }
  a.len().cmp(&b.len())
}

/// The installed part of the lockfile's graph, with each package's children computed once.
struct Graph<'a> {
  lockfile: &'a Lockfile,
  skipped: &'a HashSet<String>,
  include_optional: bool,
  children: HashMap<String, Vec<(String, Target)>>,
}

impl Graph<'_> {
  fn installed(&self, dep_path: &str) -> bool {
    !self.skipped.contains(dep_path)
      && self.lockfile.snapshots.contains_key(dep_path)
      && self.lockfile.packages.contains_key(remove_peer_suffix(dep_path))
  }

  /// A package's dependencies in pnpm's object order; those not installed are left out.
  fn children(&mut self, dep_path: &str) -> &[(String, Target)] {
    if !self.children.contains_key(dep_path) {
      let mut refs: IndexMap<&str, &str> = IndexMap::new();
      if let Some(snapshot) = self.lockfile.snapshots.get(dep_path) {
        for (alias, reference) in &snapshot.dependencies {
          refs.insert(alias, reference);
        }
        if self.include_optional {
          for (alias, reference) in &snapshot.optional_dependencies {
            refs.insert(alias, reference);
          }
        }
      }
      let list = js_order(refs, |r| r)
        .into_iter()
        .filter_map(|(alias, reference)| {
          let target = match ref_to_dep_path(reference, alias) {
            DependencyRef::Snapshot(child) if self.installed(&child) => Target::Package(child),
            DependencyRef::Snapshot(_) if !reference.starts_with("file:") => return None,
            _ => Target::Other(reference.to_string()),
          };
          Some((alias.to_string(), target))
        })
        .collect();
      self.children.insert(dep_path.to_string(), list);
    }
    &self.children[dep_path]
  }
}

/// What pnpm sorts packages of one depth by: the package's directory in the virtual store
/// (below the common prefix), compared as UTF-16 code units.
fn sort_key(dep_path: &str, max_length: usize) -> Vec<u16> {
  let sep = std::path::MAIN_SEPARATOR;
  let name = parse_pkg_key(remove_peer_suffix(dep_path)).map(|k| k.name).unwrap_or(dep_path);
  let mut dir = dep_path_to_filename(dep_path, max_length);
  dir.push(sep);
  dir.push_str("node_modules");
  dir.push(sep);
  dir.extend(name.chars().map(|c| if c == '/' { sep } else { c }));
  dir.encode_utf16().collect()
}

/// Reorders a map the way a JavaScript object orders its keys: array indices (`"0"`,
/// `"42"`) first, ascending, then the other keys in insertion order.
fn js_order<K: AsRef<str> + std::hash::Hash + Eq, V, W>(
  map: IndexMap<K, V>,
  mut value: impl FnMut(V) -> W,
) -> IndexMap<K, W> {
  let (mut indices, rest): (Vec<_>, Vec<_>) =
    map.into_iter().map(|(k, v)| (array_index(k.as_ref()), k, v)).partition(|(index, _, _)| index.is_some());
  indices.sort_by_key(|(index, _, _)| *index);
  indices.into_iter().chain(rest).map(|(_, k, v)| (k, value(v))).collect()
}

fn array_index(key: &str) -> Option<u32> {
  if key.is_empty() || key.len() > 10 || !key.bytes().all(|b| b.is_ascii_digit()) {
    return None;
  }
  if key.len() > 1 && key.starts_with('0') {
    return None;
  }
  let n: u64 = key.parse().ok()?;
  (n < u32::MAX as u64).then_some(n as u32)
}

/// pnpm's `hoistPattern` matcher: `*` stands for any run of characters, `?` for one, the
/// rest is literal, and a leading `!` excludes. Several patterns: without exclusions, any
/// may match; with only exclusions, none may; mixed, an exclusion undoes earlier matches
/// and an inclusion counts while nothing is matched.
struct Matcher {
  patterns: Vec<(bool, Glob)>,
}

impl Matcher {
  fn new(patterns: &[String]) -> Self {
    Matcher {
      patterns: patterns
        .iter()
        .map(|p| match p.strip_prefix('!') {
          Some(rest) => (true, Glob::new(rest)),
          None => (false, Glob::new(p)),
        })
        .collect(),
    }
  }

  fn matches(&self, input: &str) -> bool {
    let excludes = self.patterns.iter().any(|(exclude, _)| *exclude);
    let includes = self.patterns.iter().any(|(exclude, _)| !*exclude);
    match (includes, excludes) {
      (false, false) => false,
      (true, false) => self.patterns.iter().any(|(_, g)| g.matches(input)),
      (false, true) => !self.patterns.iter().any(|(_, g)| g.matches(input)),
      (true, true) => {
        let mut matched = false;
        for (exclude, glob) in &self.patterns {
          if *exclude {
            if glob.matches(input) {
              matched = false;
            }
          } else if !matched && glob.matches(input) {
            matched = true;
          }
        }
        matched
      }
    }
  }
}

enum Glob {
  Exact(String),
  /// `None` is a `*`, `Some(None)` a `?`.
  Wild(Vec<Option<Option<char>>>),
}

impl Glob {
  fn new(pattern: &str) -> Self {
    if pattern.contains(['*', '?']) {
      Glob::Wild(
        pattern
          .chars()
          .map(|c| match c {
            '*' => None,
            '?' => Some(None),
            c => Some(Some(c)),
          })
          .collect(),
      )
    } else {
      Glob::Exact(pattern.to_string())
    }
  }

  fn matches(&self, input: &str) -> bool {
    match self {
      Glob::Exact(s) => s == input,
      Glob::Wild(pattern) => {
        let input: Vec<char> = input.chars().collect();
        // ok[j]: the pattern so far matches input[..j].
        let mut ok = vec![false; input.len() + 1];
        ok[0] = true;
        for p in pattern {
          let mut next = vec![false; input.len() + 1];
          match p {
            None => {
              for j in 0..=input.len() {
                next[j] = ok[j] || (j > 0 && next[j - 1]);
              }
            }
            Some(c) => {
              for j in 1..=input.len() {
                next[j] = ok[j - 1] && c.is_none_or(|c| input[j - 1] == c);
              }
            }
          }
          ok = next;
        }
        ok[input.len()]
      }
    }
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use pacquet_lockfile::{read_lockfile, LockfileSource};
  use serde_json::{json, Value};

  /// A lockfile from `importers` (references written bare) and `snapshots` (packages are
  /// made up from their keys).
  fn lockfile(importers: Value, snapshots: Value) -> Lockfile {
    let mut importers = importers;
    for importer in importers.as_object_mut().unwrap().values_mut() {
      for deps in importer.as_object_mut().unwrap().values_mut() {
        for dep in deps.as_object_mut().unwrap().values_mut() {
          *dep = json!({ "version": dep.clone() });
        }
      }
    }
    let mut packages = serde_json::Map::new();
    for key in snapshots.as_object().unwrap().keys() {
      packages
        .insert(remove_peer_suffix(key).to_string(), json!({ "resolution": { "integrity": "sha512-AAAA" } }));
    }
    let value = json!({
      "lockfileVersion": "9.0",
      "importers": importers,
      "packages": packages,
      "snapshots": snapshots,
    });
    read_lockfile(LockfileSource::Value(value)).unwrap().0
  }

  fn root(deps: Value) -> Value {
    json!({ ".": { "dependencies": deps } })
  }

  fn all_importers(lockfile: &Lockfile) -> Vec<String> {
    lockfile.importers.keys().cloned().collect()
  }

  fn run_with(lockfile: &Lockfile, skipped: &[&str], options: &HoistOptions) -> HoistResult {
    let skipped = skipped.iter().map(|s| s.to_string()).collect();
    hoist(lockfile, &all_importers(lockfile), &skipped, options)
  }

  /// `alias -> dep path` (`public:` first when public), in decision order.
  fn run(lockfile: &Lockfile, options: &HoistOptions) -> Vec<String> {
    show(&run_with(lockfile, &[], options))
  }

  fn show(result: &HoistResult) -> Vec<String> {
    let kind = |public: bool| if public { "public:" } else { "" };
    let packages =
      result.dependencies.iter().map(|h| format!("{}{} -> {}", kind(h.public), h.alias, h.dep_path));
    let projects =
      result.projects.iter().map(|p| format!("{}{} -> project {}", kind(p.public), p.alias, p.importer_id));
    packages.chain(projects).collect()
  }

  fn patterns(private: &[&str], public: &[&str]) -> HoistOptions {
    HoistOptions {
      hoist_pattern: private.iter().map(|s| s.to_string()).collect(),
      public_hoist_pattern: public.iter().map(|s| s.to_string()).collect(),
      ..HoistOptions::default()
    }
  }

  #[test]
  fn matcher_follows_pnpm() {
    let m = |p: &[&str], input: &str| {
      Matcher::new(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>()).matches(input)
    };
    assert!(!m(&[], "a"));
    assert!(m(&["*"], "@types/node"));
    assert!(m(&["*types*"], "@types/node"));
    assert!(m(&["@types/*"], "@types/node"));
    assert!(!m(&["@types/*"], "types"));
    assert!(m(&["a*b*c"], "abc"));
    assert!(m(&["a*b*c"], "axxbyyc"));
    assert!(!m(&["a*b*c"], "axxbyy"));
    assert!(m(&["is-*"], "is-"));
    assert!(!m(&["is-*"], "this-is-x"));
    assert!(m(&["react"], "react"));
    assert!(!m(&["react"], "react-dom"));
    assert!(!m(&["React"], "react"));
    // `.` and `+` are literal.
    assert!(!m(&["a.c"], "abc"));
    assert!(m(&["a+c"], "a+c"));
    assert!(m(&["react", "vue"], "vue"));
    // One exclusion alone: everything else.
    assert!(m(&["!react"], "vue"));
    assert!(!m(&["!react"], "react"));
    assert!(!m(&["!react", "!vue"], "vue"));
    assert!(m(&["!react", "!vue"], "svelte"));
    // Mixed: an exclusion only undoes what came before it.
    assert!(!m(&["eslint-*", "!eslint-plugin-*"], "eslint-plugin-x"));
    assert!(m(&["eslint-*", "!eslint-plugin-*"], "eslint-config-x"));
    assert!(m(&["!eslint-plugin-*", "eslint-*"], "eslint-plugin-x"));
    assert!(m(&["eslint-*", "!eslint-plugin-*", "eslint-plugin-y"], "eslint-plugin-y"));
    assert!(!m(&["!a", "!b", "c"], "d"));
    assert!(m(&["a\\*"], "a\\bc"));
    assert!(!m(&["a\\*"], "abc"));
  }

  #[test]
  fn js_object_key_order() {
    let map: IndexMap<&str, u8> =
      [("b", 1), ("10", 2), ("a", 3), ("2", 4), ("01", 5), ("4294967295", 6), ("0", 7)].into_iter().collect();
    let keys: Vec<_> = js_order(map, |v| v).into_keys().collect();
    assert_eq!(keys, ["0", "2", "10", "b", "a", "01", "4294967295"]);
  }

  #[test]
  fn root_dependencies_are_not_hoisted_but_their_dependencies_are() {
    let lf = lockfile(
      root(json!({ "a": "1.0.0", "c": "1.0.0" })),
      json!({
        "a@1.0.0": { "dependencies": { "b": "1.0.0", "c": "2.0.0" } },
        "b@1.0.0": {},
        "c@1.0.0": {},
        "c@2.0.0": {},
      }),
    );
    assert_eq!(run(&lf, &HoistOptions::default()), ["b -> b@1.0.0"]);
    assert_eq!(
      hoisted_dependencies(&run_with(&lf, &[], &HoistOptions::default())),
      [("b@1.0.0".to_string(), [("b".to_string(), "private")].into_iter().collect::<IndexMap<_, _>>())]
        .into_iter()
        .collect::<IndexMap<_, _>>()
    );
  }

  #[test]
  fn within_a_depth_the_first_slot_directory_wins() {
    // Importer order is z, y; the slots sort y before z.
    let lf = lockfile(
      root(json!({ "z": "1.0.0", "y": "1.0.0" })),
      json!({
        "z@1.0.0": { "dependencies": { "c": "1.0.0" } },
        "y@1.0.0": { "dependencies": { "c": "2.0.0" } },
        "c@1.0.0": {},
        "c@2.0.0": {},
      }),
    );
    assert_eq!(run(&lf, &HoistOptions::default()), ["c -> c@2.0.0"]);
  }

  #[test]
  fn packages_of_one_depth_order_by_slot_directory_not_dep_path() {
    // Dep paths: `a@1.0.0` < `a@1.0.0(p@1.0.0)` < `a@1.0.0-rc`. Directories:
    // `a@1.0.0-rc/` < `a@1.0.0/` < `a@1.0.0_p@1.0.0/` (`-` < `/` or `\` < `_`).
    let lf = lockfile(
      root(json!({ "b": "a@1.0.0", "e": "a@1.0.0(p@1.0.0)", "d": "a@1.0.0-rc" })),
      json!({
        "a@1.0.0(p@1.0.0)": { "dependencies": { "p": "1.0.0", "x": "1.0.0" } },
        "a@1.0.0": { "dependencies": { "x": "2.0.0" } },
        "a@1.0.0-rc": { "dependencies": { "x": "3.0.0" } },
        "p@1.0.0": {},
        "x@1.0.0": {},
        "x@2.0.0": {},
        "x@3.0.0": {},
      }),
    );
    assert_eq!(run(&lf, &HoistOptions::default()), ["x -> x@3.0.0", "p -> p@1.0.0"]);

    // The separator is the platform's: `/` sorts before digits, `\` after them.
    let lf = lockfile(
      root(json!({ "b": "a@1.0.1", "c": "a@1.0.10" })),
      json!({
        "a@1.0.1": { "dependencies": { "x": "1.0.0" } },
        "a@1.0.10": { "dependencies": { "x": "2.0.0" } },
        "x@1.0.0": {},
        "x@2.0.0": {},
      }),
    );
    let expected = if std::path::MAIN_SEPARATOR == '/' { "x -> x@1.0.0" } else { "x -> x@2.0.0" };
    assert_eq!(run(&lf, &HoistOptions::default()), [expected]);
  }

  #[test]
  fn shallower_wins_over_slot_order() {
    let lf = lockfile(
      root(json!({ "z": "1.0.0", "a": "1.0.0" })),
      json!({
        "z@1.0.0": { "dependencies": { "c": "1.0.0" } },
        "a@1.0.0": { "dependencies": { "b": "1.0.0" } },
        "b@1.0.0": { "dependencies": { "c": "2.0.0" } },
        "c@1.0.0": {},
        "c@2.0.0": {},
      }),
    );
    assert_eq!(run(&lf, &HoistOptions::default()), ["b -> b@1.0.0", "c -> c@1.0.0"]);
  }

  /// a→x→p→q→c@1 and b→y→{q, s→c@2}: which `c` wins depends on the depth of the walk.
  fn walk_graph() -> serde_json::Value {
    json!({
      "a@1.0.0": { "dependencies": { "x": "1.0.0" } },
      "b@1.0.0": { "dependencies": { "y": "1.0.0" } },
      "x@1.0.0": { "dependencies": { "p": "1.0.0" } },
      "p@1.0.0": { "dependencies": { "q": "1.0.0" } },
      "y@1.0.0": { "dependencies": { "q": "1.0.0", "s": "1.0.0" } },
      "q@1.0.0": { "dependencies": { "c": "1.0.0" } },
      "s@1.0.0": { "dependencies": { "c": "2.0.0" } },
      "c@1.0.0": {},
      "c@2.0.0": {},
    })
  }

  #[test]
  fn depth_is_the_one_of_pnpms_walk_not_breadth_first() {
    // q is 2 deep through b→y but the walk reaches it 3 deep through a→x→p first, so s
    // (2 deep) hoists its `c` before q does.
    let lf = lockfile(root(json!({ "a": "1.0.0", "b": "1.0.0" })), walk_graph());
    assert_eq!(
      run(&lf, &HoistOptions::default()),
      ["x -> x@1.0.0", "y -> y@1.0.0", "p -> p@1.0.0", "q -> q@1.0.0", "s -> s@1.0.0", "c -> c@2.0.0"]
    );
  }

  #[test]
  fn public_and_private_patterns() {
    let lf = lockfile(
      root(json!({ "a": "1.0.0" })),
      json!({
        "a@1.0.0": { "dependencies": { "eslint-x": "1.0.0", "b": "1.0.0", "c": "1.0.0" } },
        "eslint-x@1.0.0": {},
        "b@1.0.0": {},
        "c@1.0.0": {},
      }),
    );
    assert_eq!(
      run(&lf, &patterns(&["*"], &["eslint-*"])),
      ["public:eslint-x -> eslint-x@1.0.0", "b -> b@1.0.0", "c -> c@1.0.0"]
    );
    // shamefullyHoist: everything public.
    assert_eq!(
      run(&lf, &patterns(&["*"], &["*"])),
      ["public:eslint-x -> eslint-x@1.0.0", "public:b -> b@1.0.0", "public:c -> c@1.0.0"]
    );
    // Public needs no private pattern.
    assert_eq!(run(&lf, &patterns(&[], &["b"])), ["public:b -> b@1.0.0"]);
    assert_eq!(run(&lf, &patterns(&["*", "!b"], &[])), ["eslint-x -> eslint-x@1.0.0", "c -> c@1.0.0"]);
    assert_eq!(run(&lf, &patterns(&[], &[])), Vec::<String>::new());
    let m = hoisted_dependencies(&run_with(&lf, &[], &patterns(&["*"], &["eslint-*"])));
    assert_eq!(m["eslint-x@1.0.0"]["eslint-x"], "public");
    assert_eq!(m["b@1.0.0"]["b"], "private");
  }

  #[test]
  fn negation_excludes_an_alias_for_every_package() {
    let lf = lockfile(
      root(json!({ "a": "1.0.0", "z": "1.0.0" })),
      json!({
        "a@1.0.0": { "dependencies": { "cc": "1.0.0" } },
        "z@1.0.0": { "dependencies": { "c": "1.0.0", "cc": "2.0.0", "cd": "1.0.0" } },
        "c@1.0.0": {},
        "cc@1.0.0": {},
        "cc@2.0.0": {},
        "cd@1.0.0": {},
      }),
    );
    assert_eq!(run(&lf, &patterns(&["*", "!cc"], &[])), ["c -> c@1.0.0", "cd -> cd@1.0.0"]);
    assert_eq!(run(&lf, &patterns(&["c*", "!c?"], &[])), ["c -> c@1.0.0"]);
    assert_eq!(run(&lf, &patterns(&["!c*"], &[])), Vec::<String>::new());
    assert_eq!(
      run(&lf, &patterns(&["*"], &["!c"])),
      ["public:cc -> cc@1.0.0", "c -> c@1.0.0", "public:cd -> cd@1.0.0"]
    );
  }

  #[test]
  fn aliases_are_hoisted_under_the_alias_and_one_package_under_several() {
    let lf = lockfile(
      root(json!({ "a": "1.0.0" })),
      json!({
        "a@1.0.0": { "dependencies": { "strip": "1.0.0", "strip-cjs": "strip@1.0.0", "other": "strip@2.0.0" } },
        "strip@1.0.0": {},
        "strip@2.0.0": {},
      }),
    );
    let result = run_with(&lf, &[], &HoistOptions::default());
    assert_eq!(show(&result), ["strip -> strip@1.0.0", "strip-cjs -> strip@1.0.0", "other -> strip@2.0.0"]);
    let m = hoisted_dependencies(&result);
    assert_eq!(m.keys().collect::<Vec<_>>(), ["strip@1.0.0", "strip@2.0.0"]);
    assert_eq!(m["strip@1.0.0"].keys().collect::<Vec<_>>(), ["strip", "strip-cjs"]);
  }

  #[test]
  fn skipped_packages_are_neither_hoisted_nor_walked_and_free_their_alias() {
    let lf = lockfile(
      json!({ ".": {
        "dependencies": { "a": "1.0.0", "b": "1.0.0" },
        "optionalDependencies": { "o": "1.0.0" },
      } }),
      json!({
        "a@1.0.0": { "dependencies": { "s": "1.0.0" } },
        "s@1.0.0": { "optional": true, "dependencies": { "t": "1.0.0" } },
        "t@1.0.0": { "optional": true },
        "b@1.0.0": { "dependencies": { "s": "2.0.0", "o": "2.0.0" } },
        "s@2.0.0": {},
        "o@1.0.0": { "optional": true },
        "o@2.0.0": {},
      }),
    );
    assert_eq!(
      show(&run_with(&lf, &["s@1.0.0", "o@1.0.0"], &HoistOptions::default())),
      ["s -> s@2.0.0", "o -> o@2.0.0"]
    );
    assert_eq!(show(&run_with(&lf, &[], &HoistOptions::default())), ["s -> s@1.0.0", "t -> t@1.0.0"]);
  }

  #[test]
  fn links() {
    let lf = lockfile(
      json!({
        ".": { "dependencies": { "a": "1.0.0", "b": "link:packages/b" } },
        "packages/b": { "dependencies": { "c": "link:../c" } },
      }),
      json!({
        "a@1.0.0": { "dependencies": { "b": "1.0.0", "c": "1.0.0" } },
        "b@1.0.0": {},
        "c@1.0.0": {},
      }),
    );
    // The root's `link:` takes `b`; another importer's `link:` takes nothing.
    assert_eq!(run(&lf, &HoistOptions::default()), ["c -> c@1.0.0"]);
  }

  #[test]
  fn other_importers_direct_dependencies_are_hoisted() {
    let lf = lockfile(
      json!({
        ".": { "dependencies": { "a": "1.0.0" } },
        "packages/p": { "dependencies": { "a": "2.0.0", "b": "1.0.0" } },
        "packages/q": { "devDependencies": { "b": "2.0.0", "c": "1.0.0" } },
      }),
      json!({
        "a@1.0.0": { "dependencies": { "c": "2.0.0" } },
        "a@2.0.0": {},
        "b@1.0.0": {},
        "b@2.0.0": {},
        "c@1.0.0": {},
        "c@2.0.0": {},
      }),
    );
    assert_eq!(run(&lf, &patterns(&["*"], &["c"])), ["b -> b@1.0.0", "public:c -> c@1.0.0"]);
  }

  #[test]
  fn integer_like_aliases_come_first() {
    let lf = lockfile(
      root(json!({ "a": "1.0.0" })),
      json!({
        "a@1.0.0": { "dependencies": { "b": "1.0.0", "42": "x@1.0.0", "7": "x@1.0.0" } },
        "b@1.0.0": {},
        "x@1.0.0": {},
      }),
    );
    let result = run_with(&lf, &[], &HoistOptions::default());
    assert_eq!(show(&result), ["7 -> x@1.0.0", "42 -> x@1.0.0", "b -> b@1.0.0"]);
  }

  #[test]
  fn question_marks_stand_for_one_character() {
    let m = |p: &str, input: &str| Matcher::new(&[p.to_string()]).matches(input);
    assert!(m("d?bug", "debug"));
    assert!(!m("d?bug", "dbug"));
    assert!(!m("d?bug", "deebug"));
    assert!(m("?", "é"));
    assert!(m("?", "😀"));
    assert!(!m("?", "ab"));
    assert!(m("*-???es", "mime-types"));
    assert!(m("*", "a\nb"));
    assert!(m("a*", "a\nb"));
  }

  #[test]
  fn aliases_compare_in_lower_case() {
    let lf = lockfile(
      root(json!({ "a": "1.0.0", "Foo": "foo@1.0.0" })),
      json!({
        "a@1.0.0": { "dependencies": { "foo": "2.0.0", "Bar": "bar@1.0.0", "bar": "2.0.0" } },
        "foo@1.0.0": {},
        "foo@2.0.0": {},
        "bar@1.0.0": {},
        "bar@2.0.0": {},
      }),
    );
    // The root's `Foo` takes `foo`; `Bar` comes first and takes `bar`.
    assert_eq!(run(&lf, &HoistOptions::default()), ["Bar -> bar@1.0.0"]);
  }

  #[test]
  fn optional_dependencies_follow_include() {
    let lf = lockfile(
      json!({ ".": {
        "dependencies": { "a": "1.0.0" },
        "devDependencies": { "d": "1.0.0" },
        "optionalDependencies": { "o": "1.0.0" },
      } }),
      json!({
        "a@1.0.0": { "dependencies": { "b": "1.0.0" }, "optionalDependencies": { "p": "1.0.0" } },
        "b@1.0.0": {},
        "p@1.0.0": { "optional": true },
        "d@1.0.0": { "dependencies": { "e": "1.0.0" } },
        "e@1.0.0": {},
        "o@1.0.0": { "optional": true, "dependencies": { "q": "1.0.0" } },
        "q@1.0.0": { "optional": true },
      }),
    );
    let with = |dependencies, dev_dependencies, optional_dependencies| HoistOptions {
      include: Include { dependencies, dev_dependencies, optional_dependencies },
      ..HoistOptions::default()
    };
    // Depth 0 in slot order: a, d, o.
    assert_eq!(
      run(&lf, &with(true, true, true)),
      ["b -> b@1.0.0", "p -> p@1.0.0", "e -> e@1.0.0", "q -> q@1.0.0"]
    );
    assert_eq!(run(&lf, &with(true, true, false)), ["b -> b@1.0.0", "e -> e@1.0.0"]);
    // An importer's optional dependencies come only with its dependencies.
    assert_eq!(run(&lf, &with(false, true, true)), ["e -> e@1.0.0"]);
    assert_eq!(run(&lf, &with(true, false, true)), ["b -> b@1.0.0", "p -> p@1.0.0", "q -> q@1.0.0"]);
  }

  #[test]
  fn importer_groups_merge_dev_first() {
    // The graph of `depth_is_the_one_of_pnpms_walk_not_breadth_first`, with `b` a dev
    // dependency: the walk starts with it, so q is 2 deep and hoists its `c` first.
    let lf = lockfile(
      json!({ ".": { "dependencies": { "a": "1.0.0" }, "devDependencies": { "b": "1.0.0" } } }),
      walk_graph(),
    );
    assert_eq!(
      run(&lf, &HoistOptions::default()),
      ["x -> x@1.0.0", "y -> y@1.0.0", "p -> p@1.0.0", "q -> q@1.0.0", "s -> s@1.0.0", "c -> c@1.0.0"]
    );
  }

  #[test]
  fn root_dependencies_are_hoisted_privately_when_the_private_directory_is_elsewhere() {
    let lf = lockfile(
      json!({
        ".": { "dependencies": { "a": "1.0.0", "l": "link:packages/l", "x": "1.0.0", "pub": "1.0.0" } },
        "packages/l": { "dependencies": { "a": "2.0.0", "q": "1.0.0" } },
      }),
      json!({
        "a@1.0.0": { "dependencies": { "b": "1.0.0", "x": "2.0.0" } },
        "a@2.0.0": {},
        "b@1.0.0": {},
        "x@1.0.0": {},
        "x@2.0.0": {},
        "pub@1.0.0": {},
        "q@1.0.0": {},
      }),
    );
    let options = HoistOptions { private_dir_outside_project: true, ..patterns(&["*", "!x"], &["p*", "q"]) };
    // `a` and `pub` are the root's and private, whatever the public pattern says; `x` is
    // not matched, so it stays the root's own; `l` is a link.
    assert_eq!(
      run(&lf, &options),
      ["a -> a@1.0.0", "pub -> pub@1.0.0", "public:q -> q@1.0.0", "b -> b@1.0.0"]
    );
    assert_eq!(run(&lf, &patterns(&["*", "!x"], &["p*", "q"])), ["public:q -> q@1.0.0", "b -> b@1.0.0"]);
  }

  #[test]
  fn workspace_packages_take_their_names() {
    let lf = lockfile(
      json!({
        ".": { "dependencies": { "a": "1.0.0" } },
        "packages/p": { "dependencies": { "q": "link:../q", "x": "1.0.0" } },
        "packages/q": {},
        "packages/r": { "dependencies": { "r-dep": "x@1.0.0" } },
      }),
      json!({
        "a@1.0.0": { "dependencies": { "q": "1.0.0", "y": "1.0.0" } },
        "q@1.0.0": {},
        "x@1.0.0": {},
        "y@1.0.0": {},
      }),
    );
    let options = HoistOptions {
      workspace_packages: vec![
        ("packages/p".into(), "p".into()),
        ("packages/q".into(), "Q".into()),
        ("packages/r".into(), "r-dep".into()),
        ("packages/s".into(), "a".into()),
        ("packages/t".into(), "y".into()),
        ("packages/u".into(), "u".into()),
      ],
      ..patterns(&["*", "!u"], &["p"])
    };
    // `r-dep` and `a` are direct dependencies' names; `u` matches no pattern. `Q` and `y`
    // keep the packages `q` and `y` from being hoisted.
    assert_eq!(
      show(&run_with(&lf, &[], &options)),
      [
        "x -> x@1.0.0",
        "r-dep -> x@1.0.0",
        "public:p -> project packages/p",
        "Q -> project packages/q",
        "y -> project packages/t",
      ]
    );
    let m = hoisted_dependencies(&run_with(&lf, &[], &options));
    assert_eq!(m.keys().collect::<Vec<_>>(), ["x@1.0.0", "packages/p", "packages/q", "packages/t"]);
    assert_eq!(m["x@1.0.0"].keys().collect::<Vec<_>>(), ["x", "r-dep"]);
    assert_eq!(m["packages/p"]["p"], "public");
  }

  #[test]
  fn workspace_names_may_not_nest_with_hoisted_aliases() {
    let lf = lockfile(
      root(json!({ "a": "1.0.0", "@r/x": "1.0.0" })),
      json!({
        "a@1.0.0": { "dependencies": { "@s/b": "1.0.0", "@t/c": "1.0.0", "k": "1.0.0" } },
        "@s/b@1.0.0": {},
        "@t/c@1.0.0": {},
        "@r/x@1.0.0": {},
        "k@1.0.0": {},
      }),
    );
    let project = |id: &str, name: &str| (id.to_string(), name.to_string());
    let options = HoistOptions {
      workspace_packages: vec![
        project("p1", "@s"),  // an ancestor of the hoisted `@s/b`
        project("p2", "@t"),  // `@t/c` is hoisted publicly: no conflict privately
        project("p3", "k/v"), // inside the hoisted `k`
        project("p4", "@r"),  // an ancestor of the root's `@r/x` (public, for pnpm)
        project("p5", "@w"),  // nests with p6
        project("p6", "@w/z"),
        project("p7", "@s/b"), // the same name: it takes the alias
      ],
      ..patterns(&["*"], &["@t/*", "@r"])
    };
    let result = run_with(&lf, &[], &options);
    assert_eq!(
      show(&result),
      ["public:@t/c -> @t/c@1.0.0", "k -> k@1.0.0", "@t -> project p2", "@s/b -> project p7"]
    );
  }

  #[test]
  fn workspace_packages_are_hoisted_without_any_package() {
    let lf = lockfile(
      json!({ ".": { "optionalDependencies": { "o": "1.0.0" } } }),
      json!({ "o@1.0.0": { "optional": true } }),
    );
    let options = HoistOptions {
      workspace_packages: vec![("packages/p".into(), "p".into()), ("packages/o".into(), "o".into())],
      ..HoistOptions::default()
    };
    assert_eq!(
      show(&run_with(&lf, &["o@1.0.0"], &options)),
      ["p -> project packages/p", "o -> project packages/o"]
    );
    assert_eq!(show(&run_with(&lf, &[], &options)), ["p -> project packages/p"]);
  }

  #[test]
  fn only_selected_importers_count_but_all_take_workspace_names() {
    let lf = lockfile(
      json!({
        ".": { "dependencies": { "a": "1.0.0" } },
        "packages/p": { "dependencies": { "b": "1.0.0" } },
      }),
      json!({ "a@1.0.0": {}, "b@1.0.0": {} }),
    );
    let options = HoistOptions {
      workspace_packages: vec![("packages/q".into(), "b".into()), ("packages/r".into(), "r".into())],
      ..HoistOptions::default()
    };
    let result = hoist(&lf, &[".".to_string()], &HashSet::new(), &options);
    assert_eq!(show(&result), ["r -> project packages/r"]);
    let result = hoist(&lf, &["packages/p".to_string()], &HashSet::new(), &options);
    assert_eq!(show(&result), ["b -> b@1.0.0", "r -> project packages/r"]);
  }

  /// What pnpm 11 wrote for a lockfile with some settings, under `hoist/<name>.json`.
  fn matches_pnpm(lockfile: &Lockfile, options: &HoistOptions, name: &str, expected: &str) {
    let result = hoist(lockfile, &all_importers(lockfile), &HashSet::new(), options);
    let ours = serde_json::to_string_pretty(&hoisted_dependencies(&result)).unwrap();
    let expected: IndexMap<String, IndexMap<String, String>> = serde_json::from_str(expected).unwrap();
    let expected = serde_json::to_string_pretty(&expected).unwrap();
    // Compared as text: the order matters as much as the content.
    if ours != expected {
      let (ours, expected): (Vec<_>, Vec<_>) = (ours.lines().collect(), expected.lines().collect());
      let at = ours.iter().zip(&expected).position(|(a, b)| a != b).unwrap_or(ours.len().min(expected.len()));
      panic!(
        "{name}: {} lines, pnpm {}; first difference at line {at}: ours {:?}, pnpm {:?}",
        ours.len(),
        expected.len(),
        ours.get(at),
        expected.get(at)
      );
    }
  }

  /// A fixture of the benchmarks (`bench/fixtures` in the repository).
  fn bench_fixture(name: &str) -> Option<Lockfile> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
      .join("../../bench/fixtures")
      .join(name)
      .join("pnpm-lock.yaml");
    if !path.exists() {
      eprintln!("skipped: {} does not exist", path.display());
      return None;
    }
    Some(read_lockfile(LockfileSource::Path(path)).unwrap().0)
  }

  fn strings(patterns: &[&str]) -> Vec<String> {
    patterns.iter().map(|s| s.to_string()).collect()
  }

  #[test]
  fn alotta_matches_pnpm_11() {
    let Some(lf) = bench_fixture("alotta") else { return };
    matches_pnpm(&lf, &HoistOptions::default(), "alotta", include_str!("hoist/alotta.json"));
    let options = HoistOptions {
      hoist_pattern: strings(&["*", "!*-loader", "!@babel/*", "@babel/core"]),
      public_hoist_pattern: strings(&["*eslint*", "!eslint-scope", "@types/*"]),
      ..HoistOptions::default()
    };
    matches_pnpm(&lf, &options, "alotta-mixed", include_str!("hoist/alotta-mixed.json"));
  }

  #[test]
  fn small_matches_pnpm_11() {
    let Some(lf) = bench_fixture("small") else { return };
    matches_pnpm(&lf, &HoistOptions::default(), "small", include_str!("hoist/small.json"));
    let shamefully = patterns(&["*"], &["*"]);
    matches_pnpm(&lf, &shamefully, "small-shamefully", include_str!("hoist/small-shamefully.json"));
    let mixed = patterns(&["*", "!debug", "!m*"], &["*-*", "!has-*", "mime"]);
    matches_pnpm(&lf, &mixed, "small-mixed", include_str!("hoist/small-mixed.json"));
    let qmark = patterns(&["*", "!?s", "!*-???es"], &["d?bug", "?", "s*-?*"]);
    matches_pnpm(&lf, &qmark, "small-qmark", include_str!("hoist/small-qmark.json"));
    // `virtualStoreDir: ../vstore`.
    let outside = HoistOptions {
      private_dir_outside_project: true,
      ..patterns(&["*", "!lodash"], &["express", "ms", "debug"])
    };
    matches_pnpm(&lf, &outside, "small-outside", include_str!("hoist/small-outside.json"));
  }

  #[test]
  fn workspace_matches_pnpm_11() {
    // A root with `Chalk: npm:chalk@4.1.2`, `ms`, a `link:` and a dev `lodash`; projects
    // `p` (express, `debug: workspace:*`), `debug` and `supports-color` (chalk).
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/hoist/ws-pnpm-lock.yaml");
    let lf = read_lockfile(LockfileSource::Path(path)).unwrap().0;
    let projects = vec![
      ("packages/p".to_string(), "p".to_string()),
      ("packages/q".to_string(), "debug".to_string()),
      ("packages/r".to_string(), "supports-color".to_string()),
    ];
    let options = HoistOptions { workspace_packages: projects.clone(), ..HoistOptions::default() };
    matches_pnpm(&lf, &options, "ws", include_str!("hoist/ws.json"));
    let public = HoistOptions { workspace_packages: projects.clone(), ..patterns(&["*"], &["*"]) };
    matches_pnpm(&lf, &public, "ws-public", include_str!("hoist/ws-public.json"));
    let prod = HoistOptions {
      workspace_packages: projects.clone(),
      include: Include { dev_dependencies: false, ..Include::default() },
      ..patterns(&["*"], &["d*", "p"])
    };
    matches_pnpm(&lf, &prod, "ws-prod", include_str!("hoist/ws-prod.json"));
    matches_pnpm(
      &lf,
      &HoistOptions::default(),
      "ws-no-workspace-packages",
      include_str!("hoist/ws-no-workspace-packages.json"),
    );
  }
}
