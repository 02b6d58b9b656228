//! From a lockfile to the list of things to do: which snapshots to install, where each
//! goes, where it comes from, and which links to make. Pure: no I/O.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Component, Path, PathBuf};

use pacquet_fetch::Registries;
use pacquet_lockfile::{
  dep_path_to_filename, is_platform_compatible, parse_pkg_key, ref_to_dep_path, remove_peer_suffix,
  DependencyRef, Host, Lockfile, Resolution, SupportedArchitectures,
};

use crate::error::InstallError;
use crate::options::Include;

/// Where a package's files come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
  /// A tarball over HTTP.
  Remote { url: String, integrity: Option<String> },
  /// A tarball on disk (`file:x.tgz`).
  LocalTarball { path: PathBuf, integrity: Option<String> },
  /// A directory on disk (`file:../pkg`): its files are imported as they are.
  Directory { path: PathBuf },
}

#[derive(Debug, Clone)]
pub struct SlotPlan {
  pub dep_path: String,
  pub name: String,
  pub version: String,
  pub source: Source,
  /// The `index.db` key, when the package is stored by integrity.
  pub index_key: Option<String>,
  pub slot_dir: PathBuf,
  /// `<slot>/node_modules/<name>`: where the files go.
  pub pkg_dir: PathBuf,
  /// `<slot>/node_modules/<alias>` → absolute target directory.
  pub links: Vec<(String, PathBuf)>,
  pub optional: bool,
}

#[derive(Debug, Clone)]
pub struct SkippedPlan {
  pub dep_path: String,
  pub name: String,
  pub version: String,
  pub details: String,
}

#[derive(Debug, Clone)]
pub struct ImporterPlan {
  pub modules_dir: PathBuf,
  /// `node_modules/<alias>` → absolute target directory.
  pub links: Vec<(String, PathBuf)>,
}

#[derive(Debug)]
pub struct Plan {
  pub slots: Vec<SlotPlan>,
  pub skipped: Vec<SkippedPlan>,
  pub importers: Vec<ImporterPlan>,
  /// Packages installed although their `os`/`cpu`/`libc` exclude this machine (not optional).
  pub warnings: Vec<String>,
}

pub struct PlanInput<'a> {
  pub lockfile: &'a Lockfile,
  pub lockfile_dir: &'a Path,
  pub virtual_store_dir: &'a Path,
  pub registries: &'a Registries,
  pub include: Include,
  pub host: &'a Host,
  pub supported: &'a SupportedArchitectures,
  pub max_length: usize,
}

