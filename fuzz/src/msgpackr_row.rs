//! `index.db` row bytes → the msgpackr row decoder, and back through the encoder.

use pacquet_store::msgpackr::{decode, encode};
use pacquet_store::PackageFilesIndex;

/// Integers past this travel as doubles (msgpackr writes JS numbers, never 64-bit integers),
/// so only values up to it survive a round trip exactly.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

pub fn check(data: &[u8]) {
  let row = match decode(data) {
    Ok(row) => row,
    Err(err) => {
      assert!(miette::Diagnostic::code(&err).is_some(), "no error code for {err}");
      return;
    }
  };
  let bytes = encode(&row);
  let again = decode(&bytes);
  if !round_trips(&row) {
    return;
  }
  let again = again.unwrap_or_else(|e| panic!("re-encoded row does not decode: {e}\nrow: {row:?}"));
  assert_eq!(again, row, "decode(encode(row)) differs");
  // The encoder is canonical: a decoded row encodes to the same bytes again.
  assert_eq!(encode(&again), bytes, "encoding is not stable");
}

/// Whether the codec promises `decode(encode(row)) == row`: numbers within JS's exact range,
/// and no NaN (which is not equal to itself).
fn round_trips(row: &PackageFilesIndex) -> bool {
  let files_ok = |files: &indexmap::IndexMap<String, pacquet_store::FileInfo>| {
    files.values().all(|f| f.size <= MAX_SAFE_INTEGER && f.checked_at.is_none_or(|c| !c.is_nan()))
  };
  files_ok(&row.files)
    && row.side_effects.iter().flatten().all(|(_, diff)| diff.added.as_ref().is_none_or(files_ok))
    && row.manifest.as_ref().is_none_or(json_ok)
}

fn json_ok(value: &serde_json::Value) -> bool {
  match value {
    // Doubles come back as the same double; integers past the exact range come back as doubles.
    serde_json::Value::Number(n) => {
      n.is_f64()
        || n.as_u64().or_else(|| n.as_i64().map(i64::unsigned_abs)).is_some_and(|u| u <= MAX_SAFE_INTEGER)
    }
    serde_json::Value::Array(items) => items.iter().all(json_ok),
    serde_json::Value::Object(map) => map.values().all(json_ok),
    _ => true,
  }
}
