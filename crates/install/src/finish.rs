//! The end of an install, once every package is in place: stale slots and links removed,
//! importers linked, hoisting, and the state files that say `node_modules` is complete.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use pacquet_link::symlink_dir;
use rayon::prelude::*;

use crate::error::InstallError;
use crate::options::Include;
use crate::plan::{Plan, SlotPlan};
use crate::prepare::{Settings, WantedLockfile};
use crate::state;

/// Removes what the previous install had and this lockfile no longer wants. An importer that
/// left the lockfile (a project no longer in the workspace) loses what the install made in its
/// `node_modules`: the links (among `links`) and the bin shims; its `node_modules` goes too
/// unless something else is in it.
pub(crate) fn remove_stale(slots: &[PathBuf], links: &[PathBuf], removed_importers: &[PathBuf]) {
  slots.par_iter().for_each(|dir| {
    let _ = std::fs::remove_dir_all(dir);
  });
  for link in links {
    if std::fs::symlink_metadata(link).is_ok_and(|m| m.file_type().is_symlink()) {
      let _ = std::fs::remove_file(link);
    }
  }
  for modules_dir in removed_importers {
    let _ = std::fs::remove_dir_all(modules_dir.join(".bin"));
    let Ok(entries) = std::fs::read_dir(modules_dir) else { continue };
    for entry in entries.flatten() {
      // Scope directories emptied by the link removal; a non-empty one fails and stays.
      if entry.file_name().to_string_lossy().starts_with('@') {
        let _ = std::fs::remove_dir(entry.path());
      }
    }
    let _ = std::fs::remove_dir(modules_dir);
  }
}

/// What `.modules.yaml` says of builds.
pub(crate) struct Builds {
  pub(crate) pending: Vec<String>,
  /// Written only when pnpm would have run a build step (scripts not ignored, something to build).
  pub(crate) ignored: Option<Vec<String>>,
}

impl Builds {
  /// As pnpm records them: with scripts ignored, every package that needs a build is
  /// pending (and stays so until it runs); otherwise the ones the build policy neither
  /// allows nor forbids are "ignored" (blocked until approved); ignored builds of the previous
  /// install stay so while their package is in the lockfile and not forbidden, as in pnpm
  /// (`needs` lists only the packages imported by this install).
  pub(crate) fn new(
    settings: &Settings,
    wanted: &WantedLockfile,
    needs: &[String],
    previous_pending: Vec<String>,
    previous_ignored: Vec<String>,
  ) -> Builds {
    if settings.ignore_scripts {
      let mut pending: Vec<String> = previous_pending
        .into_iter()
        .filter(|p| wanted.lockfile.snapshots.contains_key(p) || wanted.lockfile.importers.contains_key(p))
        .collect();
      // Projects with install scripts of their own come first, as pnpm lists them.
      for id in wanted.lockfile.importers.keys() {
        let manifest = std::fs::read(settings.lockfile_dir.join(id).join("package.json"))
          .ok()
          .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
        let scripts = manifest.as_ref().and_then(|m| m.get("scripts"));
        let has_install_script = ["preinstall", "prepublish", "install", "postinstall", "prepare"]
          .iter()
          .any(|s| scripts.and_then(|v| v.get(s)).is_some_and(|v| v.as_str().is_some_and(|v| !v.is_empty())));
        if has_install_script && !pending.contains(id) {
          pending.push(id.clone());
        }
      }
      for dep_path in needs {
        if !pending.contains(dep_path) {
          pending.push(dep_path.clone());
        }
      }
      Builds { pending, ignored: None }
    } else {
      let still_ignored: Vec<String> = previous_ignored
        .into_iter()
        .filter(|d| {
          let in_lockfile = wanted.lockfile.snapshots.contains_key(d)
            || wanted.lockfile.packages.contains_key(pacquet_lockfile::remove_peer_suffix(d));
          in_lockfile && settings.build_policy.verdict(d) != Some(false)
        })
        .collect();
      if needs.is_empty() && still_ignored.is_empty() {
        return Builds { pending: vec![], ignored: None };
      }
      let mut ignored: Vec<String> = needs
        .iter()
        .filter(|d| settings.build_policy.verdict(d).is_none())
        .cloned()
        .chain(still_ignored)
        .collect();
      ignored.sort();
      ignored.dedup();
      Builds { pending: vec![], ignored: Some(ignored) }
    }
  }
}

