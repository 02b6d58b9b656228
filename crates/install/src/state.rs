//! What an install leaves behind so that the next one (ours or pnpm's) knows what is there:
//! `node_modules/.modules.yaml` and `<virtualStoreDir>/lock.yaml` as pnpm writes them, and a
//! small state file of our own that lets an unchanged repeat install return at once.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

pub const MODULES_FILE: &str = ".modules.yaml";
pub const CURRENT_LOCKFILE: &str = "lock.yaml";
const REPEAT_STATE_FILE: &str = ".pacquet-native-state.json";

/// The parts of `.modules.yaml` that decide whether `node_modules` can be kept.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModulesManifest {
  pub layout_version: Option<u32>,
  pub store_dir: Option<String>,
  pub virtual_store_dir: Option<String>,
  pub node_linker: Option<String>,
  pub hoist_pattern: Option<Vec<String>>,
  pub public_hoist_pattern: Option<Vec<String>>,
  pub virtual_store_dir_max_length: Option<usize>,
  pub pruned_at: Option<String>,
  pub hoisted_dependencies: Option<HoistedDependencies>,
  pub pending_builds: Option<Vec<String>>,
  pub ignored_builds: Option<Vec<String>>,
}

/// `.modules.yaml`'s `hoistedDependencies`: dep path → alias → `private` | `public`.
pub type HoistedDependencies = indexmap::IndexMap<String, indexmap::IndexMap<String, String>>;

pub fn read_modules_manifest(modules_dir: &Path) -> Option<ModulesManifest> {
  let text = std::fs::read_to_string(modules_dir.join(MODULES_FILE)).ok()?;
  // pnpm 9+ writes JSON under the .yaml name. An older YAML file reads as absent, and the
  // layout is rebuilt.
  serde_json::from_str(&text).ok()
}

/// The layout settings an install is made with; `node_modules` made with others is rebuilt.
pub struct Layout<'a> {
  pub store_dir: &'a Path,
  pub virtual_store_dir: &'a Path,
  pub modules_dir: &'a Path,
  pub hoist_pattern: &'a [String],
  pub public_hoist_pattern: &'a [String],
  pub virtual_store_dir_max_length: usize,
}

impl Layout<'_> {
  fn relative_vsd(&self) -> String {
    pacquet_link::relative_path(self.modules_dir, self.virtual_store_dir).to_string_lossy().into_owned()
  }

  /// pnpm's compatibility check: a `node_modules` laid out differently must be purged.
  pub fn matches(&self, m: &ModulesManifest) -> bool {
    let vsd = m.virtual_store_dir.as_deref().map(|v| {
      let p = Path::new(v);
      if p.is_absolute() {
        p.to_path_buf()
      } else {
        self.modules_dir.join(p)
      }
    });
    m.layout_version == Some(5)
      && m.node_linker.as_deref().unwrap_or("isolated") == "isolated"
      && m.store_dir.as_deref() == Some(&*self.store_dir.to_string_lossy())
      && vsd.as_deref().map(crate::plan::normalize) == Some(crate::plan::normalize(self.virtual_store_dir))
      && m.hoist_pattern.as_deref().unwrap_or(&[]) == self.hoist_pattern
      && m.public_hoist_pattern.as_deref().unwrap_or(&[]) == self.public_hoist_pattern
      && m.virtual_store_dir_max_length.unwrap_or(120) == self.virtual_store_dir_max_length
  }
}

/// What goes into `.modules.yaml` besides the layout.
pub struct ModulesContent {
  pub hoisted_dependencies: Value,
  pub included: crate::options::Include,
  pub skipped: Vec<String>,
  pub pending_builds: Vec<String>,
  pub ignored_builds: Option<Vec<String>>,
  pub allow_builds: std::collections::BTreeMap<String, bool>,
  pub pruned_at: Option<String>,
  pub injected_deps: Value,
}

/// Writes `.modules.yaml` with pnpm 11's fields, in its order and format (2-space JSON).
pub fn write_modules_manifest(layout: &Layout<'_>, content: ModulesContent) -> std::io::Result<()> {
  let mut skipped = content.skipped;
  skipped.sort();
  let mut m = Map::new();
  m.insert("hoistedDependencies".into(), content.hoisted_dependencies);
  if !layout.hoist_pattern.is_empty() {
    m.insert("hoistPattern".into(), json!(layout.hoist_pattern));
  }
  m.insert(
    "included".into(),
    json!({
      "dependencies": content.included.dependencies,
      "devDependencies": content.included.dev_dependencies,
      "optionalDependencies": content.included.optional_dependencies,
    }),
  );
  m.insert("injectedDeps".into(), content.injected_deps);
  if let Some(ignored) = content.ignored_builds {
    m.insert("ignoredBuilds".into(), json!(ignored));
  }
  m.insert("layoutVersion".into(), json!(5));
  m.insert("nodeLinker".into(), json!("isolated"));
  m.insert("packageManager".into(), json!(format!("@pacquet/native@{}", env!("CARGO_PKG_VERSION"))));
  m.insert("pendingBuilds".into(), json!(content.pending_builds));
  m.insert("publicHoistPattern".into(), json!(layout.public_hoist_pattern));
  m.insert("prunedAt".into(), json!(content.pruned_at.unwrap_or_else(utc_string_now)));
  m.insert("skipped".into(), json!(skipped));
  m.insert("storeDir".into(), json!(layout.store_dir.to_string_lossy()));
  m.insert(
    "virtualStoreDir".into(),
    json!(if cfg!(windows) {
      layout.virtual_store_dir.to_string_lossy().into_owned()
    } else {
      layout.relative_vsd()
    }),
  );
  m.insert("virtualStoreDirMaxLength".into(), json!(layout.virtual_store_dir_max_length));
  if !content.allow_builds.is_empty() {
    m.insert("allowBuilds".into(), json!(content.allow_builds));
  }
  std::fs::create_dir_all(layout.modules_dir)?;
  let text = serde_json::to_string_pretty(&Value::Object(m)).map_err(std::io::Error::other)?;
  write_atomic(&layout.modules_dir.join(MODULES_FILE), text.as_bytes())
}