pub fn plan(input: &PlanInput<'_>) -> Result<Plan, InstallError> {
  let lockfile = input.lockfile;
  let mut skipped = Vec::new();
  let mut warnings = Vec::new();
  let mut excluded: HashSet<&str> = HashSet::new();
  for (dep_path, snapshot) in &lockfile.snapshots {
    let pkg_key = remove_peer_suffix(dep_path);
    let Some(package) = lockfile.packages.get(pkg_key) else {
      continue;
    };
    if snapshot.optional && !input.include.optional_dependencies {
      excluded.insert(dep_path);
      continue;
    }
    if let Some(reason) = is_platform_compatible(
      package.os.as_deref(),
      package.cpu.as_deref(),
      package.libc.as_deref(),
      input.host,
      input.supported,
    ) {
      if snapshot.optional {
        excluded.insert(dep_path);
        let (name, version) = name_version(pkg_key);
        skipped.push(SkippedPlan { dep_path: dep_path.clone(), name, version, details: reason });
      } else {
        warnings.push(format!("{pkg_key} is not meant for this platform ({reason}); installing it anyway"));
      }
    }
  }

  // What the selected importer dependencies reach, without passing through excluded nodes.
  let mut importers = Vec::new();
  let mut queue: VecDeque<String> = VecDeque::new();
  for (id, importer) in &lockfile.importers {
    let importer_dir = normalize(&input.lockfile_dir.join(id));
    let mut wanted = Vec::new();
    if input.include.dependencies {
      wanted.extend(&importer.dependencies);
    }
    if input.include.dev_dependencies {
      wanted.extend(&importer.dev_dependencies);
    }
    // pnpm links optionalDependencies only together with dependencies (`--prod`), not alone.
    if input.include.optional_dependencies && input.include.dependencies {
      wanted.extend(&importer.optional_dependencies);
    }
    let mut links = Vec::new();
    for (alias, dep) in wanted {
      match ref_to_dep_path(&dep.version, alias) {
        DependencyRef::Link(path) => links.push((alias.clone(), normalize(&importer_dir.join(path)))),
        DependencyRef::Snapshot(dep_path) => {
          if excluded.contains(dep_path.as_str()) {
            continue;
          }
          links.push((alias.clone(), pkg_dir(input, &dep_path)));
          queue.push_back(dep_path);
        }
      }
    }
    importers.push(ImporterPlan { modules_dir: importer_dir.join("node_modules"), links });
  }
  let mut reached: HashSet<String> = HashSet::new();
  let mut order = Vec::new();
  while let Some(dep_path) = queue.pop_front() {
    if !reached.insert(dep_path.clone()) {
      continue;
    }
    order.push(dep_path.clone());
    if let Some(snapshot) = lockfile.snapshots.get(&dep_path) {
      for (alias, reference) in snapshot.dependencies.iter().chain(&snapshot.optional_dependencies) {
        if let DependencyRef::Snapshot(child) = ref_to_dep_path(reference, alias) {
          if !excluded.contains(child.as_str()) && !reached.contains(&child) {
            queue.push_back(child);
          }
        }
      }
    }
  }

  let mut slots = Vec::with_capacity(order.len());
  let mut slot_names: HashMap<PathBuf, String> = HashMap::new();
  for dep_path in order {
    let snapshot = &lockfile.snapshots[&dep_path];
    let pkg_key = remove_peer_suffix(&dep_path);
    let package = &lockfile.packages[pkg_key];
    let (name, version) = name_version(pkg_key);
    let resolution = package
      .resolution
      .classify()
      .ok_or_else(|| InstallError::UnsupportedResolution { package: pkg_key.to_string(), kind: "unknown" })?;
    // The store's package id: `name@version`, or the bare reference for URLs and paths.
    let pkg_id = if version.contains(':') { version.clone() } else { pkg_key.to_string() };
    // A bad SRI string is a broken lockfile: found here, before anything is written.
    let sri = match &resolution {
      Resolution::Registry { integrity } => Some(integrity),
      Resolution::Tarball { integrity, .. } => integrity.as_ref(),
      _ => None,
    };
    if let Some(sri) = sri.filter(|sri| pacquet_fetch::Integrity::parse(sri).is_none()) {
      return Err(InstallError::Fetch(pacquet_fetch::FetchError::InvalidIntegrity {
        integrity: sri.clone(),
        package: pkg_key.to_string(),
      }));
    }
    let (source, integrity) = match resolution {
      Resolution::Registry { integrity } => (
        Source::Remote {
          url: input.registries.tarball_url(&name, &version),
          integrity: Some(integrity.clone()),
        },
        Some(integrity),
      ),
      Resolution::Tarball { url, integrity, .. } => {
        if let Some(path) = url.strip_prefix("file:") {
          let path = normalize(&input.lockfile_dir.join(path));
          (Source::LocalTarball { path, integrity: integrity.clone() }, integrity)
        } else {
          (Source::Remote { url, integrity: integrity.clone() }, integrity)
        }
      }
      Resolution::Directory { directory } => {
        (Source::Directory { path: normalize(&input.lockfile_dir.join(directory)) }, None)
      }
      Resolution::Git { .. } => {
        return Err(InstallError::UnsupportedResolution { package: pkg_key.to_string(), kind: "git" })
      }
    };
    let slot_dir = input.virtual_store_dir.join(dep_path_to_filename(&dep_path, input.max_length));
    // Two snapshots must never share a slot (a hostile key could try to alias another).
    if let Some(other) = slot_names.insert(slot_dir.clone(), dep_path.clone()) {
      return Err(InstallError::Lockfile(pacquet_lockfile::LockfileError::Broken {
        location: format!("snapshots['{dep_path}']"),
        message: format!("its virtual store directory collides with snapshots['{other}']"),
      }));
    }
    let pkg_dir = slot_dir.join("node_modules").join(&name);
    let mut links = Vec::new();
    for (alias, reference) in snapshot.dependencies.iter().chain(&snapshot.optional_dependencies) {
      // pnpm never links a dependency under the package's own name: that place is the
      // package itself.
      if alias == &name {
        continue;
      }
      match ref_to_dep_path(reference, alias) {
        DependencyRef::Snapshot(child) => {
          if excluded.contains(child.as_str()) {
            continue;
          }
          links.push((alias.clone(), self::pkg_dir(input, &child)));
        }
        DependencyRef::Link(path) => links.push((alias.clone(), normalize(&input.lockfile_dir.join(path)))),
      }
    }
    slots.push(SlotPlan {
      index_key: integrity.map(|i| pacquet_store::index_key(&i, &pkg_id)),
      dep_path,
      name,
      version,
      source,
      slot_dir,
      pkg_dir,
      links,
      optional: snapshot.optional,
    });
  }
  Ok(Plan { slots, skipped, importers, warnings })
}

fn pkg_dir(input: &PlanInput<'_>, dep_path: &str) -> PathBuf {
  let name = parse_pkg_key(remove_peer_suffix(dep_path)).map(|k| k.name).unwrap_or(dep_path);
  input
    .virtual_store_dir
    .join(dep_path_to_filename(dep_path, input.max_length))
    .join("node_modules")
    .join(name)
}

fn name_version(pkg_key: &str) -> (String, String) {
  match parse_pkg_key(pkg_key) {
    Some(k) => (k.name.to_string(), k.version.to_string()),
    None => (pkg_key.to_string(), String::new()),
  }
}

/// Resolves `.` and `..` lexically (the targets may not exist yet).
pub fn normalize(path: &Path) -> PathBuf {
  let mut out = PathBuf::new();
  for c in path.components() {
    match c {
      Component::CurDir => {}
      Component::ParentDir => {
        out.pop();
      }
      other => out.push(other.as_os_str()),
    }
  }
  out
}
