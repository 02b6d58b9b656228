//! Times reading a lockfile: `cargo run --release -p pacquet-lockfile --example parse_time -- <pnpm-lock.yaml>`.
fn main() {
  let Some(path) = std::env::args().nth(1) else {
    eprintln!("usage: parse_time <pnpm-lock.yaml>");
    std::process::exit(2);
  };
  for _ in 0..3 {
    let t = std::time::Instant::now();
    match pacquet_lockfile::read_lockfile(pacquet_lockfile::LockfileSource::Path(path.clone().into())) {
      Ok((lockfile, _)) => println!("{} snapshots in {:?}", lockfile.snapshots.len(), t.elapsed()),
      Err(e) => println!("error: {e}"),
    }
  }
}
