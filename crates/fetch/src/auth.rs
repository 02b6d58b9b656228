//! `Authorization` headers chosen by URI, as npm's "nerf darts" (`//host[:port]/path/`).

/// Nerf-darted URI → ready `Authorization` header value.
#[derive(Debug, Clone, Default)]
pub struct AuthHeaders {
  by_uri: Vec<(String, String)>,
}

impl AuthHeaders {
  pub fn new(entries: impl IntoIterator<Item = (String, String)>) -> Self {
    let mut by_uri: Vec<(String, String)> =
      entries.into_iter().map(|(uri, header)| (nerf_dart(&uri).unwrap_or(uri), header)).collect();
    // Longest (most specific) first.
    by_uri.sort_by_key(|(uri, _)| std::cmp::Reverse(uri.len()));
    AuthHeaders { by_uri }
  }

  /// The header for `url`: the most specific configured URI that is a path prefix of it.
  pub fn for_url(&self, url: &str) -> Option<&str> {
    if self.by_uri.is_empty() {
      return None;
    }
    let dart = nerf_dart(url)?;
    self.by_uri.iter().find(|(uri, _)| dart.starts_with(uri.as_str())).map(|(_, h)| h.as_str())
  }
}

/// `http://user@host:443/a/b.tgz` → `//host:443/a/`; accepts `//host/path` forms too.
/// The default port of the scheme is dropped, so both spellings match.
fn nerf_dart(uri: &str) -> Option<String> {
  let (scheme, rest) = match uri.split_once("//") {
    Some((scheme, rest)) => (scheme.trim_end_matches(':'), rest),
    None => return None,
  };
  let (authority, path) = match rest.find('/') {
    Some(i) => (&rest[..i], &rest[i..]),
    None => (rest, "/"),
  };
  let host = authority.rsplit('@').next().unwrap_or(authority);
  let host = match (scheme, host.rsplit_once(':')) {
    ("http", Some((h, "80"))) | ("https", Some((h, "443"))) => h,
    _ => host,
  };
  let path = path.split(['?', '#']).next().unwrap_or("/");
  let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
  Some(format!("//{host}{}", if dir.is_empty() { "/" } else { dir }))
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn picks_the_most_specific_uri() {
    let auth = AuthHeaders::new([
      ("//127.0.0.1:4873/".to_string(), "Bearer a".to_string()),
      ("//127.0.0.1:4873/private/".to_string(), "Bearer b".to_string()),
      ("https://example.invalid/".to_string(), "Bearer c".to_string()),
    ]);
    assert_eq!(auth.for_url("http://127.0.0.1:4873/foo/-/foo-1.0.0.tgz"), Some("Bearer a"));
    assert_eq!(auth.for_url("http://127.0.0.1:4873/private/@s/x/-/x-1.tgz"), Some("Bearer b"));
    assert_eq!(auth.for_url("https://example.invalid:443/x/-/x-1.tgz"), Some("Bearer c"));
    assert_eq!(auth.for_url("http://127.0.0.1:9999/foo/-/foo-1.0.0.tgz"), None);
  }
}
