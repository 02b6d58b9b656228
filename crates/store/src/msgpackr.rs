//! Codec for `index.db` row values: a [`PackageFilesIndex`] in msgpackr's "records" dialect.
//!
//! pnpm 11 packs rows with `new Packr({ useRecords: true, moreTypes: true })` (msgpackr 2.0.5)
//! and pnpm 12 writes the same wire format from Rust, so a row must decode in JS to an object
//! with `files` / `sideEffects` / `added` as `Map`s and everything else as plain objects.
//!
//! Wire format, as msgpackr writes it with those options:
//! - A JS object is a *record*. The first object with a given ordered key list is written as
//!   `d4 72 <id>` (fixext1, type `'r'`), the key list as a msgpack array of strings, then the
//!   values. Later objects with the same key list are the bare id byte plus the values. Ids run
//!   `0x40..=0x7f` in first-seen (pre-order) order and restart at `0x40` for every row; after 64
//!   definitions the counter wraps to `0x40` and the oldest definition is overwritten, so a
//!   shape whose id was taken is defined again on its next use.
//! - Because id bytes overlap positive fixints, positive integers are fixints only below 64;
//!   64..=255 is `uint8`, then `uint16`, `uint32`. Negative int32 values use negative fixint or
//!   `int8/16/32`. Any other number (beyond 32 bits or fractional) is `float64`: msgpackr never
//!   writes 64-bit integers for JS numbers, and pnpm must not get a `BigInt` back.
//! - JS `Map`s are plain msgpack maps; arrays and strings are the smallest msgpack form by length
//!   (strings by UTF-8 byte length, `str8` included). `undefined` is `d4 00 00`.
//!
//! The encoder emits the row as pnpm 12 does (field order `algo, requiresBuild?, manifest?, files,
//! sideEffects?`; file fields `digest, mode, size[, checkedAt]`; diff fields `added?, deleted?`;
//! absent options are left out of the record, not written as `undefined`). Given a JS value of
//! that shape, msgpackr produces byte-identical output. Map entries keep the order of the
//! [`IndexMap`]s; keys of manifest objects follow JS property order (integer-like keys first), as
//! the object pnpm builds from `JSON.parse` would have them.
//!
//! The decoder follows msgpackr's reader: a byte in `0x40..=0x7f` is a record reference if that
//! id is defined at this point of the stream and a fixint otherwise. That one rule reads pnpm 11
//! rows (different field orders, `manifest: undefined`), pnpm 12 rows, and legacy plain-msgpack
//! rows where every struct is a map.

use crate::row::{FileInfo, PackageFilesIndex, SideEffectsDiff};
use indexmap::IndexMap;
use serde_json::{Map as JsonMap, Number, Value as Json};
use std::{borrow::Cow, collections::HashMap, fmt::Write as _, rc::Rc};

/// msgpackr's extension type for record definitions (`'r'`).
const RECORD_EXT: u8 = 0x72;
/// First record id; ids are `RECORD_BASE + 0..RECORD_IDS`.
const RECORD_BASE: u8 = 0x40;
/// msgpackr's default `maxOwnStructures` when no shared structures are configured.
const RECORD_IDS: usize = 64;
/// Nesting limit for decoding; real rows are a handful of levels deep, and recursion must not
/// overflow the stack on hostile input.
const MAX_DEPTH: usize = 128;
/// Integers with magnitude up to this are exactly representable in an f64 (JS "safe integers").
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

const TOP_FIELDS: [&str; 5] = ["algo", "requiresBuild", "manifest", "files", "sideEffects"];
const FILE_FIELDS: [&str; 4] = ["digest", "mode", "size", "checkedAt"];
const DIFF_FIELDS: [&str; 2] = ["added", "deleted"];

