//! The lockfile v9 model. Field names follow the YAML (camelCase).

use indexmap::IndexMap;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lockfile {
  /// Read as a string whether YAML wrote it quoted or not (`'9.0'`, `9.0`, `6`).
  #[serde(deserialize_with = "version_string")]
  pub lockfile_version: String,
  #[serde(default)]
  pub settings: Option<serde_json::Value>,
  #[serde(default)]
  pub importers: IndexMap<String, Importer>,
  #[serde(default)]
  pub packages: IndexMap<String, PackageInfo>,
  #[serde(default)]
  pub snapshots: IndexMap<String, Snapshot>,
}

fn version_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
  #[derive(Deserialize)]
  #[serde(untagged)]
  enum V {
    S(String),
    F(f64),
    I(i64),
  }
  Ok(match V::deserialize(d)? {
    V::S(s) => s,
    V::F(f) => format!("{f:?}"),
    V::I(i) => i.to_string(),
  })
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Importer {
  #[serde(default)]
  pub dependencies: IndexMap<String, ImporterDependency>,
  #[serde(default)]
  pub dev_dependencies: IndexMap<String, ImporterDependency>,
  #[serde(default)]
  pub optional_dependencies: IndexMap<String, ImporterDependency>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ImporterDependency {
  #[serde(default)]
  pub specifier: Option<String>,
  pub version: String,
}

/// `packages[name@version]`: what is needed to fetch a package and decide whether to install it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PackageInfo {
  pub resolution: ResolutionFields,
  /// Only written for non-registry packages.
  #[serde(default)]
  pub version: Option<String>,
  #[serde(default)]
  pub os: Option<Vec<String>>,
  #[serde(default)]
  pub cpu: Option<Vec<String>>,
  #[serde(default)]
  pub libc: Option<Vec<String>>,
  #[serde(default)]
  pub has_bin: Option<bool>,
  #[serde(default)]
  pub deprecated: Option<String>,
  /// `bundledDependencies`: a list, or `true` for all.
  #[serde(default)]
  pub bundled_dependencies: Option<serde_json::Value>,
}

/// The raw `resolution` map; [`ResolutionFields::classify`] turns it into a [`Resolution`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolutionFields {
  #[serde(default)]
  pub integrity: Option<String>,
  #[serde(default)]
  pub tarball: Option<String>,
  #[serde(default)]
  pub directory: Option<String>,
  #[serde(default, rename = "type")]
  pub kind: Option<String>,
  #[serde(default)]
  pub repo: Option<String>,
  #[serde(default)]
  pub commit: Option<String>,
  #[serde(default)]
  pub path: Option<String>,
  #[serde(default)]
  pub git_hosted: Option<bool>,
}

/// How a package is obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
  /// From the registry: URL derived from name and version.
  Registry { integrity: String },
  /// From an explicit tarball URL (or a `file:` tarball).
  Tarball { url: String, integrity: Option<String>, path: Option<String> },
  /// A local directory (`file:` dependency on a folder), relative to the lockfile's directory.
  Directory { directory: String },
  /// A git repository (not installable by this version).
  Git { repo: String, commit: String },
}

impl ResolutionFields {
  pub fn classify(&self) -> Option<Resolution> {
    if let Some(url) = &self.tarball {
      return Some(Resolution::Tarball {
        url: url.clone(),
        integrity: self.integrity.clone(),
        path: self.path.clone(),
      });
    }
    if let Some(directory) = &self.directory {
      return Some(Resolution::Directory { directory: directory.clone() });
    }
    if self.kind.as_deref() == Some("git") {
      return Some(Resolution::Git { repo: self.repo.clone()?, commit: self.commit.clone()? });
    }
    if self.kind.is_none() {
      if let Some(integrity) = &self.integrity {
        return Some(Resolution::Registry { integrity: integrity.clone() });
      }
    }
    None
  }
}

/// `snapshots[depPath]`: one node of the dependency graph (a package with its peers resolved).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
  #[serde(default)]
  pub dependencies: IndexMap<String, String>,
  #[serde(default)]
  pub optional_dependencies: IndexMap<String, String>,
  #[serde(default)]
  pub optional: bool,
}

/// Where a dependency reference (`alias: <ref>`) points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DependencyRef {
  /// A snapshot key (dep path).
  Snapshot(String),
  /// `link:<path>`: a directory, relative to the referring importer.
  Link(String),
}
