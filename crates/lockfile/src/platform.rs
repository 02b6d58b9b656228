//! Whether a package's `os` / `cpu` / `libc` fields allow it on this machine
//! (pnpm's `checkPlatform`, with `supportedArchitectures`).

/// The machine the packages are installed for, in Node's names (`process.platform`,
/// `process.arch`, and `glibc` / `musl`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
  pub os: String,
  pub cpu: String,
  pub libc: Option<String>,
}

impl Host {
  pub fn current() -> Self {
    let os = match std::env::consts::OS {
      "macos" => "darwin",
      "windows" => "win32",
      other => other,
    };
    let cpu = match std::env::consts::ARCH {
      "x86_64" => "x64",
      "aarch64" => "arm64",
      "x86" => "ia32",
      "powerpc64" => "ppc64",
      other => other,
    };
    let libc = (os == "linux").then(|| if cfg!(target_env = "musl") { "musl" } else { "glibc" }.to_string());
    Host { os: os.to_string(), cpu: cpu.to_string(), libc }
  }
}

/// Extra platforms to install for (`supportedArchitectures`); `current` stands for the host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SupportedArchitectures {
  pub os: Option<Vec<String>>,
  pub cpu: Option<Vec<String>>,
  pub libc: Option<Vec<String>>,
}

/// `None` when compatible, else a human-readable reason.
pub fn is_platform_compatible(
  os: Option<&[String]>,
  cpu: Option<&[String]>,
  libc: Option<&[String]>,
  host: &Host,
  supported: &SupportedArchitectures,
) -> Option<String> {
  let values = |list: &Option<Vec<String>>, current: &str| -> Vec<String> {
    match list {
      Some(l) if !l.is_empty() => {
        l.iter().map(|v| if v == "current" { current.to_string() } else { v.clone() }).collect()
      }
      _ => vec![current.to_string()],
    }
  };
  let check = |field: &str, wanted: Option<&[String]>, have: Vec<String>| -> Option<String> {
    let wanted = wanted?;
    if check_list(&have, wanted) {
      None
    } else {
      Some(format!("{field}: wanted {wanted:?}, current {have:?}"))
    }
  };
  check("os", os, values(&supported.os, &host.os))
    .or_else(|| check("cpu", cpu, values(&supported.cpu, &host.cpu)))
    .or_else(|| {
      // libc only means something where the host has one to compare.
      let current = host.libc.as_deref()?;
      check("libc", libc, values(&supported.libc, current))
    })
}

/// npm's list rule: `any` allows all; `!x` forbids x; otherwise one value must be listed.
fn check_list(values: &[String], list: &[String]) -> bool {
  if list.is_empty() || (list.len() == 1 && list[0] == "any") {
    return true;
  }
  let mut matched = false;
  let mut negations = 0;
  for value in values {
    for item in list {
      if let Some(negated) = item.strip_prefix('!') {
        if negated == value {
          return false;
        }
        negations += 1;
      } else if item == value {
        matched = true;
      }
    }
  }
  matched || negations == list.len()
}

#[cfg(test)]
mod tests {
  use super::*;

  fn host() -> Host {
    Host { os: "linux".into(), cpu: "x64".into(), libc: Some("glibc".into()) }
  }
  fn v(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
  }

  #[test]
  fn os_cpu_libc_lists() {
    let none = SupportedArchitectures::default();
    assert!(is_platform_compatible(Some(&v(&["linux"])), None, None, &host(), &none).is_none());
    assert!(is_platform_compatible(Some(&v(&["darwin"])), None, None, &host(), &none).is_some());
    assert!(is_platform_compatible(Some(&v(&["!win32"])), None, None, &host(), &none).is_none());
    assert!(is_platform_compatible(Some(&v(&["!linux"])), None, None, &host(), &none).is_some());
    assert!(is_platform_compatible(None, Some(&v(&["arm64"])), None, &host(), &none).is_some());
    assert!(is_platform_compatible(None, None, Some(&v(&["musl"])), &host(), &none).is_some());
    let mac = Host { os: "darwin".into(), cpu: "arm64".into(), libc: None };
    assert!(is_platform_compatible(None, None, Some(&v(&["musl"])), &mac, &none).is_none());
  }

  #[test]
  fn supported_architectures_widen_the_host() {
    let all = SupportedArchitectures {
      os: Some(v(&["current", "darwin"])),
      cpu: None,
      libc: Some(v(&["glibc", "musl"])),
    };
    assert!(is_platform_compatible(Some(&v(&["darwin"])), None, None, &host(), &all).is_none());
    assert!(is_platform_compatible(Some(&v(&["linux"])), None, None, &host(), &all).is_none());
    assert!(is_platform_compatible(Some(&v(&["win32"])), None, None, &host(), &all).is_some());
    assert!(is_platform_compatible(None, None, Some(&v(&["musl"])), &host(), &all).is_none());
  }
}