/// Why a row could not be decoded. Decoding never panics; every malformed input maps here.
#[derive(Debug, Clone, PartialEq, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum DecodeError {
  #[error("index row ends unexpectedly at byte {offset}")]
  #[diagnostic(code(ERR_PACQUET_STORE_INDEX_ROW_TRUNCATED))]
  UnexpectedEof { offset: usize },

  #[error("index row has unsupported msgpack byte 0x{byte:02x} at byte {offset}")]
  #[diagnostic(code(ERR_PACQUET_STORE_INDEX_ROW_UNSUPPORTED))]
  UnsupportedByte { byte: u8, offset: usize },

  #[error("index row has unsupported msgpack extension type {ext_type} at byte {offset}")]
  #[diagnostic(code(ERR_PACQUET_STORE_INDEX_ROW_UNSUPPORTED))]
  UnsupportedExtension { ext_type: i8, offset: usize },

  #[error("index row has a string that is not UTF-8 at byte {offset}")]
  #[diagnostic(code(ERR_PACQUET_STORE_INDEX_ROW_INVALID_UTF8))]
  InvalidUtf8 { offset: usize },

  #[error("index row has a record definition whose keys are not an array of strings at byte {offset}")]
  #[diagnostic(code(ERR_PACQUET_STORE_INDEX_ROW_INVALID_RECORD))]
  InvalidRecordKeys { offset: usize },

  #[error("index row nests deeper than {MAX_DEPTH} levels at byte {offset}")]
  #[diagnostic(code(ERR_PACQUET_STORE_INDEX_ROW_TOO_DEEP))]
  TooDeep { offset: usize },

  #[error("index row has {count} bytes after its value")]
  #[diagnostic(code(ERR_PACQUET_STORE_INDEX_ROW_TRAILING_BYTES))]
  TrailingBytes { count: usize },

  #[error("index row repeats record keys too often to expand")]
  #[diagnostic(code(ERR_PACQUET_STORE_INDEX_ROW_TOO_LARGE))]
  TooLarge,

  #[error("index row lacks `{field}`")]
  #[diagnostic(code(ERR_PACQUET_STORE_INDEX_ROW_MISSING_FIELD))]
  MissingField { field: &'static str },

  #[error("index row field `{field}` is not {expected}")]
  #[diagnostic(code(ERR_PACQUET_STORE_INDEX_ROW_INVALID_FIELD))]
  InvalidField { field: &'static str, expected: &'static str },
}

// ---------------------------------------------------------------------------------------------
// Encoder
// ---------------------------------------------------------------------------------------------

/// Encode a row exactly as msgpackr (`useRecords: true, moreTypes: true`) encodes the equivalent
/// JS value.
///
/// # Panics
/// Only if a string, map or array is longer than msgpack can express (`u32::MAX`).
pub fn encode(row: &PackageFilesIndex) -> Vec<u8> {
  let mut enc = Encoder::new();
  enc.row(row);
  enc.out
}

struct Encoder {
  out: Vec<u8>,
  /// Shape key → record id currently holding that shape.
  ids: HashMap<String, u8>,
  /// Shape key held by each record id, so a wrapped-around id can forget its old shape.
  holders: Vec<Option<String>>,
  next: usize,
  key: String,
}

impl Encoder {
  fn new() -> Self {
    Encoder {
      out: Vec::with_capacity(512),
      ids: HashMap::new(),
      holders: vec![None; RECORD_IDS],
      next: 0,
      key: String::new(),
    }
  }

  fn row(&mut self, row: &PackageFilesIndex) {
    let [algo, requires_build, manifest, files, side_effects] = TOP_FIELDS;
    let mut names = Vec::with_capacity(5);
    names.push(algo);
    if row.requires_build.is_some() {
      names.push(requires_build);
    }
    if row.manifest.is_some() {
      names.push(manifest);
    }
    names.push(files);
    if row.side_effects.is_some() {
      names.push(side_effects);
    }
    self.record_header(&names);

    self.str(&row.algo);
    if let Some(value) = row.requires_build {
      self.bool(value);
    }
    if let Some(value) = &row.manifest {
      self.json(value);
    }
    self.files(&row.files);
    if let Some(side_effects) = &row.side_effects {
      self.map_header(side_effects.len());
      for (cache_key, diff) in side_effects {
        self.str(cache_key);
        self.diff(diff);
      }
    }
  }

