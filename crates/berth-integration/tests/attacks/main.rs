//! Attacks: what a process inside a container, or an API client, tries in order to reach the
//! host, its neighbours or the daemon. Each test attacks the way an attacker would and keeps
//! a control beside it showing that the probe did find what it was aiming at, so a probe
//! that silently stopped working cannot pass for a wall that holds.
//!
//! The in-container probes are small static C programs (`probes/*.c`), compiled by the test
//! with the host's gcc and bind-mounted read-only into the container.

use std::path::{Path, PathBuf};
use std::process::Command;

use berth_integration::Daemon;

mod compat32;
mod dev_volume;
mod devices;
mod host_settings;
mod memory;
mod modes;
mod privileged;
mod race;
mod tls;

/// Compiles `probes/<name>.c` statically into a directory of the daemon's temporary tree
/// and returns that directory (to be mounted at `/probe`).
pub(crate) fn probe(d: &Daemon, name: &str) -> PathBuf {
    probe_with(d, name, &[])
}

/// [`probe`] with extra compiler flags.
pub(crate) fn probe_with(d: &Daemon, name: &str, flags: &[&str]) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/attacks/probes").join(format!("{name}.c"));
    let dir = d.dir.path().join("probes");
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new("gcc")
        .args(flags)
        .args(["-static", "-O2", "-Wall", "-o"])
        .arg(dir.join(name))
        .arg(&src)
        .output()
        .expect("gcc");
    assert!(out.status.success(), "compiling {name}.c: {}", String::from_utf8_lossy(&out.stderr));
    dir
}

/// The counts a probe prints as `key=value` words on its last line.
pub(crate) struct Counts(String);

impl Counts {
    pub(crate) fn parse(out: &str) -> Counts {
        let line = out.lines().rev().find(|l| l.contains("seen=")).unwrap_or_else(|| panic!("no counts in {out:?}"));
        Counts(line.to_string())
    }

    #[track_caller]
    pub(crate) fn get(&self, key: &str) -> u64 {
        let word = self
            .0
            .split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key} in {}", self.0));
        word.parse().unwrap()
    }
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