/// JS's `new Date().toUTCString()`: `Tue, 24 Nov 2026 01:49:33 GMT`.
pub fn utc_string_now() -> String {
  let secs =
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
  let days = (secs / 86_400) as i64;
  let (h, mi, s) = ((secs % 86_400) / 3600, (secs % 3600) / 60, secs % 60);
  // Civil-from-days (proleptic Gregorian), valid for any date after 1970.
  let z = days + 719_468;
  let era = z.div_euclid(146_097);
  let doe = z - era * 146_097;
  let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
  let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  let mp = (5 * doy + 2) / 153;
  let d = doy - (153 * mp + 2) / 5 + 1;
  let m = if mp < 10 { mp + 3 } else { mp - 9 };
  let y = yoe + era * 400 + i64::from(m <= 2);
  const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
  const MONTHS: [&str; 12] =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  format!(
    "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
    WEEKDAYS[days.rem_euclid(7) as usize],
    d,
    MONTHS[(m - 1) as usize],
    y,
    h,
    mi,
    s
  )
}

/// Writes via a temporary file and a rename, so readers never see half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
  remove_stale_temps(path);
  let tmp = path.with_file_name(format!(
    "{}.{}.tmp",
    path.file_name().and_then(|n| n.to_str()).unwrap_or("state"),
    std::process::id()
  ));
  std::fs::write(&tmp, bytes)?;
  std::fs::rename(&tmp, path).inspect_err(|_| {
    let _ = std::fs::remove_file(&tmp);
  })
}

/// Removes the temporary files of `path` (`<name>.<pid>.tmp`) that a killed install left:
/// its own, or of a process that is gone. A live process's may be about to be renamed.
fn remove_stale_temps(path: &Path) {
  let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
    return;
  };
  let Ok(entries) = std::fs::read_dir(dir) else { return };
  let prefix = format!("{name}.");
  for entry in entries.flatten() {
    let file = entry.file_name();
    let pid = file.to_str().and_then(|f| f.strip_prefix(&prefix)).and_then(|rest| rest.strip_suffix(".tmp"));
    let Some(Ok(pid)) = pid.map(str::parse::<u32>) else { continue };
    if pid == std::process::id() || !process_alive(pid) {
      let _ = std::fs::remove_file(entry.path());
    }
  }
}

#[cfg(unix)]
fn process_alive(pid: u32) -> bool {
  // 0 and negative ids would name process groups.
  let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
  if pid <= 0 {
    return false;
  }
  // SAFETY: signal 0 only checks that the process exists; nothing is sent.
  let found = unsafe { libc::kill(pid, 0) } == 0;
  // EPERM: it exists, owned by someone else.
  found || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Without a cheap check, another process's file is left alone.
#[cfg(not(unix))]
fn process_alive(_pid: u32) -> bool {
  true
}

/// Proof that `node_modules` holds exactly what a lockfile asks for: the lockfile's bytes'
/// hash, the settings, and the slot and link paths to check still exist.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct RepeatState {
  pub lockfile_hash: String,
  pub settings: String,
  /// Completion markers (`<slot>/node_modules/<pkg>/package.json`) of every slot.
  pub markers: Vec<PathBuf>,
  /// Importer links: path → relative target as stored in the link.
  pub links: Vec<(PathBuf, PathBuf)>,
}

pub fn repeat_state_path(modules_dir: &Path) -> PathBuf {
  modules_dir.join(REPEAT_STATE_FILE)
}

pub fn read_repeat_state(modules_dir: &Path) -> Option<RepeatState> {
  serde_json::from_slice(&std::fs::read(repeat_state_path(modules_dir)).ok()?).ok()
}

/// True when everything the state lists is still in place.
pub fn repeat_state_holds(state: &RepeatState) -> bool {
  use rayon::prelude::*;
  state.markers.par_iter().all(|m| m.is_file())
    && state.links.par_iter().all(|(link, target)| std::fs::read_link(link).is_ok_and(|t| &t == target))
}

pub fn lockfile_hash(bytes: &[u8]) -> String {
  use sha2::Digest;
  hex::encode(sha2::Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
  use super::*;

  #[cfg(unix)]
  #[test]
  fn temps_of_killed_writers_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".modules.yaml");
    // Above Linux's and macOS's highest process id: a writer that is gone.
    let gone = dir.path().join(".modules.yaml.999999999.tmp");
    let live = dir.path().join(format!(".modules.yaml.{}.tmp", std::os::unix::process::parent_id()));
    let other = dir.path().join(".modules.yaml.backup.tmp");
    for f in [&gone, &live, &other] {
      std::fs::write(f, b"").unwrap();
    }
    write_atomic(&path, b"x").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"x");
    assert!(!gone.exists());
    assert!(live.exists(), "a live process's temp file stays");
    assert!(other.exists(), "not a temp file of ours");
  }

  #[test]
  fn utc_strings_look_like_javascripts() {
    let s = utc_string_now();
    assert!(s.ends_with(" GMT") && s.len() == 29, "{s}");
  }
}
