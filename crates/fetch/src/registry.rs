//! Which registry serves a package, and the tarball URL pnpm derives for it.

use std::collections::HashMap;

/// `default` plus per-scope registries (`@scope` → URL), all ending in `/`.
#[derive(Debug, Clone)]
pub struct Registries {
  default: String,
  scoped: HashMap<String, String>,
}

fn with_slash(url: &str) -> String {
  if url.ends_with('/') {
    url.to_string()
  } else {
    format!("{url}/")
  }
}

impl Registries {
  pub fn new(default: &str, scoped: impl IntoIterator<Item = (String, String)>) -> Self {
    Registries {
      default: with_slash(default),
      scoped: scoped.into_iter().map(|(scope, url)| (scope, with_slash(&url))).collect(),
    }
  }

  pub fn default_registry(&self) -> &str {
    &self.default
  }

  pub fn for_package(&self, name: &str) -> &str {
    if name.starts_with('@') {
      if let Some(scope) = name.split('/').next() {
        if let Some(url) = self.scoped.get(scope) {
          return url;
        }
      }
    }
    &self.default
  }

  /// `<registry><name>/-/<bare name>-<version>.tgz`.
  pub fn tarball_url(&self, name: &str, version: &str) -> String {
    let bare = name.rsplit('/').next().unwrap_or(name);
    format!("{}{name}/-/{bare}-{version}.tgz", self.for_package(name))
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn tarball_urls_follow_pnpm() {
    let r =
      Registries::new("http://127.0.0.1:4873", [("@s".to_string(), "http://127.0.0.1:5000/sub".to_string())]);
    assert_eq!(r.tarball_url("foo", "1.0.0"), "http://127.0.0.1:4873/foo/-/foo-1.0.0.tgz");
    assert_eq!(r.tarball_url("@s/foo", "1.0.0"), "http://127.0.0.1:5000/sub/@s/foo/-/foo-1.0.0.tgz");
    assert_eq!(r.tarball_url("@t/bar", "2.0.0"), "http://127.0.0.1:4873/@t/bar/-/bar-2.0.0.tgz");
  }
}