  fn files(&mut self, files: &IndexMap<String, FileInfo>) {
    self.map_header(files.len());
    for (path, info) in files {
      self.str(path);
      let names = if info.checked_at.is_some() { &FILE_FIELDS[..] } else { &FILE_FIELDS[..3] };
      self.record_header(names);
      self.str(&info.digest);
      self.uint(u64::from(info.mode));
      self.uint(info.size);
      if let Some(checked_at) = info.checked_at {
        self.number(checked_at);
      }
    }
  }

  fn diff(&mut self, diff: &SideEffectsDiff) {
    let names: &[&str] = match (diff.added.is_some(), diff.deleted.is_some()) {
      (true, true) => &DIFF_FIELDS,
      (true, false) => &DIFF_FIELDS[..1],
      (false, true) => &DIFF_FIELDS[1..],
      (false, false) => &[],
    };
    self.record_header(names);
    if let Some(added) = &diff.added {
      self.files(added);
    }
    if let Some(deleted) = &diff.deleted {
      self.array_header(deleted.len());
      for path in deleted {
        self.str(path);
      }
    }
  }

  fn json(&mut self, value: &Json) {
    match value {
      Json::Null => self.out.push(0xc0),
      Json::Bool(b) => self.bool(*b),
      Json::Number(n) => self.json_number(n),
      Json::String(s) => self.str(s),
      Json::Array(items) => {
        self.array_header(items.len());
        for item in items {
          self.json(item);
        }
      }
      Json::Object(map) => {
        let entries = js_property_order(map);
        let names: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
        self.record_header(&names);
        for (_, item) in entries {
          self.json(item);
        }
      }
    }
  }

  fn json_number(&mut self, n: &Number) {
    if let Some(u) = n.as_u64() {
      self.uint(u);
    } else if let Some(i) = n.as_i64() {
      // Only negative values reach here (non-negative ones are u64 above).
      if i >= i64::from(i32::MIN) {
        self.negative(i);
      } else {
        self.float(i as f64);
      }
    } else if let Some(f) = n.as_f64() {
      self.number(f);
    }
  }

  /// A JS number, with msgpackr's choice of representation.
  fn number(&mut self, value: f64) {
    let integral = value.fract() == 0.0;
    if integral && (0.0..4_294_967_296.0).contains(&value) {
      // `-0.0` lands here too and becomes 0, as `-0 >>> 0 === -0` holds in JS.
      self.uint(value as u64);
    } else if integral && (-2_147_483_648.0..0.0).contains(&value) {
      self.negative(value as i64);
    } else {
      self.float(value);
    }
  }

  /// A non-negative integer; past 32 bits msgpackr writes a double, never a `uint64`.
  fn uint(&mut self, value: u64) {
    if value < u64::from(RECORD_BASE) {
      self.out.push(value as u8);
    } else if value <= 0xff {
      self.out.extend_from_slice(&[0xcc, value as u8]);
    } else if value <= 0xffff {
      self.out.push(0xcd);
      self.out.extend_from_slice(&(value as u16).to_be_bytes());
    } else if value <= 0xffff_ffff {
      self.out.push(0xce);
      self.out.extend_from_slice(&(value as u32).to_be_bytes());
    } else {
      self.float(value as f64);
    }
  }

  /// A negative integer within int32 range.
  fn negative(&mut self, value: i64) {
    if value >= -32 {
      self.out.push(value as i8 as u8);
    } else if value >= -128 {
      self.out.extend_from_slice(&[0xd0, value as i8 as u8]);
    } else if value >= -32768 {
      self.out.push(0xd1);
      self.out.extend_from_slice(&(value as i16).to_be_bytes());
    } else {
      self.out.push(0xd2);
      self.out.extend_from_slice(&(value as i32).to_be_bytes());
    }
  }

  fn float(&mut self, value: f64) {
    self.out.push(0xcb);
    self.out.extend_from_slice(&value.to_be_bytes());
  }

  fn bool(&mut self, value: bool) {
    self.out.push(if value { 0xc3 } else { 0xc2 });
  }

