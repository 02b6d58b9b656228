//! Throughput of SHA-512 one message at a time (`sha2`) against eight lanes
//! (`sha512_many`) on this CPU: `cargo run --release -p pacquet-store --example sha_speed`.
use std::time::Instant;
fn main() {
  let data: Vec<u8> = (0..64 << 20).map(|i| (i * 31 % 251) as u8).collect();
  for size in [1024usize, 16 << 10, 256 << 10] {
    let msgs: Vec<&[u8]> = data.chunks(size).collect();
    let t = Instant::now();
    for m in &msgs {
      use sha2::Digest;
      std::hint::black_box(sha2::Sha512::digest(m));
    }
    let one = t.elapsed();
    let t = Instant::now();
    for c in msgs.chunks(64) {
      std::hint::black_box(pacquet_store::sha512_many(c));
    }
    let many = t.elapsed();
    println!(
      "{size:>7} B: sha2 {:.0} MB/s, many {:.0} MB/s",
      64.0 * 1.048576 / one.as_secs_f64(),
      64.0 * 1.048576 / many.as_secs_f64()
    );
  }
}
