//! Which `.bin` directories an install fills, and with which commands, as pnpm does it
//! (the shims themselves are `bins.rs`): each imported slot gets its dependencies'
//! commands, the private hoisting directory its packages', and each importer its direct
//! dependencies' (plus their auto-installed peers' and the publicly hoisted packages').

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use dashmap::DashMap;
use pacquet_lockfile::{remove_peer_suffix, Lockfile};
use rayon::prelude::*;

use crate::bins::{self, Command, LinkOptions, PackageBins};
use crate::error::InstallError;
use crate::hoist::HoistResult;
use crate::plan::Plan;
use crate::prepare::Settings;

pub struct BinLinks<'a> {
  pub lockfile: &'a Lockfile,
  pub plan: &'a Plan,
  pub settings: &'a Settings,
  /// Slots imported by this install (others kept their `.bin` from before).
  pub changed: &'a HashSet<String>,
}

/// What both halves of [`BinLinks::link`] use.
struct Shared<'a> {
  manifests: Manifests,
  options: LinkOptions,
  /// Each slot's package directory → its dep path.
  dep_path_of: HashMap<&'a Path, &'a str>,
}

/// Manifests read from disk once per package directory.
#[derive(Default)]
struct Manifests(DashMap<PathBuf, Option<Arc<PackageBins>>>);

impl Manifests {
  fn bins(&self, pkg_dir: &Path) -> Option<Arc<PackageBins>> {
    if let Some(b) = self.0.get(pkg_dir) {
      return b.clone();
    }
    let bins = std::fs::read(pkg_dir.join("package.json"))
      .ok()
      .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
      .map(|m| Arc::new(PackageBins::from_manifest_on_disk(&m, pkg_dir)))
      .filter(|b| !b.is_empty());
    self.0.insert(pkg_dir.to_path_buf(), bins.clone());
    bins
  }

  fn manifest(pkg_dir: &Path) -> Option<serde_json::Value> {
    serde_json::from_slice(&std::fs::read(pkg_dir.join("package.json")).ok()?).ok()
  }
}