  fn str(&mut self, value: &str) {
    let len = value.len();
    if len < 32 {
      self.out.push(0xa0 | len as u8);
    } else if len <= 0xff {
      self.out.extend_from_slice(&[0xd9, len as u8]);
    } else if len <= 0xffff {
      self.out.push(0xda);
      self.out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
      self.out.push(0xdb);
      self.out.extend_from_slice(&len_u32(len).to_be_bytes());
    }
    self.out.extend_from_slice(value.as_bytes());
  }

  fn array_header(&mut self, len: usize) {
    self.container_header(len, 0x90, 0xdc, 0xdd);
  }

  fn map_header(&mut self, len: usize) {
    self.container_header(len, 0x80, 0xde, 0xdf);
  }

  fn container_header(&mut self, len: usize, fix: u8, marker16: u8, marker32: u8) {
    if len < 16 {
      self.out.push(fix | len as u8);
    } else if len <= 0xffff {
      self.out.push(marker16);
      self.out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
      self.out.push(marker32);
      self.out.extend_from_slice(&len_u32(len).to_be_bytes());
    }
  }

  /// Writes the id of an object's shape, defining it first if this stream has not (or no
  /// longer) got an id for it. Must run before the object's values so ids follow pre-order.
  fn record_header(&mut self, names: &[&str]) {
    // Length-prefixed so that distinct key lists can never produce the same key.
    self.key.clear();
    for name in names {
      let _ = write!(self.key, "{}:{name}", name.len());
    }
    if let Some(&id) = self.ids.get(self.key.as_str()) {
      self.out.push(id);
      return;
    }
    let slot = self.next;
    self.next = (self.next + 1) % RECORD_IDS;
    if let Some(old) = self.holders[slot].take() {
      self.ids.remove(&old);
    }
    let id = RECORD_BASE + slot as u8;
    self.ids.insert(self.key.clone(), id);
    self.holders[slot] = Some(self.key.clone());
    self.out.extend_from_slice(&[0xd4, RECORD_EXT, id]);
    self.array_header(names.len());
    for name in names {
      self.str(name);
    }
  }
}

/// msgpack cannot express lengths past `u32::MAX`; a row that large cannot exist in practice.
fn len_u32(len: usize) -> u32 {
  u32::try_from(len).unwrap_or_else(|_| panic!("msgpack length {len} exceeds u32::MAX"))
}

/// Key order of the JS object `JSON.parse` would build: array-index keys ascending, then the
/// rest in insertion order.
fn js_property_order(map: &JsonMap<String, Json>) -> Vec<(&String, &Json)> {
  let mut entries: Vec<(&String, &Json)> = map.iter().collect();
  if entries.iter().any(|(k, _)| array_index(k).is_some()) {
    // Stable sort: non-index keys keep their relative order.
    entries.sort_by_key(|(k, _)| array_index(k).map_or((1, 0), |i| (0, i)));
  }
  entries
}

/// `Some(n)` if `key` is the canonical decimal form of an integer below 2^32 - 1.
fn array_index(key: &str) -> Option<u32> {
  if key.is_empty() || key.len() > 10 || !key.bytes().all(|b| b.is_ascii_digit()) {
    return None;
  }
  if key.len() > 1 && key.starts_with('0') {
    return None;
  }
  key.parse::<u32>().ok().filter(|&n| n != u32::MAX)
}

// ---------------------------------------------------------------------------------------------
// Decoder
// ---------------------------------------------------------------------------------------------

/// Decode a row written by pnpm 11, pnpm 12, this encoder, or an older plain-msgpack writer.
///
/// # Errors
/// [`DecodeError`] for malformed msgpack or a value that is not a `PackageFilesIndex`; callers
/// should treat it as a cache miss. Never panics.
pub fn decode(bytes: &[u8]) -> Result<PackageFilesIndex, DecodeError> {
  let mut reader = Reader { buf: bytes, pos: 0, records: vec![None; RECORD_IDS], depth: 0 };
  let value = reader.value()?;
  let count = bytes.len() - reader.pos;
  if count != 0 {
    return Err(DecodeError::TrailingBytes { count });
  }
  Schema { budget: bytes.len().saturating_mul(8).saturating_add(1 << 20) }.row(value)
}

