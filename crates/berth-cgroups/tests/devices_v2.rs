//! Device control on cgroup v2, against the running kernel (as root): the program
//! [`Cgroup::apply`] attaches decides what a process in the group may mknod and open.
//!
//! The kernel runs a group's cgroup2 device programs whatever else the host has (on a hybrid
//! host, before the v1 `devices` controller), so these run on hybrid hosts too: a group
//! under the cgroup2 mount (`/sys/fs/cgroup` or `/sys/fs/cgroup/unified`). Each probe is a
//! shell that moves itself into the group, then makes and opens device nodes in a temporary
//! directory; every refusal is checked against a control, the same probe in a group without
//! the rules, which must get through.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use berth_cgroups::devices::docker_defaults;
use berth_cgroups::{Cgroup, DeviceRule, Mode, Resources};

/// Where cgroup2 is mounted on this host.
fn cgroup2_root() -> PathBuf {
    ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| berth_cgroups::detect(p) == Mode::V2)
        .expect("no cgroup2 hierarchy mounted")
}

/// A fresh group, removed when dropped (even when the test failed).
struct Group(Cgroup);

impl Group {
    fn new(test: &str) -> Group {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!("berth-devtest-{}-{}-{test}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        let cg = Cgroup::new(&cgroup2_root(), &name, Mode::V2).unwrap();
        cg.create().unwrap();
        Group(cg)
    }

    fn with_rules(test: &str, devices: Vec<DeviceRule>) -> Group {
        let g = Group::new(test);
        g.0.apply(&Resources { devices, ..Default::default() }).unwrap();
        g
    }

    fn dir(&self) -> PathBuf {
        self.0.dirs().remove(0)
    }

    /// Runs `script` in `sh` moved into the group first; the words it printed, and its
    /// errors.
    fn run(&self, script: &str) -> (Vec<String>, String) {
        let procs = self.dir().join("cgroup.procs");
        let full = format!("echo $$ > {} || exit 99\n{script}", procs.display());
        let out = Command::new("sh").args(["-c", &full]).output().unwrap();
        assert!(out.status.code() != Some(99), "could not join the group: {}", String::from_utf8_lossy(&out.stderr));
        let words = String::from_utf8_lossy(&out.stdout).split_whitespace().map(String::from).collect();
        (words, String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let _ = self.0.destroy();
    }
}

/// A script that makes node `name` (`kind major minor`) in `dir` and reports what it could
/// do with it: `made`, `r-ok`/`r-refused`, `w-ok`/`w-refused`.
fn node_script(dir: &Path, name: &str, node: &str) -> String {
    let p = dir.join(name);
    let p = p.display();
    format!(
        "rm -f {p}; mknod {p} {node} && echo made || echo not-made
        (: < {p}) && echo r-ok || echo r-refused
        (: > {p}) && echo w-ok || echo w-refused"
    )
}

fn words(w: &[&str]) -> Vec<String> {
    w.iter().map(|s| s.to_string()).collect()
}

/// A block device node standing for the host's disk: 7:0, the first loop device, which
/// opens without a backing file (the control checks it does here; some sandboxes refuse
/// opening the real disk even to root).
fn loop_device() -> String {
    "b 7 0".into()
}

#[test]
fn default_rules_allow_the_usual_devices() {
    let g = Group::with_rules("null", docker_defaults(false));
    let (out, err) = g.run("(: < /dev/null) && echo r-ok; (: > /dev/null) && echo w-ok; (: < /dev/zero) && echo zero");
    assert_eq!(out, words(&["r-ok", "w-ok", "zero"]), "{err}");
}

#[test]
fn default_rules_let_a_char_device_be_made_but_not_opened() {
    let tmp = tempfile::tempdir().unwrap();
    let script = node_script(tmp.path(), "kmsg", "c 1 11");
    let g = Group::with_rules("kmsg", docker_defaults(false));
    let (out, err) = g.run(&script);
    assert_eq!(out, words(&["made", "r-refused", "w-refused"]), "{err}");
    assert!(err.contains("Operation not permitted"), "{err}");
    // Control: without the rules the same node opens both ways.
    let (out, err) = Group::new("kmsg-control").run(&script);
    assert_eq!(out, words(&["made", "r-ok", "w-ok"]), "{err}");
}

/// Makes a node for a host block device in `dir` and opens it for reading (only).
fn read_block(g: &Group, dir: &Path) -> (Vec<String>, String) {
    let p = dir.join("block");
    g.run(&format!(
        "rm -f {p}; mknod {p} {disk} && echo made; (: < {p}) && echo r-ok",
        p = p.display(),
        disk = loop_device()
    ))
}

/// The hole this closes: `mknod /x b 8 0; dd if=/x` read the host's disk.
#[test]
fn default_rules_keep_block_devices_closed() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, err) = read_block(&Group::with_rules("block", docker_defaults(false)), tmp.path());
    assert_eq!(out, words(&["made"]), "{}: {err}", loop_device());
    assert!(err.contains("Operation not permitted"), "{err}");
    let (out, err) = read_block(&Group::new("block-control"), tmp.path());
    assert_eq!(out, words(&["made", "r-ok"]), "{}: {err}", loop_device());
}

#[test]
fn a_rule_grants_reading_without_writing() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rules = docker_defaults(false);
    rules.push(DeviceRule { allow: true, kind: "c".into(), major: Some(1), minor: Some(11), access: "r".into() });
    let (out, err) = Group::with_rules("kmsg-r", rules).run(&node_script(tmp.path(), "kmsg", "c 1 11"));
    assert_eq!(out, words(&["made", "r-ok", "w-refused"]), "{err}");
}

#[test]
fn privileged_allows_every_device() {
    let tmp = tempfile::tempdir().unwrap();
    let g = Group::with_rules("privileged", docker_defaults(true));
    let (out, err) = g.run(&node_script(tmp.path(), "kmsg", "c 1 11"));
    assert_eq!(out, words(&["made", "r-ok", "w-ok"]), "{err}");
    let (out, err) = read_block(&g, tmp.path());
    assert_eq!(out, words(&["made", "r-ok"]), "{err}");
}

/// Applying rules again replaces the program (the kernel would otherwise run both, and
/// only what both allow would pass); applying resources without devices keeps it.
#[test]
fn new_rules_replace_the_old_program_and_an_update_keeps_it() {
    let tmp = tempfile::tempdir().unwrap();
    let script = node_script(tmp.path(), "kmsg", "c 1 11");
    let g = Group::with_rules("replace", docker_defaults(false));
    g.0.apply(&Resources { devices: docker_defaults(true), ..Default::default() }).unwrap();
    let (out, err) = g.run(&script);
    assert_eq!(out, words(&["made", "r-ok", "w-ok"]), "{err}");
    g.0.apply(&Resources { devices: docker_defaults(false), ..Default::default() }).unwrap();
    g.0.apply(&Resources::default()).unwrap();
    let (out, err) = g.run(&script);
    assert_eq!(out, words(&["made", "r-refused", "w-refused"]), "{err}");
}
