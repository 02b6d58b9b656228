//! SHA-512 of many messages at once: eight lanes of AVX-512, one message per lane.
//!
//! A cold install names every file of every tarball by its SHA-512, and one SHA-512 is a
//! chain of dependent rounds that a core cannot overlap: hashing was 15 % of a cold install's
//! CPU at about 0.9 GB/s (the `sha2` crate, OpenSSL and ring all measured the same here).
//! Files of one tarball are independent messages, so eight of them go through the rounds
//! side by side in the 64-bit lanes of AVX-512 registers; a lane that finishes its message
//! takes the next. No maintained crate hashes several messages at once; where AVX-512 is
//! missing, each message goes through `sha2`.

/// The SHA-512 of each message, in order.
pub fn sha512_many(messages: &[&[u8]]) -> Vec<[u8; 64]> {
  #[cfg(target_arch = "x86_64")]
  if messages.len() >= MIN_LANED && std::arch::is_x86_feature_detected!("avx512f") {
    let mut out = vec![[0u8; 64]; messages.len()];
    // Longest first. A message longer than a third of what is left would keep one lane
    // busy long after the others ran dry: it goes alone, the rest side by side. (A third:
    // simulating the lanes over alotta's files, it beat an eighth, a quarter and a half
    // whether a lane runs at 0.4 or 0.55 of a single hash's speed.)
    let mut order: Vec<usize> = (0..messages.len()).collect();
    order.sort_unstable_by_key(|&i| std::cmp::Reverse(messages[i].len()));
    let mut left: usize = messages.iter().map(|m| m.len()).sum();
    let mut alone = 0;
    while alone < order.len() && order.len() - alone >= MIN_LANED {
      let len = messages[order[alone]].len();
      if len * 3 <= left {
        break;
      }
      out[order[alone]] = one(messages[order[alone]]);
      left -= len;
      alone += 1;
    }
    let rest = &order[alone..];
    if rest.len() < MIN_LANED {
      for &i in rest {
        out[i] = one(messages[i]);
      }
    } else {
      let laned: Vec<&[u8]> = rest.iter().map(|&i| messages[i]).collect();
      // SAFETY: the CPU has AVX-512F, checked above.
      let digests = unsafe { x8::hash(&laned) };
      for (&i, digest) in rest.iter().zip(digests) {
        out[i] = digest;
      }
    }
    return out;
  }
  messages.iter().map(|m| one(m)).collect()
}

/// Fewer messages than this fill too few of the eight lanes to beat hashing them one by one
/// (a lane runs at 0.4–0.55 of a single hash's speed on the machines measured).
#[cfg(target_arch = "x86_64")]
const MIN_LANED: usize = 4;

fn one(message: &[u8]) -> [u8; 64] {
  use sha2::Digest;
  sha2::Sha512::digest(message).into()
}

#[cfg(target_arch = "x86_64")]
mod x8 {
  use std::arch::x86_64::*;

  /// FIPS 180-4 §4.2.3.
  const K: [u64; 80] = [
    0x428a2f98d728ae22,
    0x7137449123ef65cd,
    0xb5c0fbcfec4d3b2f,
    0xe9b5dba58189dbbc,
    0x3956c25bf348b538,
    0x59f111f1b605d019,
    0x923f82a4af194f9b,
    0xab1c5ed5da6d8118,
    0xd807aa98a3030242,
    0x12835b0145706fbe,
    0x243185be4ee4b28c,
    0x550c7dc3d5ffb4e2,
    0x72be5d74f27b896f,
    0x80deb1fe3b1696b1,
    0x9bdc06a725c71235,
    0xc19bf174cf692694,
    0xe49b69c19ef14ad2,
    0xefbe4786384f25e3,
    0x0fc19dc68b8cd5b5,
    0x240ca1cc77ac9c65,
    0x2de92c6f592b0275,
    0x4a7484aa6ea6e483,
    0x5cb0a9dcbd41fbd4,
    0x76f988da831153b5,
    0x983e5152ee66dfab,
    0xa831c66d2db43210,
    0xb00327c898fb213f,
    0xbf597fc7beef0ee4,
    0xc6e00bf33da88fc2,
    0xd5a79147930aa725,
    0x06ca6351e003826f,
    0x142929670a0e6e70,
    0x27b70a8546d22ffc,
    0x2e1b21385c26c926,
    0x4d2c6dfc5ac42aed,
    0x53380d139d95b3df,
    0x650a73548baf63de,
    0x766a0abb3c77b2a8,
    0x81c2c92e47edaee6,
    0x92722c851482353b,
    0xa2bfe8a14cf10364,
    0xa81a664bbc423001,
    0xc24b8b70d0f89791,
    0xc76c51a30654be30,
    0xd192e819d6ef5218,
    0xd69906245565a910,
    0xf40e35855771202a,
    0x106aa07032bbd1b8,
    0x19a4c116b8d2d0c8,
    0x1e376c085141ab53,
    0x2748774cdf8eeb99,
    0x34b0bcb5e19b48a8,
    0x391c0cb3c5c95a63,
    0x4ed8aa4ae3418acb,
    0x5b9cca4f7763e373,
    0x682e6ff3d6b2b8a3,
    0x748f82ee5defb2fc,
    0x78a5636f43172f60,
    0x84c87814a1f0ab72,
    0x8cc702081a6439ec,
    0x90befffa23631e28,
    0xa4506cebde82bde9,
    0xbef9a3f7b2c67915,
    0xc67178f2e372532b,
    0xca273eceea26619c,
    0xd186b8c721c0c207,
    0xeada7dd6cde0eb1e,
    0xf57d4f7fee6ed178,
    0x06f067aa72176fba,
    0x0a637dc5a2c898a6,
    0x113f9804bef90dae,
    0x1b710b35131c471b,
    0x28db77f523047d84,
    0x32caab7b40c72493,
    0x3c9ebe0a15c9bebc,
    0x431d67c49c100d4c,
    0x4cc5d4becb3e42b6,
    0x597f299cfc657e2a,
    0x5fcb6fab3ad6faec,
    0x6c44198c4a475817,
  ];