/// A decoded msgpack value, before it is matched against the row schema.
#[derive(Debug)]
enum Value {
  Nil,
  /// msgpackr's `undefined` (`d4 00 00`); pnpm 11 writes it for an absent `manifest`.
  Undefined,
  Bool(bool),
  UInt(u64),
  Int(i64),
  Float(f64),
  Str(String),
  Array(Vec<Value>),
  Map(Vec<(Value, Value)>),
  /// A JS object: the shared key list of its record id and its values.
  Record(Rc<[String]>, Vec<Value>),
}

struct Reader<'a> {
  buf: &'a [u8],
  pos: usize,
  /// Key lists defined so far, by `id - 0x40`.
  records: Vec<Option<Rc<[String]>>>,
  depth: usize,
}

impl<'a> Reader<'a> {
  fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
    let end = self.pos.checked_add(n).filter(|&end| end <= self.buf.len());
    let end = end.ok_or(DecodeError::UnexpectedEof { offset: self.buf.len() })?;
    let slice = &self.buf[self.pos..end];
    self.pos = end;
    Ok(slice)
  }

  fn byte(&mut self) -> Result<u8, DecodeError> {
    Ok(self.take(1)?[0])
  }

  fn be<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
    let mut out = [0; N];
    out.copy_from_slice(self.take(N)?);
    Ok(out)
  }

  fn len16(&mut self) -> Result<usize, DecodeError> {
    Ok(usize::from(u16::from_be_bytes(self.be()?)))
  }

  fn len32(&mut self) -> Result<usize, DecodeError> {
    // A length beyond the address space can only be followed by a truncation error anyway.
    Ok(usize::try_from(u32::from_be_bytes(self.be()?)).unwrap_or(usize::MAX))
  }

  /// Capacity for `n` upcoming values: each takes at least one byte, so never reserve more than
  /// the bytes left (a forged length must not allocate gigabytes).
  fn capacity(&self, n: usize) -> usize {
    n.min(self.buf.len() - self.pos)
  }

  fn value(&mut self) -> Result<Value, DecodeError> {
    let offset = self.pos;
    if self.depth >= MAX_DEPTH {
      return Err(DecodeError::TooDeep { offset });
    }
    self.depth += 1;
    let result = self.value_inner(offset);
    self.depth -= 1;
    result
  }

  fn value_inner(&mut self, offset: usize) -> Result<Value, DecodeError> {
    let marker = self.byte()?;
    Ok(match marker {
      0x00..=0x3f => Value::UInt(u64::from(marker)),
      0x40..=0x7f => match self.records[usize::from(marker - RECORD_BASE)].clone() {
        Some(keys) => self.record_values(keys)?,
        // Without a definition the byte is an ordinary fixint, as in plain msgpack.
        None => Value::UInt(u64::from(marker)),
      },
      0x80..=0x8f => self.map(usize::from(marker & 0x0f))?,
      0x90..=0x9f => self.array(usize::from(marker & 0x0f))?,
      0xa0..=0xbf => self.string(usize::from(marker & 0x1f))?,
      0xc0 => Value::Nil,
      0xc2 => Value::Bool(false),
      0xc3 => Value::Bool(true),
      0xca => Value::Float(f64::from(f32::from_be_bytes(self.be()?))),
      0xcb => Value::Float(f64::from_be_bytes(self.be()?)),
      0xcc => Value::UInt(u64::from(self.byte()?)),
      0xcd => Value::UInt(u64::from(u16::from_be_bytes(self.be()?))),
      0xce => Value::UInt(u64::from(u32::from_be_bytes(self.be()?))),
      0xcf => Value::UInt(u64::from_be_bytes(self.be()?)),
      0xd0 => Value::Int(i64::from(i8::from_be_bytes(self.be()?))),
      0xd1 => Value::Int(i64::from(i16::from_be_bytes(self.be()?))),
      0xd2 => Value::Int(i64::from(i32::from_be_bytes(self.be()?))),
      0xd3 => Value::Int(i64::from_be_bytes(self.be()?)),
      0xd4 => {
        let [ext_type, data] = self.be()?;
        match ext_type {
          RECORD_EXT => self.record_definition(data)?,
          0 => Value::Undefined,
          _ => return Err(DecodeError::UnsupportedExtension { ext_type: ext_type as i8, offset }),
        }
      }
      // Other extensions (incl. two-byte record ids, which pnpm's options never produce) have no
      // place in a row.
      0xc7..=0xc9 | 0xd5..=0xd8 => {
        let ext_offset = match marker {
          0xc7 => 2,
          0xc8 => 3,
          0xc9 => 5,
          _ => 1,
        };
        let ext_type = self.buf.get(offset + ext_offset).copied();
        let ext_type = ext_type.ok_or(DecodeError::UnexpectedEof { offset: self.buf.len() })?;
        return Err(DecodeError::UnsupportedExtension { ext_type: ext_type as i8, offset });
      }
      0xd9 => {
        let len = usize::from(self.byte()?);
        self.string(len)?
      }
      0xda => {
        let len = self.len16()?;
        self.string(len)?
      }
      0xdb => {
        let len = self.len32()?;
        self.string(len)?
      }
      0xdc => {
        let len = self.len16()?;
        self.array(len)?
      }
      0xdd => {
        let len = self.len32()?;
        self.array(len)?
      }
      0xde => {
        let len = self.len16()?;
        self.map(len)?
      }
      0xdf => {
        let len = self.len32()?;
        self.map(len)?
      }
      0xe0..=0xff => Value::Int(i64::from(marker as i8)),
      // 0xc1 (never used) and bin 8/16/32, which no row contains.
      0xc1 | 0xc4..=0xc6 => return Err(DecodeError::UnsupportedByte { byte: marker, offset }),
    })
  }

  fn string(&mut self, len: usize) -> Result<Value, DecodeError> {
    let offset = self.pos;
    let bytes = self.take(len)?;
    let text = std::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8 { offset })?;
    Ok(Value::Str(text.to_owned()))
  }

  fn array(&mut self, len: usize) -> Result<Value, DecodeError> {
    let mut items = Vec::with_capacity(self.capacity(len));
    for _ in 0..len {
      items.push(self.value()?);
    }
    Ok(Value::Array(items))
  }

  fn map(&mut self, len: usize) -> Result<Value, DecodeError> {
    let mut entries = Vec::with_capacity(self.capacity(len));
    for _ in 0..len {
      let key = self.value()?;
      entries.push((key, self.value()?));
    }
    Ok(Value::Map(entries))
  }

  fn record_definition(&mut self, id: u8) -> Result<Value, DecodeError> {
    let offset = self.pos;
    let Value::Array(items) = self.value()? else {
      return Err(DecodeError::InvalidRecordKeys { offset });
    };
    let keys = items
      .into_iter()
      .map(|item| match item {
        Value::Str(key) => Ok(key),
        _ => Err(DecodeError::InvalidRecordKeys { offset }),
      })
      .collect::<Result<Rc<[String]>, _>>()?;
    // msgpackr masks the id the same way; a redefinition replaces the old key list.
    self.records[usize::from(id & 0x3f)] = Some(Rc::clone(&keys));
    self.record_values(keys)
  }

  fn record_values(&mut self, keys: Rc<[String]>) -> Result<Value, DecodeError> {
    let mut values = Vec::with_capacity(self.capacity(keys.len()));
    for _ in 0..keys.len() {
      values.push(self.value()?);
    }
    Ok(Value::Record(keys, values))
  }
}

