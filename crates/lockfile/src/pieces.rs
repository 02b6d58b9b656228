//! Parsing a large lockfile in pieces, side by side.
//!
//! Parsing the YAML is most of the single-threaded start of every install (alotta's 380 KB:
//! ~14 ms before anything else can begin). `packages` and `snapshots` are long maps whose
//! entries do not refer to each other, so each is cut between entries and the pieces are
//! parsed on the pool, each by the same parser that would read the whole file.
//!
//! Only the layout pnpm writes is cut. Anything else (a section written in flow style, tabs,
//! document markers, a key given twice, a piece that does not parse) returns `None`, and the
//! caller parses the whole text: the result, and any error, is then exactly what a whole
//! parse gives.

use indexmap::IndexMap;
use rayon::prelude::*;
use serde::de::DeserializeOwned;

use crate::model::{Lockfile, PackageInfo, Snapshot};

/// Below this, one parse is quick enough that the pool would only add overhead.
const MIN_BYTES: usize = 64 << 10;

/// The cut sections and how many pieces each becomes per thread of the pool.
const SECTIONS: [&str; 2] = ["packages", "snapshots"];
const PIECES_PER_THREAD: usize = 4;

/// The lockfile parsed in pieces, or `None` when it should be parsed whole.
pub(crate) fn parse_in_pieces(text: &str) -> Option<Lockfile> {
  let threads = rayon::current_num_threads();
  if threads < 2 || text.len() < MIN_BYTES || text.contains('\t') {
    return None;
  }
  let layout = Layout::of(text)?;
  let per_section = threads * PIECES_PER_THREAD;
  let packages = layout.pieces(text, 0, per_section)?;
  let snapshots = layout.pieces(text, 1, per_section)?;
  let head = layout.head(text);

  let ((head, packages), snapshots) = rayon::join(
    || rayon::join(|| serde_saphyr::from_str::<Lockfile>(&head).ok(), || parse_all::<PackageInfo>(&packages)),
    || parse_all::<Snapshot>(&snapshots),
  );
  let mut lockfile = head?;
  lockfile.packages = packages?;
  lockfile.snapshots = snapshots?;
  Some(lockfile)
}

/// Parses every piece and joins them in order; `None` if one fails or a key repeats.
fn parse_all<T: DeserializeOwned + Send>(pieces: &[&str]) -> Option<IndexMap<String, T>> {
  let parsed: Vec<IndexMap<String, T>> = pieces
    .par_iter()
    .map(|piece| serde_saphyr::from_str::<IndexMap<String, T>>(piece).ok())
    .collect::<Option<_>>()?;
  let mut all = IndexMap::with_capacity(parsed.iter().map(IndexMap::len).sum());
  for map in parsed {
    for (key, value) in map {
      if all.insert(key, value).is_some() {
        return None;
      }
    }
  }
  Some(all)
}

/// Where the cut sections' bodies lie: byte ranges of `packages` and `snapshots`, the lines
/// after their `key:` line up to the next top-level line.
struct Layout {
  bodies: [std::ops::Range<usize>; 2],
  /// The `key:` lines of the cut sections (the head writes them as empty maps).
  keys: [std::ops::Range<usize>; 2],
}

impl Layout {
  fn of(text: &str) -> Option<Layout> {
    let mut keys: [Option<std::ops::Range<usize>>; 2] = [None, None];
    let mut bodies: [Option<std::ops::Range<usize>>; 2] = [None, None];
    let mut open: Option<usize> = None;
    let mut at = 0;
    for line in text.split_inclusive('\n') {
      let start = at;
      at += line.len();
      let first = line.as_bytes()[0];
      if matches!(first, b' ' | b'\n' | b'\r' | b'#') {
        continue;
      }
      // A line at the left margin: the start of a top-level key, which ends an open section.
      if let Some(i) = open.take() {
        bodies[i] = Some(keys[i].as_ref()?.end..start);
      }
      // Markers, flow collections, anchors, tags, complex keys, lists: not pnpm's layout.
      if matches!(
        first,
        b'-' | b'.' | b'%' | b'{' | b'[' | b'&' | b'*' | b'!' | b'?' | b'|' | b'>' | b'"' | b'\''
      ) {
        return None;
      }
      let key = line.trim_end_matches(['\n', '\r', ' ']);
      if let Some(i) = SECTIONS.iter().position(|s| key.strip_suffix(':') == Some(s)) {
        if keys[i].is_some() {
          return None;
        }
        keys[i] = Some(start..at);
        open = Some(i);
      }
    }
    if let Some(i) = open {
      bodies[i] = Some(keys[i].as_ref()?.end..text.len());
    }
    let [Some(k0), Some(k1)] = keys else { return None };
    let [Some(b0), Some(b1)] = bodies else { return None };
    Some(Layout { bodies: [b0, b1], keys: [k0, k1] })
  }

