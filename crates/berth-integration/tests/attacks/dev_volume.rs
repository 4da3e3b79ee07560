//! A volume at /dev, written by a neighbour while the container starts (a pod whose emptyDir
//! another container of the pod also mounts): the runtime makes device nodes in it and masks
//! paths with its `null`. A neighbour that swaps `null` for a link in between must not get
//! the runtime to follow it: binding the link's target over a masked path (runc's
//! CVE-2025-31133: a masked file such as /proc/interrupts becomes a writable view of the
//! host's core_pattern), or
//! changing the mode of the link's target on the host (the node's mode is set after mknod).
//! Mounts inside /proc, which could cover what the runtime writes or masks there, are refused
//! as runc refuses them.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use berth_integration::{Daemon, unique};

/// How many containers each race starts at least; a race whose control has not seen the
/// window hit yet goes on, up to four times as many.
const N: usize = 300;

/// What the neighbour does, as fast as it can until told to stop: replace each of `names` in
/// `dir` in turn with a link to `target` (renamed over it, so the name is never missing).
fn swap_until(dir: &Path, names: &[&str], target: &Path, stop: &AtomicBool) {
    let tmp = dir.join(".swap");
    for name in names.iter().cycle() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let _ = std::fs::remove_file(&tmp);
        if std::os::unix::fs::symlink(target, &tmp).is_ok() {
            let _ = std::fs::rename(&tmp, dir.join(name));
        }
    }
}

/// Starts containers with `dir` as their /dev running `cmd` while a neighbour swaps `names`
/// for links to `target`: `N`, and more (up to `4 * N`) until `hit` finds a run that shows
/// a swap landed where the test needs it. Returns each run's (exit code, stdout, stderr).
fn race(d: &Daemon, dir: &Path, names: &[&str], target: &str, cmd: &[&str], hit: impl Fn(&str) -> bool) -> Vec<Run> {
    let stop = AtomicBool::new(false);
    let volume = format!("{}:/dev", dir.display());
    std::thread::scope(|s| {
        s.spawn(|| swap_until(dir, names, Path::new(target), &stop));
        let mut runs: Vec<Run> = Vec::new();
        while runs.len() < N || (runs.len() < 4 * N && !runs.iter().any(|(_, _, err)| hit(err))) {
            let mut args = vec!["run", "--rm", "--network", "none", "-v", &volume, "busybox"];
            args.extend_from_slice(cmd);
            let r = d.berth(&args);
            runs.push((r.code, r.stdout, r.stderr));
        }
        stop.store(true, Ordering::Relaxed);
        runs
    })
}

/// A run's exit code, stdout and stderr.
type Run = (i32, String, String);

fn dev_dir(d: &Daemon) -> PathBuf {
    let dir = d.dir.path().join(unique("dev-"));
    std::fs::create_dir(&dir).unwrap();
    dir
}

#[test]
fn a_null_swapped_for_a_link_never_unmasks_a_path() {
    let d = Daemon::with_busybox();
    let dir = dev_dir(&d);
    let host = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    assert!(!host.trim().is_empty());
    // /proc/interrupts is masked (with /dev/null, being a file that every kernel has): it reads
    // empty, unless the link's target was bound over it.
    let refused_here = |err: &str| err.contains("not the null device");
    let runs = race(&d, &dir, &["null"], "/proc/sys/kernel/core_pattern", &["cat", "/proc/interrupts"], refused_here);
    let breaches: Vec<_> = runs.iter().filter(|(_, out, _)| out.contains(host.trim())).collect();
    assert!(breaches.is_empty(), "/proc/interrupts showed the host's core_pattern: {breaches:?}");
    // Control: the swaps landed between the node's making and the masking (the runtime saw a
    // link where it had made the device), so the race was run inside the window.
    let refused = runs.iter().filter(|(_, _, err)| refused_here(err)).count();
    assert!(refused > 0, "no swap landed in the window: {:?}", &runs[..3]);
    // And a container whose /dev nobody touches starts and finds the file masked.
    let volume = format!("{}:/dev", dev_dir(&d).display());
    let out = d.berth(&["run", "--rm", "--network", "none", "-v", &volume, "busybox", "cat", "/proc/interrupts"]).ok();
    assert_eq!(out, "");
}

#[test]
fn a_node_swapped_for_a_link_never_changes_a_host_files_mode() {
    let d = Daemon::with_busybox();
    let dir = dev_dir(&d);
    let marker = d.dir.path().join(unique("host-secret-"));
    std::fs::write(&marker, "host only").unwrap();
    std::fs::set_permissions(&marker, std::fs::Permissions::from_mode(0o600)).unwrap();
    let replaced_here = |err: &str| err.contains("was replaced while it was being made");
    // Every node the runtime makes, each a window of its own.
    let nodes = ["null", "zero", "full", "random", "urandom", "tty"];
    let runs = race(&d, &dir, &nodes, marker.to_str().unwrap(), &["true"], replaced_here);
    let mode = std::fs::metadata(&marker).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o600, "the host file's mode was changed through the link");
    // Control: some swap landed right after a node was made, where its mode is set.
    let replaced = runs.iter().filter(|(_, _, err)| replaced_here(err)).count();
    let started = runs.iter().filter(|(code, _, _)| *code == 0).count();
    assert!(
        replaced > 0,
        "no swap landed between mknod and chmod ({started} of {} started): {:?}",
        runs.len(),
        &runs[..3]
    );
}

#[test]
fn mounts_inside_proc_are_refused_even_through_a_link() {
    let d = Daemon::with_busybox();
    let dir = d.dir.path().join(unique("vol-"));
    std::fs::create_dir(&dir).unwrap();
    let bind = |dest: &str| format!("{}:{dest}", dir.display());
    for dest in ["/proc/sys/kernel", "/proc/self/attr"] {
        let err = d.berth(&["run", "--rm", "--network", "none", "-v", &bind(dest), "busybox", "true"]).fails();
        assert!(err.contains("cannot be mounted because it is inside /proc"), "{dest}: {err}");
    }
    // An image whose /data is a link to /proc: the mount would land inside /proc all the same.
    let base = unique("linker");
    d.berth(&["run", "--name", &base, "--network", "none", "busybox", "ln", "-s", "/proc", "/data"]).ok();
    let image = unique("proclink");
    d.berth(&["commit", &base, &image]).ok();
    d.berth(&["rm", &base]).ok();
    let err = d.berth(&["run", "--rm", "--network", "none", "-v", &bind("/data/sys"), &image, "true"]).fails();
    assert!(err.contains("cannot be mounted because it is inside /proc"), "{err}");
    // Control: the same mount elsewhere works, and so do the files lxcfs replaces.
    let file = d.dir.path().join(unique("meminfo-"));
    std::fs::write(&file, "MemTotal: 1 kB\n").unwrap();
    let meminfo = format!("{}:/proc/meminfo:ro", file.display());
    let out = d
        .berth(&[
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            &bind("/elsewhere"),
            "-v",
            &meminfo,
            &image,
            "cat",
            "/proc/meminfo",
        ])
        .ok();
    assert_eq!(out, "MemTotal: 1 kB\n");
    d.berth(&["rmi", &image]).ok();
}