// ---------------------------------------------------------------------------------------------
// Schema
// ---------------------------------------------------------------------------------------------

/// Matches decoded values against the row schema.
///
/// Record keys are shared between all instances of a shape, so copying them into owned strings
/// could turn a small hostile row (one long key, referenced many times) into gigabytes. Owned
/// copies of shared keys are therefore charged against a budget proportional to the input.
struct Schema {
  budget: usize,
}

impl Schema {
  fn own(&mut self, key: Cow<'_, str>) -> Result<String, DecodeError> {
    if let Cow::Borrowed(shared) = &key {
      self.budget = self.budget.checked_sub(shared.len()).ok_or(DecodeError::TooLarge)?;
    }
    Ok(key.into_owned())
  }

  fn row(&mut self, value: Value) -> Result<PackageFilesIndex, DecodeError> {
    let mut algo = None;
    let mut requires_build = None;
    let mut manifest = None;
    let mut files = None;
    let mut side_effects = None;
    for_each_entry(value, "(row)", |key, value| {
      match &*key {
        "algo" => algo = Some(to_string(value, "algo")?),
        "requiresBuild" => {
          requires_build = match present(value) {
            Some(Value::Bool(b)) => Some(b),
            None => None,
            Some(_) => {
              return Err(DecodeError::InvalidField { field: "requiresBuild", expected: "a boolean" })
            }
          }
        }
        "manifest" => manifest = present(value).map(|v| self.json(v, "manifest")).transpose()?.flatten(),
        "files" => files = Some(self.files(value, "files")?),
        "sideEffects" => side_effects = present(value).map(|v| self.side_effects(v)).transpose()?,
        _ => {}
      }
      Ok(())
    })?;
    Ok(PackageFilesIndex {
      algo: algo.ok_or(DecodeError::MissingField { field: "algo" })?,
      requires_build,
      manifest,
      files: files.ok_or(DecodeError::MissingField { field: "files" })?,
      side_effects,
    })
  }