  /// Everything but the cut sections' bodies, and their keys written as empty maps, so that
  /// the head parses as a lockfile with nothing in them.
  fn head(&self, text: &str) -> String {
    let mut cuts: Vec<(std::ops::Range<usize>, String)> =
      (0..2).map(|i| (self.keys[i].start..self.bodies[i].end, format!("{}: {{}}\n", SECTIONS[i]))).collect();
    cuts.sort_by_key(|(r, _)| r.start);
    let mut head =
      String::with_capacity(text.len() - self.bodies.iter().map(|b| b.len()).sum::<usize>() + 32);
    let mut at = 0;
    for (range, replacement) in cuts {
      head.push_str(&text[at..range.start]);
      head.push_str(&replacement);
      at = range.end;
    }
    head.push_str(&text[at..]);
    head
  }

  /// Section `i`'s body cut into about `count` pieces of similar size, each starting at an
  /// entry: a line indented like the section's first entry. `None` when the body has no
  /// entry or a line indented less than its entries.
  fn pieces<'t>(&self, text: &'t str, i: usize, count: usize) -> Option<Vec<&'t str>> {
    let body = &text[self.bodies[i].clone()];
    let mut indent = None;
    let mut starts = Vec::new();
    let mut at = 0;
    for line in body.split_inclusive('\n') {
      let start = at;
      at += line.len();
      let spaces = line.bytes().take_while(|b| *b == b' ').count();
      let rest = &line.as_bytes()[spaces..];
      if rest.is_empty() || matches!(rest[0], b'\n' | b'\r' | b'#') {
        continue;
      }
      let indent = *indent.get_or_insert(spaces);
      if spaces < indent || indent == 0 {
        return None;
      }
      if spaces == indent {
        starts.push(start);
      }
    }
    let first = *starts.first()?;
    let target = (body.len() - first).div_ceil(count).max(1);
    let mut pieces = Vec::with_capacity(count);
    let mut from = first;
    for &start in &starts[1..] {
      if start - from >= target {
        pieces.push(&body[from..start]);
        from = start;
      }
    }
    pieces.push(&body[from..]);
    Some(pieces)
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  fn whole(text: &str) -> Lockfile {
    serde_saphyr::from_str::<Lockfile>(text).unwrap()
  }

  fn same(a: &Lockfile, b: &Lockfile) -> bool {
    format!("{a:?}") == format!("{b:?}")
  }

  /// A lockfile large enough to be cut, in pnpm's layout.
  fn generated(entries: usize) -> String {
    let mut text = String::from("lockfileVersion: '9.0'\n\nsettings:\n  autoInstallPeers: true\n\nimporters:\n\n  .:\n    dependencies:\n");
    for n in 0..entries {
      text.push_str(&format!("      pkg-{n}:\n        specifier: ^1.0.{n}\n        version: 1.0.{n}\n"));
    }
    text.push_str("\npackages:\n\n");
    for n in 0..entries {
      text.push_str(&format!(
        "  pkg-{n}@1.0.{n}:\n    resolution: {{integrity: sha512-{}}}\n    engines: {{node: '>=8'}}\n\n",
        "A".repeat(86)
      ));
    }
    text.push_str("snapshots:\n\n");
    for n in 0..entries {
      if n == 0 {
        text.push_str("  pkg-0@1.0.0: {}\n\n");
      } else {
        text.push_str(&format!(
          "  pkg-{n}@1.0.{n}:\n    dependencies:\n      pkg-{}: 1.0.{}\n\n",
          n - 1,
          n - 1
        ));
      }
    }
    text
  }

  #[test]
  fn pieces_give_what_a_whole_parse_gives() {
    let text = generated(2000);
    assert!(text.len() > MIN_BYTES);
    let pieced = parse_in_pieces(&text).expect("pnpm's layout is cut");
    assert_eq!(pieced.packages.len(), 2000);
    assert_eq!(pieced.snapshots.len(), 2000);
    assert!(same(&pieced, &whole(&text)));
    // With Windows line ends too.
    let crlf = text.replace('\n', "\r\n");
    assert!(same(&parse_in_pieces(&crlf).expect("CRLF is cut"), &whole(&crlf)));
  }

  #[test]
  fn the_bench_fixtures_parse_the_same_in_pieces() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/fixtures");
    let mut cut = 0;
    for name in ["small", "alotta", "huge", "workspace"] {
      let Ok(text) = std::fs::read_to_string(fixtures.join(name).join("pnpm-lock.yaml")) else { continue };
      if let Some(pieced) = parse_in_pieces(&text) {
        cut += 1;
        assert!(same(&pieced, &whole(&text)), "{name}");
      }
    }
    assert!(cut >= 2, "the large fixtures are cut");
  }

  #[test]
  fn other_layouts_are_left_to_a_whole_parse() {
    let text = generated(2000);
    // A key given twice across pieces: a whole parse decides what that means.
    let twice = text.replace("  pkg-1999@1.0.1999:\n    resolution", "  pkg-0@1.0.0:\n    resolution");
    assert!(parse_in_pieces(&twice).is_none());
    // A section in flow style, a section given twice, tabs, a document marker.
    assert!(parse_in_pieces(&text.replace("snapshots:\n\n", "snapshots: {}\nzzz:\n")).is_none());
    assert!(
      parse_in_pieces(&format!("{text}packages:\n  x@1:\n    resolution: {{integrity: a}}\n")).is_none()
    );
    assert!(parse_in_pieces(&text.replace("settings:\n", "settings:\n\t\n")).is_none());
    assert!(parse_in_pieces(&format!("---\n{text}")).is_none());
    // A piece that does not parse on its own (an alias to an anchor in another piece).
    let anchored = text
      .replace("  pkg-0@1.0.0:\n    resolution: {integrity", "  pkg-0@1.0.0:\n    resolution: &r {integrity")
      .replace(
        "  pkg-1999@1.0.1999:\n    resolution: {",
        "  pkg-1999@1.0.1999:\n    resolution: *r\n    x: {",
      );
    assert!(parse_in_pieces(&anchored).is_none());
    // Small files are parsed whole.
    assert!(parse_in_pieces(&generated(10)).is_none());
  }
}