impl BinLinks<'_> {
  fn has_bin(&self, dep_path: &str) -> bool {
    self.lockfile.packages.get(remove_peer_suffix(dep_path)).and_then(|p| p.has_bin).unwrap_or(false)
  }

  /// Links every `.bin` and returns the hoisting and pnpm's warnings for commands it could
  /// not link. `hoist` makes the hoisted links: the slots' `.bin`s do not go through them and
  /// are made meanwhile, the hoisted and importers' ones after it.
  pub fn link<H>(&self, hoist: H) -> Result<(HoistResult, Vec<String>), InstallError>
  where
    H: FnOnce() -> Result<HoistResult, InstallError> + Send,
  {
    let shared = Shared {
      manifests: Manifests::default(),
      options: LinkOptions {
        extra_node_path: bins::extra_node_path(
          &self.settings.virtual_store_dir,
          !self.settings.hoist_pattern.is_empty(),
          true,
        ),
        ..LinkOptions::default()
      },
      dep_path_of: self.plan.slots.iter().map(|s| (s.pkg_dir.as_path(), s.dep_path.as_str())).collect(),
    };
    let (hoisted, slots) = rayon::join(hoist, || self.link_slots(&shared));
    let hoisted = hoisted?;
    let mut warnings = slots?;
    warnings.extend(self.link_hoisted_and_importers(&shared, &hoisted)?);
    Ok((hoisted, warnings))
  }

  /// Each imported slot's `.bin`: its dependencies' commands.
  fn link_slots(&self, shared: &Shared<'_>) -> Result<Vec<String>, InstallError> {
    let Shared { manifests, options, dep_path_of } = shared;
    self
      .plan
      .slots
      .par_iter()
      .filter(|slot| self.changed.contains(&slot.dep_path))
      .map(|slot| -> Result<Vec<String>, InstallError> {
        let modules = slot.slot_dir.join("node_modules");
        let bin_dir = bins::slot_bin_dir(&slot.pkg_dir);
        // A dependency outside the virtual store (`link:`): pnpm then reads the whole
        // `node_modules` of the slot from disk.
        let candidates: Vec<(Command, bool)> =
          if slot.links.iter().any(|(_, target)| !dep_path_of.contains_key(target.as_path())) {
            bins::modules_dir_commands(&modules, Some(&slot.pkg_dir))
              .map_err(io(&modules))?
              .into_iter()
              .map(|c| (c, false))
              .collect()
          } else {
            slot
              .links
              .iter()
              .filter(|(_, target)| dep_path_of.get(target.as_path()).is_some_and(|d| self.has_bin(d)))
              .filter_map(|(_, target)| manifests.bins(target).map(|b| b.at(target)))
              .flatten()
              .map(|c| (c, false))
              .collect()
          };
        let mut warnings = Vec::new();
        if !candidates.is_empty() {
          warnings
            .extend(bins::link_bins_with(&bin_dir, candidates, options).map_err(io(&bin_dir))?.warnings);
        }
        let bundles = self
          .lockfile
          .packages
          .get(remove_peer_suffix(&slot.dep_path))
          .and_then(|p| p.bundled_dependencies.as_ref())
          .is_some_and(|b| b != &serde_json::Value::Bool(false));
        if bundles {
          let bundled = bins::bundled_commands(&slot.pkg_dir).map_err(io(&slot.pkg_dir))?;
          if !bundled.is_empty() {
            let candidates = bundled.into_iter().map(|c| (c, false)).collect();
            warnings
              .extend(bins::link_bins_with(&bin_dir, candidates, options).map_err(io(&bin_dir))?.warnings);
          }
        }
        Ok(warnings)
      })
      .collect::<Result<Vec<_>, _>>()
      .map(|w| w.into_iter().flatten().collect())
  }

  /// The private hoisting directory's `.bin` (its packages' commands, through the hoisted
  /// links) and each importer's.
  fn link_hoisted_and_importers(
    &self,
    shared: &Shared<'_>,
    hoisted_deps: &HoistResult,
  ) -> Result<Vec<String>, InstallError> {
    let Shared { manifests, options, dep_path_of } = shared;
    let mut warnings = Vec::new();
    let pkg_dirs: HashMap<&str, &Path> =
      self.plan.slots.iter().map(|s| (s.dep_path.as_str(), s.pkg_dir.as_path())).collect();
    let private = self.settings.virtual_store_dir.join("node_modules");
    let mut public: Vec<(Command, bool)> = Vec::new();
    let mut hoisted: Vec<(Command, bool)> = Vec::new();
    for h in &hoisted_deps.dependencies {
      let Some(real) = pkg_dirs.get(h.dep_path.as_str()) else { continue };
      if !self.has_bin(&h.dep_path) {
        continue;
      }
      let Some(b) = manifests.bins(real) else { continue };
      if h.public {
        public.extend(b.at(&self.settings.modules_dir.join(&h.alias)).into_iter().map(|c| (c, false)));
      } else {
        hoisted.extend(b.at(&private.join(&h.alias)).into_iter().map(|c| (c, false)));
      }
    }
    if !hoisted.is_empty() {
      let dir = bins::hoisted_bin_dir(&self.settings.virtual_store_dir);
      // pnpm ignores failures here.
      if let Ok(linked) = bins::link_bins_with(&dir, hoisted, options) {
        warnings.extend(linked.warnings);
      }
    }

    // Each importer: its direct dependencies through `node_modules/<alias>`, their peers.
    for importer in &self.plan.importers {
      let mut direct: Vec<(Command, bool)> = Vec::new();
      let mut peers: Vec<Command> = Vec::new();
      for (alias, target) in &importer.links {
        let dep_path = dep_path_of.get(target.as_path()).copied();
        // pnpm's shims for direct dependencies go through `node_modules/<alias>` because its
        // project-lifecycle step relinks them; with scripts ignored that step does not run and
        // they point into the slot.
        let location = if self.settings.ignore_scripts && dep_path.is_some() {
          target.clone()
        } else {
          importer.modules_dir.join(alias)
        };
        if dep_path.is_some_and(|d| self.has_bin(d)) || dep_path.is_none() {
          if let Some(b) = manifests.bins(target) {
            direct.extend(b.at(&location).into_iter().map(|c| (c, true)));
          }
        }
        let Some(dep_path) = dep_path else { continue };
        let Some(snapshot) = self.lockfile.snapshots.get(dep_path) else { continue };
        let Some(manifest) = Manifests::manifest(target) else { continue };
        let resolved = |name: &str| {
          snapshot.dependencies.contains_key(name) || snapshot.optional_dependencies.contains_key(name)
        };
        for peer in bins::auto_installed_peers(&manifest, resolved) {
          let at = bins::peer_location(target, peer);
          let real = std::fs::canonicalize(&at).unwrap_or_else(|_| at.clone());
          if let Some(b) = manifests.bins(&real) {
            peers.extend(b.at(&at));
          }
        }
      }
      if importer.modules_dir == self.settings.modules_dir {
        direct.extend(public.iter().cloned());
      }
      if direct.is_empty() && peers.is_empty() {
        continue;
      }
      let linked = bins::link_importer_bins(&importer.modules_dir, direct, peers, options)
        .map_err(io(&importer.modules_dir))?;
      warnings.extend(linked.warnings);
    }
    Ok(warnings)
  }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> InstallError {
  let path = path.to_path_buf();
  move |source| InstallError::Fs { path, source }
}