  fn side_effects(&mut self, value: Value) -> Result<IndexMap<String, SideEffectsDiff>, DecodeError> {
    let mut out = IndexMap::new();
    for_each_entry(value, "sideEffects", |cache_key, diff| {
      let mut parsed = SideEffectsDiff::default();
      for_each_entry(diff, "sideEffects[]", |key, value| {
        match &*key {
          "added" => {
            parsed.added = present(value).map(|v| self.files(v, "sideEffects[].added")).transpose()?
          }
          "deleted" => parsed.deleted = present(value).map(to_deleted).transpose()?,
          _ => {}
        }
        Ok(())
      })?;
      out.insert(self.own(cache_key)?, parsed);
      Ok(())
    })?;
    Ok(out)
  }

  fn files(&mut self, value: Value, field: &'static str) -> Result<IndexMap<String, FileInfo>, DecodeError> {
    let mut out = IndexMap::new();
    for_each_entry(value, field, |path, info| {
      let info = to_file_info(info)?;
      out.insert(self.own(path)?, info);
      Ok(())
    })?;
    Ok(out)
  }

  /// JSON for a manifest value; `None` for `undefined`, which JS drops from objects.
  fn json(&mut self, value: Value, field: &'static str) -> Result<Option<Json>, DecodeError> {
    Ok(Some(match value {
      Value::Undefined => return Ok(None),
      Value::Nil => Json::Null,
      Value::Bool(b) => Json::Bool(b),
      Value::UInt(u) => Json::from(u),
      Value::Int(i) => Json::from(i),
      Value::Float(f) => float_to_json(f),
      Value::Str(s) => Json::String(s),
      Value::Array(items) => {
        let mut out = Vec::with_capacity(items.len());
        for item in items {
          // As in `JSON.stringify`, `undefined` inside an array becomes `null`.
          out.push(self.json(item, field)?.unwrap_or(Json::Null));
        }
        Json::Array(out)
      }
      value @ (Value::Map(_) | Value::Record(..)) => {
        let mut map = JsonMap::new();
        for_each_entry(value, field, |key, item| {
          match self.json(item, field)? {
            Some(item) => {
              map.insert(self.own(key)?, item);
            }
            None => {
              map.shift_remove(&*key);
            }
          }
          Ok(())
        })?;
        Json::Object(map)
      }
    }))
  }
}

