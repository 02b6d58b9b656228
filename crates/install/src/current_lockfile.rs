//! `<virtualStoreDir>/lock.yaml` for an install that left something out (`--prod`, `--dev`):
//! pnpm writes the wanted lockfile filtered to what was installed. pnpm writes its lockfiles
//! in one fixed layout, so the filtering is done on that text: the kept parts stay byte for
//! byte what they were, as pnpm's own serialiser would write them.

use std::collections::HashSet;

use crate::options::Include;

/// Keeps the importers' dependency groups that `include` selects and the `packages` and
/// `snapshots` entries in `installed` (snapshot keys; a package stays if one of its
/// snapshots does). `None` when the text is not laid out as pnpm writes lockfiles.
pub fn filter(text: &str, include: Include, installed: &HashSet<String>) -> Option<String> {
  let packages: HashSet<&str> = installed.iter().map(|k| pacquet_lockfile::remove_peer_suffix(k)).collect();
  let mut out = String::with_capacity(text.len());
  for (name, body) in sections(text)? {
    match name {
      "importers" => out.push_str(&filter_importers(body, include)),
      "packages" => out.push_str(&filter_entries(body, |k| packages.contains(k))),
      "snapshots" => out.push_str(&filter_entries(body, |k| installed.contains(k))),
      _ => out.push_str(body),
    }
  }
  Some(out)
}

/// Top-level sections: (name, text from its key line to the next section's key line).
fn sections(text: &str) -> Option<Vec<(&str, &str)>> {
  let mut starts = Vec::new();
  let mut offset = 0;
  for line in text.split_inclusive('\n') {
    if !line.starts_with([' ', '\n', '#']) && !line.trim().is_empty() {
      starts.push((line.split(':').next()?, offset));
    }
    offset += line.len();
  }
  if starts.first().is_none_or(|(_, at)| *at != 0) {
    return None;
  }
  Some(
    starts
      .iter()
      .enumerate()
      .map(|(i, (name, at))| (*name, &text[*at..starts.get(i + 1).map_or(text.len(), |s| s.1)]))
      .collect(),
  )
}

fn unquote(key: &str) -> String {
  let key = key.trim();
  if let Some(inner) = key.strip_prefix('\'').and_then(|k| k.strip_suffix('\'')) {
    inner.replace("''", "'")
  } else if let Some(inner) = key.strip_prefix('"').and_then(|k| k.strip_suffix('"')) {
    inner.to_string()
  } else {
    key.to_string()
  }
}

/// The key of a `  key: …` entry line (two-space indent), unquoted.
fn entry_key(line: &str) -> Option<String> {
  let rest = line.strip_prefix("  ")?;
  if rest.starts_with(' ') || rest.trim().is_empty() {
    return None;
  }
  // The key ends at the last `:` followed by a space or the end of the line outside quotes;
  // pnpm's keys hold `:` only inside quotes.
  let bytes = rest.trim_end().as_bytes();
  let mut quote = None;
  for (i, &b) in bytes.iter().enumerate() {
    match (quote, b) {
      (None, b'\'' | b'"') => quote = Some(b),
      (Some(q), b) if b == q => quote = None,
      (None, b':') if i + 1 == bytes.len() || bytes[i + 1] == b' ' => return Some(unquote(&rest[..i])),
      _ => {}
    }
  }
  None
}

/// Drops the entries of a `packages:` / `snapshots:` section whose key `keep` rejects, with
/// the blank line that separated each from its neighbours.
fn filter_entries(section: &str, keep: impl Fn(&str) -> bool) -> String {
  let mut head = String::new();
  let mut entries: Vec<(String, String)> = Vec::new();
  for line in section.split_inclusive('\n') {
    match entry_key(line) {
      Some(key) => entries.push((key, line.to_string())),
      None => match entries.last_mut() {
        Some((_, body)) => body.push_str(line),
        None => head.push_str(line),
      },
    }
  }
  let trailing_blank = entries.last().is_some_and(|(_, b)| b.ends_with("\n\n"));
  let kept: Vec<String> = entries
    .into_iter()
    .filter(|(k, _)| keep(k))
    .map(|(_, b)| b.trim_end_matches('\n').to_string() + "\n")
    .collect();
  let mut out = head;
  out.push_str(&kept.join("\n"));
  if trailing_blank {
    out.push('\n');
  }
  out
}

/// Drops the dependency groups `include` leaves out from every importer.
fn filter_importers(section: &str, include: Include) -> String {
  let dropped = |field: &str| match field {
    "dependencies" => !include.dependencies,
    "devDependencies" => !include.dev_dependencies,
    "optionalDependencies" => !include.optional_dependencies || !include.dependencies,
    _ => false,
  };
  let mut out = String::with_capacity(section.len());
  let mut skipping = false;
  for line in section.split_inclusive('\n') {
    let indent = line.len() - line.trim_start_matches(' ').len();
    if indent == 4 && !line.trim().is_empty() {
      let field = line.trim().trim_end_matches(':');
      skipping = line.trim().ends_with(':') && dropped(field);
    } else if indent < 4 && !line.trim().is_empty() {
      skipping = false;
    }
    if !(skipping && indent >= 4) {
      out.push_str(line);
    }
  }
  out
}

#[cfg(test)]
mod tests {
  use super::*;

  const TEXT: &str = "lockfileVersion: '9.0'

importers:

  .:
    dependencies:
      a:
        specifier: ^1.0.0
        version: 1.0.0
    devDependencies:
      d:
        specifier: ^1.0.0
        version: 1.0.0

packages:

  a@1.0.0:
    resolution: {integrity: sha512-A}

  '@s/b@1.0.0':
    resolution: {integrity: sha512-B}

  d@1.0.0:
    resolution: {integrity: sha512-D}

snapshots:

  a@1.0.0:
    dependencies:
      '@s/b': 1.0.0

  '@s/b@1.0.0': {}

  d@1.0.0: {}
";

  #[test]
  fn prod_drops_dev_dependencies_and_what_only_they_reach() {
    let installed: HashSet<String> = ["a@1.0.0", "@s/b@1.0.0"].iter().map(|s| s.to_string()).collect();
    let prod = Include { dependencies: true, dev_dependencies: false, optional_dependencies: true };
    let out = filter(TEXT, prod, &installed).unwrap();
    let expected = TEXT
      .replace("    devDependencies:\n      d:\n        specifier: ^1.0.0\n        version: 1.0.0\n", "")
      .replace("\n  d@1.0.0:\n    resolution: {integrity: sha512-D}\n", "")
      .replace("\n\n  d@1.0.0: {}\n", "\n");
    assert_eq!(out, expected);
    // Everything included: the same text.
    let all: HashSet<String> = ["a@1.0.0", "@s/b@1.0.0", "d@1.0.0"].iter().map(|s| s.to_string()).collect();
    assert_eq!(filter(TEXT, Include::default(), &all).unwrap(), TEXT);
  }
}
