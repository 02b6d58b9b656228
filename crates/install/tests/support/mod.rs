//! Test support: an npm registry on 127.0.0.1 in the test process, package tarballs made
//! on the fly, and lockfiles that describe them.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::sync::{Arc, Mutex};

use base64::Engine;
use sha2::{Digest, Sha512};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How the registry misbehaves for one request.
#[derive(Clone, Debug)]
pub enum Fault {
  /// Answer with this status (and a small JSON body).
  Status(u16),
  /// Close the connection without answering.
  Drop,
  /// Send the headers and half the body, then reset the connection (RST).
  ResetMidBody,
  /// Announce the whole body, send half of it, then close cleanly (FIN).
  CutShort,
  /// Send the headers and `n` bytes of the body, then never send more.
  Stall(usize),
  /// Never answer at all.
  Hold,
  /// Serve the body `n` bytes at a time, pausing between writes.
  Trickle(usize),
  /// `302 Found` to this URL.
  Redirect(String),
}

#[derive(Default)]
struct State {
  files: HashMap<String, Vec<u8>>,
  /// Faults to apply before serving a path, one per request.
  faults: HashMap<String, VecDeque<Fault>>,
  requests: Vec<String>,
  /// The `authorization` header of each request, in order.
  auth: Vec<(String, Option<String>)>,
  /// Paths served without auth; every other path then needs this header.
  require_auth: Option<String>,
}

/// A registry that serves fixed bodies by path, over HTTP/1.1 with keep-alive.
#[derive(Clone)]
pub struct Registry {
  pub url: String,
  state: Arc<Mutex<State>>,
}

impl Registry {
  pub async fn start() -> Registry {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let state = Arc::new(Mutex::new(State::default()));
    let shared = state.clone();
    tokio::spawn(async move {
      while let Ok((socket, _)) = listener.accept().await {
        tokio::spawn(serve(socket, shared.clone()));
      }
    });
    Registry { url, state }
  }

  pub fn add(&self, path: &str, body: Vec<u8>) {
    self.state.lock().unwrap().files.insert(path.to_string(), body);
  }

  pub fn fail(&self, path: &str, statuses: &[u16]) {
    self.faults(path, statuses.iter().map(|s| Fault::Status(*s)).collect());
  }

  pub fn faults(&self, path: &str, faults: Vec<Fault>) {
    self.state.lock().unwrap().faults.insert(path.to_string(), faults.into());
  }

  /// Every request must then carry this `authorization` header, else 401.
  pub fn require_auth(&self, header: &str) {
    self.state.lock().unwrap().require_auth = Some(header.to_string());
  }

  pub fn requests(&self) -> Vec<String> {
    self.state.lock().unwrap().requests.clone()
  }

  /// `(path, authorization header)` of every request.
  pub fn auth_headers(&self) -> Vec<(String, Option<String>)> {
    self.state.lock().unwrap().auth.clone()
  }

  pub fn clear_requests(&self) {
    self.state.lock().unwrap().requests.clear();
  }
}

async fn serve(mut socket: tokio::net::TcpStream, state: Arc<Mutex<State>>) {
  let mut buf = Vec::new();
  loop {
    let head_end = loop {
      if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
        break i + 4;
      }
      let mut chunk = [0u8; 4096];
      match socket.read(&mut chunk).await {
        Ok(0) | Err(_) => return,
        Ok(n) => buf.extend_from_slice(&chunk[..n]),
      }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    buf.drain(..head_end);
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let auth = head
      .lines()
      .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("authorization")))
      .map(|(_, v)| v.trim().to_string());
    let (fault, body) = {
      let mut s = state.lock().unwrap();
      s.requests.push(path.clone());
      s.auth.push((path.clone(), auth.clone()));
      let fault = s.faults.get_mut(&path).and_then(|f| f.pop_front());
      let unauthorized = s.require_auth.as_ref().is_some_and(|want| auth.as_ref() != Some(want));
      match (fault, s.files.get(&path)) {
        (Some(fault), Some(body)) => (Some(fault), body.clone()),
        (Some(Fault::Status(status)), None) => (Some(Fault::Status(status)), Vec::new()),
        (Some(Fault::Redirect(to)), None) => (Some(Fault::Redirect(to)), Vec::new()),
        _ if unauthorized => (Some(Fault::Status(401)), Vec::new()),
        (_, Some(body)) => (None, body.clone()),
        (_, None) => (Some(Fault::Status(404)), Vec::new()),
      }
    };
    let head_for = |status: u16, len: usize| {
      format!("HTTP/1.1 {status} X\r\ncontent-length: {len}\r\nconnection: keep-alive\r\n\r\n")
    };
    let half = body.len() / 2;
    let ok = match fault {
      None => write_all(&mut socket, &[head_for(200, body.len()).as_bytes(), &body]).await,
      Some(Fault::Status(status)) => {
        let body = b"{\"error\":\"fault\"}";
        write_all(&mut socket, &[head_for(status, body.len()).as_bytes(), body]).await
      }
      Some(Fault::Redirect(to)) => {
        let head = format!("HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\n\r\n");
        write_all(&mut socket, &[head.as_bytes()]).await
      }
      Some(Fault::Drop) => false,
      Some(Fault::ResetMidBody) => {
        let _ = write_all(&mut socket, &[head_for(200, body.len()).as_bytes(), &body[..half]]).await;
        let _ = socket.flush().await;
        // Linger 0: closing sends a reset instead of an orderly shutdown.
        let _ = socket.set_zero_linger();
        false
      }
      Some(Fault::CutShort) => {
        let _ = write_all(&mut socket, &[head_for(200, body.len()).as_bytes(), &body[..half]]).await;
        let _ = socket.shutdown().await;
        false
      }
      Some(Fault::Stall(n)) => {
        let n = n.min(body.len());
        let _ = write_all(&mut socket, &[head_for(200, body.len()).as_bytes(), &body[..n]]).await;
        std::future::pending::<()>().await;
        false
      }
      Some(Fault::Hold) => {
        std::future::pending::<()>().await;
        false
      }
      Some(Fault::Trickle(n)) => {
        let mut ok = write_all(&mut socket, &[head_for(200, body.len()).as_bytes()]).await;
        for piece in body.chunks(n.max(1)) {
          tokio::time::sleep(std::time::Duration::from_millis(2)).await;
          ok = ok && write_all(&mut socket, &[piece]).await;
        }
        ok
      }
    };
    if !ok {
      return;
    }
  }
}