/// Visits the entries of a record or a string-keyed map (legacy rows, or a `Map` where an object
/// was expected). Record keys are lent, map keys handed over. Duplicate keys reach the visitor
/// in order, so later ones win, as with JS assignment.
fn for_each_entry(
  value: Value,
  field: &'static str,
  mut visit: impl FnMut(Cow<'_, str>, Value) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
  match value {
    Value::Record(keys, values) => {
      keys.iter().zip(values).try_for_each(|(key, value)| visit(Cow::Borrowed(key), value))
    }
    Value::Map(pairs) => pairs.into_iter().try_for_each(|(key, value)| match key {
      Value::Str(key) => visit(Cow::Owned(key), value),
      _ => Err(DecodeError::InvalidField { field, expected: "an object with string keys" }),
    }),
    _ => Err(DecodeError::InvalidField { field, expected: "an object" }),
  }
}

/// `None` for a field holding `null` or `undefined`, which older writers used for absent options.
fn present(value: Value) -> Option<Value> {
  match value {
    Value::Nil | Value::Undefined => None,
    value => Some(value),
  }
}

fn to_deleted(value: Value) -> Result<Vec<String>, DecodeError> {
  match value {
    Value::Array(items) => items.into_iter().map(|item| to_string(item, "sideEffects[].deleted[]")).collect(),
    _ => Err(DecodeError::InvalidField { field: "sideEffects[].deleted", expected: "an array" }),
  }
}

fn to_file_info(value: Value) -> Result<FileInfo, DecodeError> {
  let mut digest = None;
  let mut mode = None;
  let mut size = None;
  let mut checked_at = None;
  for_each_entry(value, "files[]", |key, value| {
    match &*key {
      "digest" => digest = Some(to_string(value, "digest")?),
      "mode" => {
        let invalid = DecodeError::InvalidField { field: "mode", expected: "a 32-bit unsigned integer" };
        mode = Some(u32::try_from(to_u64(value, "mode")?).map_err(|_| invalid)?);
      }
      "size" => size = Some(to_u64(value, "size")?),
      "checkedAt" => checked_at = present(value).map(|v| to_f64(v, "checkedAt")).transpose()?,
      _ => {}
    }
    Ok(())
  })?;
  Ok(FileInfo {
    digest: digest.ok_or(DecodeError::MissingField { field: "digest" })?,
    mode: mode.ok_or(DecodeError::MissingField { field: "mode" })?,
    size: size.ok_or(DecodeError::MissingField { field: "size" })?,
    checked_at,
  })
}

fn to_string(value: Value, field: &'static str) -> Result<String, DecodeError> {
  match value {
    Value::Str(s) => Ok(s),
    _ => Err(DecodeError::InvalidField { field, expected: "a string" }),
  }
}

/// Integers may arrive as doubles (msgpackr writes anything past 32 bits as `float64`).
fn to_u64(value: Value, field: &'static str) -> Result<u64, DecodeError> {
  let invalid = DecodeError::InvalidField { field, expected: "a non-negative integer" };
  match value {
    Value::UInt(u) => Ok(u),
    Value::Int(i) => u64::try_from(i).map_err(|_| invalid),
    // 2^64 is exact in f64; anything below it with no fraction converts losslessly.
    Value::Float(f) if f.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&f) => Ok(f as u64),
    _ => Err(invalid),
  }
}

fn to_f64(value: Value, field: &'static str) -> Result<f64, DecodeError> {
  match value {
    Value::UInt(u) => Ok(u as f64),
    Value::Int(i) => Ok(i as f64),
    Value::Float(f) => Ok(f),
    _ => Err(DecodeError::InvalidField { field, expected: "a number" }),
  }
}

/// JS has one number type, so an integral double is the integer it spells (within the safe
/// range, where that is exact); other doubles stay floats and non-finite ones become `null`.
fn float_to_json(f: f64) -> Json {
  if f.fract() == 0.0 && f.abs() <= MAX_SAFE_INTEGER {
    if f >= 0.0 {
      return Json::from(f as u64);
    }
    return Json::from(f as i64);
  }
  Number::from_f64(f).map_or(Json::Null, Json::Number)
}

#[cfg(test)]
mod tests;