  /// FIPS 180-4 §5.3.5.
  const H0: [u64; 8] = [
    0x6a09e667f3bcc908,
    0xbb67ae8584caa73b,
    0x3c6ef372fe94f82b,
    0xa54ff53a5f1d36f1,
    0x510e527fade682d1,
    0x9b05688c2b3e6c1f,
    0x1f83d9abfb41bd6b,
    0x5be0cd19137e2179,
  ];

  const LANES: usize = 8;

  /// What a lane is hashing: message `index`, `done` of its `blocks` 128-byte blocks done;
  /// the last one or two (padding and length) are in `tail`.
  struct Lane {
    index: usize,
    done: usize,
    full: usize,
    blocks: usize,
    tail: [u8; 256],
  }

  impl Lane {
    fn new(index: usize, message: &[u8]) -> Lane {
      let full = message.len() / 128;
      let rest = &message[full * 128..];
      // One 0x80 byte and the 16-byte bit length must fit after the data.
      let tail_blocks = if rest.len() + 17 <= 128 { 1 } else { 2 };
      let mut tail = [0u8; 256];
      tail[..rest.len()].copy_from_slice(rest);
      tail[rest.len()] = 0x80;
      let bits = (message.len() as u128) * 8;
      let end = tail_blocks * 128;
      tail[end - 16..end].copy_from_slice(&bits.to_be_bytes());
      Lane { index, done: 0, full, blocks: full + tail_blocks, tail }
    }

    fn block<'a>(&'a self, message: &'a [u8]) -> &'a [u8] {
      if self.done < self.full {
        &message[self.done * 128..(self.done + 1) * 128]
      } else {
        let at = (self.done - self.full) * 128;
        &self.tail[at..at + 128]
      }
    }
  }

  /// # Safety
  /// The CPU must have AVX-512F.
  #[target_feature(enable = "avx512f")]
  pub unsafe fn hash(messages: &[&[u8]]) -> Vec<[u8; 64]> {
    let mut out = vec![[0u8; 64]; messages.len()];
    // In the caller's order (longest first: the lanes run out of work at about the same time).
    let mut queue = 0..messages.len();
    let mut lanes: [Option<Lane>; LANES] = Default::default();
    let h0: [__m512i; 8] = std::array::from_fn(|j| _mm512_set1_epi64(H0[j] as i64));
    let mut state = h0;
    let mut fresh: __mmask8 = 0;
    for (i, lane) in lanes.iter_mut().enumerate() {
      if let Some(m) = queue.next() {
        *lane = Some(Lane::new(m, messages[m]));
        fresh |= 1 << i;
      }
    }
    let zero = [0u8; 128];
    while fresh != 0 || lanes.iter().any(Option::is_some) {
      // Lanes that took a new message start from the initial hash value.
      for (s, h) in state.iter_mut().zip(&h0) {
        *s = _mm512_mask_blend_epi64(fresh, *s, *h);
      }
      fresh = 0;
      let blocks: [&[u8]; LANES] = std::array::from_fn(|i| match &lanes[i] {
        Some(lane) => lane.block(messages[lane.index]),
        None => &zero[..],
      });
      state = compress(state, &blocks);
      let mut words: Option<[[u64; LANES]; 8]> = None;
      for (i, slot) in lanes.iter_mut().enumerate() {
        let Some(lane) = slot else { continue };
        lane.done += 1;
        if lane.done < lane.blocks {
          continue;
        }
        let words = words.get_or_insert_with(|| {
          std::array::from_fn(|j| {
            let mut w = [0u64; LANES];
            _mm512_storeu_si512(w.as_mut_ptr().cast(), state[j]);
            w
          })
        });
        let digest = &mut out[lane.index];
        for (j, w) in words.iter().enumerate() {
          digest[j * 8..j * 8 + 8].copy_from_slice(&w[i].to_be_bytes());
        }
        *slot = queue.next().map(|m| Lane::new(m, messages[m]));
        if slot.is_some() {
          fresh |= 1 << i;
        }
      }
    }
    out
  }