/// pnpm's hoisting: links in `<virtualStoreDir>/node_modules` (private) and the root
/// `node_modules` (public); links the previous install hoisted and this one does not are removed.
pub(crate) fn hoist_and_link(
  settings: &Settings,
  wanted: &WantedLockfile,
  plan: &Plan,
  skipped: &[String],
  previous: Option<crate::state::HoistedDependencies>,
) -> Result<crate::hoist::HoistResult, InstallError> {
  use crate::hoist::{hoist, HoistOptions, HoistResult};
  let private_dir = settings.virtual_store_dir.join("node_modules");
  let public_dir = &settings.modules_dir;
  let mut wanted_links: HashSet<PathBuf> = HashSet::new();
  let result = if settings.hoist_pattern.is_empty() && settings.public_hoist_pattern.is_empty() {
    HoistResult::default()
  } else {
    let installed: HashSet<&str> = plan.slots.iter().map(|s| s.dep_path.as_str()).collect();
    let mut not_installed: HashSet<String> = skipped.iter().cloned().collect();
    not_installed
      .extend(wanted.lockfile.snapshots.keys().filter(|k| !installed.contains(k.as_str())).cloned());
    let importer_ids: Vec<String> = wanted.lockfile.importers.keys().cloned().collect();
    let workspace_packages = importer_ids
      .iter()
      .filter(|id| id.as_str() != ".")
      .filter_map(|id| {
        let manifest = std::fs::read(settings.lockfile_dir.join(id).join("package.json")).ok()?;
        let name =
          serde_json::from_slice::<serde_json::Value>(&manifest).ok()?.get("name")?.as_str()?.to_string();
        Some((id.clone(), name))
      })
      .collect();
    let options = HoistOptions {
      hoist_pattern: settings.hoist_pattern.clone(),
      public_hoist_pattern: settings.public_hoist_pattern.clone(),
      include: settings.include,
      virtual_store_dir_max_length: settings.max_length,
      workspace_packages,
      private_dir_outside_project: !settings.virtual_store_dir.starts_with(&settings.lockfile_dir),
    };
    let result = hoist(&wanted.lockfile, &importer_ids, &not_installed, &options);
    let pkg_dirs: std::collections::HashMap<&str, &Path> =
      plan.slots.iter().map(|s| (s.dep_path.as_str(), s.pkg_dir.as_path())).collect();
    let mut links: Vec<(PathBuf, PathBuf)> = Vec::new();
    for h in &result.dependencies {
      if let Some(target) = pkg_dirs.get(h.dep_path.as_str()) {
        let dir = if h.public { public_dir } else { &private_dir };
        links.push((dir.join(&h.alias), target.to_path_buf()));
      }
    }
    for p in &result.projects {
      let dir = if p.public { public_dir } else { &private_dir };
      links.push((dir.join(&p.alias), crate::plan::normalize(&settings.lockfile_dir.join(&p.importer_id))));
    }
    // One at a time: nearly all go into one directory, whose entries the kernel makes one at
    // a time anyway (a second thread only spun on its lock). The slots' `.bin`s are made on
    // the other threads meanwhile (see `BinLinks::link`).
    links.iter().try_for_each(|(link, target)| symlink_dir(target, link))?;
    wanted_links.extend(links.into_iter().map(|(l, _)| l));
    result
  };
  for (_, aliases) in previous.unwrap_or_default() {
    for (alias, kind) in aliases {
      let link = if kind == "public" { public_dir.join(&alias) } else { private_dir.join(&alias) };
      if !wanted_links.contains(&link)
        && std::fs::symlink_metadata(&link).is_ok_and(|m| m.file_type().is_symlink())
      {
        let _ = std::fs::remove_file(&link);
      }
    }
  }
  Ok(result)
}

/// `.modules.yaml`, `lock.yaml` and the repeat-install proof, written last: they claim that
/// `node_modules` is complete.
pub(crate) fn write_state(
  settings: &Settings,
  wanted: &WantedLockfile,
  plan: &Plan,
  content: state::ModulesContent,
  repeat: Option<(String, String)>,
) -> Result<(), InstallError> {
  let fs_err = |path: &Path| {
    let path = path.to_path_buf();
    move |source| InstallError::Fs { path, source }
  };
  let lock_yaml = settings.virtual_store_dir.join(state::CURRENT_LOCKFILE);
  let everything = settings.include == Include::default();
  // pnpm's current lockfile is the wanted one filtered to what was installed; with
  // everything included that is the same document.
  let current = match &wanted.text {
    Some(text) if everything => Some(text.clone()),
    Some(text) => {
      let installed: HashSet<String> = plan
        .slots
        .iter()
        .map(|s| s.dep_path.clone())
        .chain(plan.skipped.iter().map(|s| s.dep_path.clone()))
        .collect();
      crate::current_lockfile::filter(text, settings.include, &installed)
    }
    None => None,
  };
  match current {
    Some(text) => {
      std::fs::create_dir_all(&settings.virtual_store_dir).map_err(fs_err(&settings.virtual_store_dir))?;
      state::write_atomic(&lock_yaml, text.as_bytes()).map_err(fs_err(&lock_yaml))?;
    }
    // Without it, the next install compares nothing and checks every slot: slower, never wrong.
    None => {
      let _ = std::fs::remove_file(&lock_yaml);
    }
  }
  state::write_modules_manifest(&settings.layout(), content).map_err(fs_err(&settings.modules_dir))?;
  if let Some((hash, key)) = repeat {
    let proof = crate::prepare::repeat_state(plan, hash, key);
    let bytes = serde_json::to_vec(&proof).map_err(|e| InstallError::Internal(e.to_string()))?;
    let path = state::repeat_state_path(&settings.modules_dir);
    state::write_atomic(&path, &bytes).map_err(fs_err(&path))?;
  }
  Ok(())
}

/// Removes what an unfetchable optional package left: its partial slot, and the links other
/// slots made to it (they were made in parallel with its download).
pub(crate) fn forget_failed(
  failed: &[SlotPlan],
  gone: &std::collections::HashSet<PathBuf>,
  slot_links: &[(PathBuf, Vec<(String, PathBuf)>)],
) {
  for slot in failed {
    let _ = std::fs::remove_dir_all(&slot.slot_dir);
  }
  for (modules, links) in slot_links {
    for (alias, target) in links {
      if gone.contains(target) {
        let _ = std::fs::remove_file(modules.join(alias));
      }
    }
  }
}

pub(crate) fn link_importers(importers: &[crate::plan::ImporterPlan]) -> Result<(), InstallError> {
  importers.par_iter().try_for_each(|importer| {
    std::fs::create_dir_all(&importer.modules_dir)
      .map_err(|source| InstallError::Fs { path: importer.modules_dir.clone(), source })?;
    importer.links.par_iter().try_for_each(|(alias, target)| {
      symlink_dir(target, &importer.modules_dir.join(alias))?;
      Ok(())
    })
  })
}
