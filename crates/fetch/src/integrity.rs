//! Subresource Integrity strings (`sha512-<base64>`, `sha1-…`), checked against bytes.
//!
//! Written here rather than with the `ssri` crate: we need only parse-and-compare over a
//! buffer we already hold, and `ssri` 9 pulls a second, older `miette`.

use base64::Engine;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Algo {
  Sha1,
  Sha256,
  Sha384,
  Sha512,
}

/// The strongest hash named in an SRI string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Integrity {
  algo: Algo,
  digest: Vec<u8>,
}

impl Integrity {
  pub fn parse(sri: &str) -> Option<Self> {
    sri
      .split_whitespace()
      .filter_map(|part| {
        let (algo, rest) = part.split_once('-')?;
        let algo = match algo {
          "sha1" => Algo::Sha1,
          "sha256" => Algo::Sha256,
          "sha384" => Algo::Sha384,
          "sha512" => Algo::Sha512,
          _ => return None,
        };
        // Options (`?foo`) may follow the digest.
        let b64 = rest.split('?').next()?;
        let digest = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
        Some(Integrity { algo, digest })
      })
      .max_by_key(|i| i.algo)
  }

  /// `Ok(())` or the SRI string of what the bytes actually hash to.
  pub fn check(&self, bytes: &[u8]) -> Result<(), String> {
    self.compare(&hash(self.algo, bytes))
  }

  /// Whether the digest is a SHA-512: unpacking may then hash the bytes itself, beside
  /// other messages ([`pacquet_store::sha512_many`]), and hand the result to [`Self::check_sha512`].
  pub(crate) fn is_sha512(&self) -> bool {
    self.algo == Algo::Sha512
  }

  /// [`Self::check`] for a SHA-512 its caller computed (only where [`Self::is_sha512`]).
  pub(crate) fn check_sha512(&self, sha512: &[u8; 64]) -> Result<(), String> {
    debug_assert!(self.is_sha512());
    self.compare(sha512)
  }

  fn compare(&self, actual: &[u8]) -> Result<(), String> {
    if actual == self.digest {
      Ok(())
    } else {
      Err(format!("{}-{}", self.algo_name(), base64::engine::general_purpose::STANDARD.encode(actual)))
    }
  }

  fn algo_name(&self) -> &'static str {
    match self.algo {
      Algo::Sha1 => "sha1",
      Algo::Sha256 => "sha256",
      Algo::Sha384 => "sha384",
      Algo::Sha512 => "sha512",
    }
  }
}

fn hash(algo: Algo, bytes: &[u8]) -> Vec<u8> {
  match algo {
    Algo::Sha1 => Sha1::digest(bytes).to_vec(),
    Algo::Sha256 => Sha256::digest(bytes).to_vec(),
    Algo::Sha384 => Sha384::digest(bytes).to_vec(),
    Algo::Sha512 => Sha512::digest(bytes).to_vec(),
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn checks_sha512_and_sha1() {
    let sha512 =
      format!("sha512-{}", base64::engine::general_purpose::STANDARD.encode(Sha512::digest(b"abc")));
    let sha1 = format!("sha1-{}", base64::engine::general_purpose::STANDARD.encode(Sha1::digest(b"abc")));
    assert!(Integrity::parse(&sha512).unwrap().check(b"abc").is_ok());
    assert!(Integrity::parse(&sha1).unwrap().check(b"abc").is_ok());
    assert!(Integrity::parse(&sha512).unwrap().check(b"abd").unwrap_err().starts_with("sha512-"));
    // The strongest algorithm wins when several are listed.
    let both = format!("{sha1} sha512-AAAA");
    assert!(Integrity::parse(&both).unwrap().check(b"abc").is_err());
    assert!(Integrity::parse("md5-xyz").is_none());
    assert!(Integrity::parse("sha512-!!!").is_none());
  }
}