  /// One 128-byte block per lane through the 80 rounds.
  #[target_feature(enable = "avx512f")]
  fn compress(state: [__m512i; 8], blocks: &[&[u8]; LANES]) -> [__m512i; 8] {
    let mut w: [__m512i; 16] = std::array::from_fn(|j| {
      let lane: [u64; LANES] = std::array::from_fn(|i| {
        let block = &blocks[i][..128];
        // SAFETY: `block` is 128 bytes long and j < 16.
        u64::from_be(unsafe { block.as_ptr().add(j * 8).cast::<u64>().read_unaligned() })
      });
      // SAFETY: `lane` is 64 readable bytes.
      unsafe { _mm512_loadu_si512(lane.as_ptr().cast()) }
    });
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = state;
    for t in 0..80 {
      if t >= 16 {
        let w2 = w[(t - 2) % 16];
        let w15 = w[(t - 15) % 16];
        let s1 = _mm512_ternarylogic_epi64::<0x96>(
          _mm512_ror_epi64::<19>(w2),
          _mm512_ror_epi64::<61>(w2),
          _mm512_srli_epi64::<6>(w2),
        );
        let s0 = _mm512_ternarylogic_epi64::<0x96>(
          _mm512_ror_epi64::<1>(w15),
          _mm512_ror_epi64::<8>(w15),
          _mm512_srli_epi64::<7>(w15),
        );
        w[t % 16] = _mm512_add_epi64(_mm512_add_epi64(s1, w[(t - 7) % 16]), _mm512_add_epi64(s0, w[t % 16]));
      }
      let big_s1 = _mm512_ternarylogic_epi64::<0x96>(
        _mm512_ror_epi64::<14>(e),
        _mm512_ror_epi64::<18>(e),
        _mm512_ror_epi64::<41>(e),
      );
      // Ch: e selects f, else g. Maj: the majority of a, b, c.
      let ch = _mm512_ternarylogic_epi64::<0xCA>(e, f, g);
      let t1 = _mm512_add_epi64(
        _mm512_add_epi64(h, big_s1),
        _mm512_add_epi64(ch, _mm512_add_epi64(_mm512_set1_epi64(K[t] as i64), w[t % 16])),
      );
      let big_s0 = _mm512_ternarylogic_epi64::<0x96>(
        _mm512_ror_epi64::<28>(a),
        _mm512_ror_epi64::<34>(a),
        _mm512_ror_epi64::<39>(a),
      );
      let maj = _mm512_ternarylogic_epi64::<0xE8>(a, b, c);
      let t2 = _mm512_add_epi64(big_s0, maj);
      h = g;
      g = f;
      f = e;
      e = _mm512_add_epi64(d, t1);
      d = c;
      c = b;
      b = a;
      a = _mm512_add_epi64(t1, t2);
    }
    let add = |x: __m512i, y: __m512i| _mm512_add_epi64(x, y);
    [
      add(state[0], a),
      add(state[1], b),
      add(state[2], c),
      add(state[3], d),
      add(state[4], e),
      add(state[5], f),
      add(state[6], g),
      add(state[7], h),
    ]
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn matches_sha2_for_every_padding_case_and_mix_of_lengths() {
    // Lengths around the block and padding edges, and long ones beside short ones.
    let mut data = vec![0u8; 20_000];
    let mut x = 0x9e3779b97f4a7c15u64;
    for b in data.iter_mut() {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      *b = x as u8;
    }
    let mut lengths: Vec<usize> = (0..300).collect();
    lengths.extend([511, 512, 513, 1023, 1024, 1025, 4096, 9999, 20_000]);
    let messages: Vec<&[u8]> =
      lengths.iter().enumerate().map(|(i, &n)| &data[i % 7..i % 7 + n.min(20_000 - 7)]).collect();
    let batched = sha512_many(&messages);
    for (m, digest) in messages.iter().zip(&batched) {
      assert_eq!(digest, &one(m), "length {}", m.len());
    }
    // Fewer messages than lanes, and one.
    for n in [1, 2, 7, 8, 9] {
      let some = &messages[290..290 + n];
      assert_eq!(sha512_many(some), some.iter().map(|m| one(m)).collect::<Vec<_>>());
    }
    assert_eq!(hex::encode(sha512_many(&[b"abc", b""])[0]), crate::sha512_hex(b"abc"));
  }
}