#[cfg(test)]
mod differential {
  use super::*;

  /// A small deterministic generator (xorshift), so a failure can be replayed.
  struct Rng(u64);
  impl Rng {
    fn next(&mut self, n: usize) -> usize {
      self.0 ^= self.0 << 13;
      self.0 ^= self.0 >> 7;
      self.0 ^= self.0 << 17;
      (self.0 % n as u64) as usize
    }
  }

  fn mutate(text: &str, rng: &mut Rng) -> String {
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
    for _ in 0..1 + rng.next(3) {
      let i = rng.next(lines.len());
      match rng.next(6) {
        0 => {
          lines.remove(i);
        }
        1 => {
          let line = lines[i].clone();
          lines.insert(rng.next(lines.len()), line);
        }
        2 => lines[i] = format!(" {}", lines[i]),
        3 => lines[i] = lines[i].trim_start_matches(' ').to_string(),
        4 => {
          const BITS: [&str; 12] = [" ", ":", "-", "'", "\"", "{", "}", "#", "\n", "&a ", "*a", ": x"];
          let at = rng.next(lines[i].len().max(1));
          if lines[i].is_char_boundary(at) {
            lines[i].insert_str(at, BITS[rng.next(BITS.len())]);
          }
        }
        _ => lines.insert(i, "packages:\n".into()),
      }
    }
    lines.concat()
  }

  /// Damaged copies of a real lockfile: cut or not, the result is the whole parse's, and a
  /// text that a whole parse rejects is never accepted. `ROUNDS` and `SEED` run it longer.
  #[test]
  fn mutated_lockfiles_parse_the_same_or_whole() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/fixtures");
    let text = std::fs::read_to_string(fixtures.join("alotta/pnpm-lock.yaml")).unwrap();
    let rounds: usize = std::env::var("ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(40);
    let seed: u64 = std::env::var("SEED").ok().and_then(|r| r.parse().ok()).unwrap_or(0x9e37_79b9_7f4a_7c15);
    let mut rng = Rng(seed);
    let (mut cut, mut rejected) = (0, 0);
    for round in 0..rounds {
      let mutated = mutate(&text, &mut rng);
      let whole = serde_saphyr::from_str::<Lockfile>(&mutated);
      match (parse_in_pieces(&mutated), whole) {
        (Some(p), Ok(w)) => {
          cut += 1;
          assert_eq!(format!("{p:?}"), format!("{w:?}"), "round {round}");
        }
        (Some(_), Err(e)) => panic!("round {round}: pieces accepted what a whole parse rejects: {e}"),
        (None, Err(_)) => rejected += 1,
        (None, Ok(_)) => {}
      }
    }
    eprintln!("{rounds} rounds: {cut} cut, {rejected} rejected whole");
  }
}