async fn write_all(socket: &mut tokio::net::TcpStream, parts: &[&[u8]]) -> bool {
  for part in parts {
    if socket.write_all(part).await.is_err() {
      return false;
    }
  }
  socket.flush().await.is_ok()
}

pub mod harness;

/// A package to publish: files under `package/`, each `(path, content, mode)`.
pub struct Pkg {
  pub name: &'static str,
  pub version: &'static str,
  pub files: Vec<(String, Vec<u8>, u32)>,
  pub deps: Vec<(&'static str, &'static str)>,
  pub optional: bool,
  pub os: Option<&'static str>,
}

impl Pkg {
  pub fn new(name: &'static str, version: &'static str) -> Pkg {
    let manifest = format!(r#"{{"name":"{name}","version":"{version}","main":"index.js"}}"#);
    Pkg {
      name,
      version,
      files: vec![
        ("package.json".into(), manifest.into_bytes(), 0o644),
        ("index.js".into(), format!("module.exports = '{name}@{version}'\n").into_bytes(), 0o644),
      ],
      deps: vec![],
      optional: false,
      os: None,
    }
  }

  pub fn file(mut self, path: &str, content: &[u8], mode: u32) -> Pkg {
    self.files.push((path.to_string(), content.to_vec(), mode));
    self
  }

  pub fn dep(mut self, alias: &'static str, reference: &'static str) -> Pkg {
    self.deps.push((alias, reference));
    self
  }

  pub fn tarball(&self) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, content, mode) in &self.files {
      let mut header = tar::Header::new_gnu();
      header.set_size(content.len() as u64);
      header.set_mode(*mode);
      header.set_entry_type(tar::EntryType::Regular);
      builder.append_data(&mut header, format!("package/{path}"), content.as_slice()).unwrap();
    }
    gzip(&builder.into_inner().unwrap())
  }

  pub fn tarball_path(&self) -> String {
    let bare = self.name.rsplit('/').next().unwrap();
    format!("/{}/-/{bare}-{}.tgz", self.name, self.version)
  }
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
  let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
  enc.write_all(bytes).unwrap();
  enc.finish().unwrap()
}

pub fn integrity(bytes: &[u8]) -> String {
  format!("sha512-{}", base64::engine::general_purpose::STANDARD.encode(Sha512::digest(bytes)))
}

/// Publishes the packages and returns a v9 lockfile whose importer depends on `direct`.
pub fn publish(registry: &Registry, pkgs: &[Pkg], direct: &[(&str, &str)]) -> String {
  let mut text = String::from("lockfileVersion: '9.0'\n\nsettings:\n  autoInstallPeers: true\n  excludeLinksFromLockfile: false\n\nimporters:\n\n  .:\n    dependencies:\n");
  for (alias, version) in direct {
    text.push_str(&format!("      '{alias}':\n        specifier: '*'\n        version: '{version}'\n"));
  }
  text.push_str("\npackages:\n\n");
  for p in pkgs {
    let tgz = p.tarball();
    text.push_str(&format!(
      "  '{}@{}':\n    resolution: {{integrity: {}}}\n",
      p.name,
      p.version,
      integrity(&tgz)
    ));
    let manifest = p.files.iter().find(|(path, _, _)| path == "package.json");
    if manifest.is_some_and(|(_, content, _)| String::from_utf8_lossy(content).contains("\"bin\"")) {
      text.push_str("    hasBin: true\n");
    }
    if let Some(os) = p.os {
      text.push_str(&format!("    os: [{os}]\n"));
    }
    text.push('\n');
    registry.add(&p.tarball_path(), tgz);
  }
  text.push_str("snapshots:\n\n");
  for p in pkgs {
    text.push_str(&format!("  '{}@{}':\n", p.name, p.version));
    if !p.deps.is_empty() {
      text.push_str("    dependencies:\n");
      for (alias, reference) in &p.deps {
        text.push_str(&format!("      '{alias}': '{reference}'\n"));
      }
    }
    if p.optional {
      text.push_str("    optional: true\n");
    }
    if p.deps.is_empty() && !p.optional {
      text.pop();
      text.push_str(" {}\n");
    }
    text.push('\n');
  }
  text
}
