//! The registry settings an install needs when the caller gave none: from
//! `npm_config_*` environment variables and `.npmrc` files, as npm and pnpm read them.

use std::collections::BTreeMap;
use std::path::Path;

/// Registries and auth headers found in npm configuration.
#[derive(Debug, Default, Clone)]
pub struct NpmConfig {
  pub registries: BTreeMap<String, String>,
  pub auth_header_by_uri: BTreeMap<String, String>,
}

/// Reads `<dir>/.npmrc`, then `~/.npmrc` for what the project file lacks, then lets
/// `npm_config_registry` override the default registry (npm's precedence).
pub fn read_npm_config(dir: &Path) -> NpmConfig {
  let mut config = NpmConfig::default();
  let home =
    std::env::var_os("HOME").or_else(|| std::env::var_os("USERPROFILE")).map(std::path::PathBuf::from);
  let user_rc = std::env::var_os("npm_config_userconfig")
    .or_else(|| std::env::var_os("NPM_CONFIG_USERCONFIG"))
    .map(std::path::PathBuf::from)
    .or_else(|| home.map(|h| h.join(".npmrc")));
  let files = [Some(dir.join(".npmrc")), user_rc];
  for file in files.into_iter().flatten() {
    if let Ok(text) = std::fs::read_to_string(&file) {
      apply(&mut config, &text, false);
    }
  }
  for name in ["npm_config_registry", "NPM_CONFIG_REGISTRY"] {
    if let Some(url) = std::env::var(name).ok().filter(|v| !v.is_empty()) {
      config.registries.insert("default".into(), url);
      break;
    }
  }
  config
}

/// Applies one file's settings; earlier files win (`overwrite = false`).
fn apply(config: &mut NpmConfig, text: &str, overwrite: bool) {
  let mut basic: BTreeMap<String, (Option<String>, Option<String>)> = BTreeMap::new();
  let mut global_token = None;
  for line in text.lines() {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
      continue;
    }
    let Some((key, value)) = line.split_once('=') else {
      continue;
    };
    let key = key.trim();
    let value = expand_env(value.trim().trim_matches('"'));
    let set = |map: &mut BTreeMap<String, String>, k: String, v: String| {
      if overwrite || !map.contains_key(&k) {
        map.insert(k, v);
      }
    };
    if key == "registry" {
      set(&mut config.registries, "default".into(), value);
    } else if let Some(scope) = key.strip_suffix(":registry").filter(|s| s.starts_with('@')) {
      set(&mut config.registries, scope.to_string(), value);
    } else if key == "_authToken" {
      global_token = Some(value);
    } else if let Some((uri, field)) = key.starts_with("//").then(|| key.rsplit_once(':')).flatten() {
      match field {
        "_authToken" => set(&mut config.auth_header_by_uri, uri.to_string(), format!("Bearer {value}")),
        "_auth" => set(&mut config.auth_header_by_uri, uri.to_string(), format!("Basic {value}")),
        "username" => basic.entry(uri.to_string()).or_default().0 = Some(value),
        "_password" => basic.entry(uri.to_string()).or_default().1 = Some(value),
        _ => {}
      }
    }
  }
  for (uri, (user, password)) in basic {
    if let (Some(user), Some(password)) = (user, password) {
      use base64::Engine;
      let engine = base64::engine::general_purpose::STANDARD;
      let password =
        engine.decode(&password).ok().and_then(|p| String::from_utf8(p).ok()).unwrap_or(password);
      let header = format!("Basic {}", engine.encode(format!("{user}:{password}")));
      config.auth_header_by_uri.entry(uri).or_insert(header);
    }
  }
  if let (Some(token), Some(registry)) = (global_token, config.registries.get("default")) {
    let uri =
      registry.split_once("//").map(|(_, rest)| format!("//{rest}")).unwrap_or_else(|| registry.clone());
    config.auth_header_by_uri.entry(uri).or_insert(format!("Bearer {token}"));
  }
}

/// `${NAME}` → the variable's value (npm leaves unknown ones in place).
fn expand_env(value: &str) -> String {
  let mut out = String::with_capacity(value.len());
  let mut rest = value;
  while let Some(start) = rest.find("${") {
    out.push_str(&rest[..start]);
    match rest[start + 2..].find('}') {
      Some(end) => {
        let name = &rest[start + 2..start + 2 + end];
        match std::env::var(name) {
          Ok(v) => out.push_str(&v),
          Err(_) => out.push_str(&rest[start..start + 3 + end]),
        }
        rest = &rest[start + 3 + end..];
      }
      None => {
        out.push_str(&rest[start..]);
        rest = "";
      }
    }
  }
  out.push_str(rest);
  out
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn reads_registries_and_auth() {
    let mut config = NpmConfig::default();
    apply(
      &mut config,
      "# comment\nregistry=http://127.0.0.1:4873/\n@s:registry=http://127.0.0.1:5000/\n//127.0.0.1:5000/:_authToken=abc\n_authToken=def\n",
      false,
    );
    assert_eq!(config.registries["default"], "http://127.0.0.1:4873/");
    assert_eq!(config.registries["@s"], "http://127.0.0.1:5000/");
    assert_eq!(config.auth_header_by_uri["//127.0.0.1:5000/"], "Bearer abc");
    assert_eq!(config.auth_header_by_uri["//127.0.0.1:4873/"], "Bearer def");
  }
}
