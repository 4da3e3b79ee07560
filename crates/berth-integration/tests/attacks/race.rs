//! Racing a new process: `exec`, healthchecks and containers that join another's pid
//! namespace all start a process that a watcher inside the container can see. It must never
//! be seen before it is in the container's mount namespace, confined (capabilities,
//! seccomp, credentials) and rid of every descriptor of the shim's (runc's CVE-2016-9962 and
//! CVE-2019-5736 are the same family). The probe (`probes/race.c`) pounces on each new pid
//! through /proc/P/{root,cwd,exe,fd}, pidfd_getfd and /proc/P/status.

use berth_integration::{Daemon, unique};

use crate::{Counts, probe};

/// Starts the probe as a container's main process and returns the container's name and the
/// host marker it looks for.
fn start_probe(d: &Daemon, extra: &[&str], max_seen: u32) -> String {
    let dir = probe(d, "race");
    let marker = d.dir.path().join(unique("host-only-"));
    std::fs::write(&marker, "host").unwrap();
    let name = unique("race");
    let mount = format!("{}:/probe:ro", dir.display());
    let mut args = vec!["run", "-d", "--name", &name, "--network", "none", "-v", &mount];
    args.extend_from_slice(extra);
    let marker = marker.display().to_string();
    let max = max_seen.to_string();
    args.extend_from_slice(&["busybox", "/probe/race", &marker, "/bin/busybox", "/tmp/stop", &max]);
    d.berth(&args).ok();
    name
}

/// Stops the probe and reads its counts.
fn finish(d: &Daemon, name: &str) -> Counts {
    // The probe (the container's first process) ends as soon as the file exists, which can
    // take `touch` down with it before it exits (137): only the file matters.
    let _ = d.berth(&["exec", name, "touch", "/tmp/stop"]);
    d.berth(&["wait", name]).ok();
    Counts::parse(&d.berth(&["logs", name]).ok())
}

/// Whether the watcher holds CAP_SYS_PTRACE. Such a watcher may open /proc/P/exe of a
/// process that has not exec'd yet, and finds the shim's binary there (public, and never
/// writable: the kernel refuses writes to a running executable, and a shim runs as long as
/// its container does); `exe_write` stays 0 for everyone.
#[derive(PartialEq, Clone, Copy)]
enum Watcher {
    Default,
    Ptrace,
}

impl Watcher {
    /// What the probe's container is run with.
    fn args(self) -> &'static [&'static str] {
        match self {
            Watcher::Default => &[],
            Watcher::Ptrace => &["--cap-add", "SYS_PTRACE"],
        }
    }
}

/// How many processes each race starts (the scale).
const N: u64 = 1000;

#[track_caller]
fn assert_no_breach(c: &Counts, tried: u64, watcher: Watcher, joined: bool) {
    eprintln!("probe: {c}");
    for k in ["root_host", "exe_write", "fd", "unconfined", "mount"] {
        assert_eq!(c.get(k), 0, "{k}: {c}");
    }
    if watcher == Watcher::Default {
        assert_eq!(c.get("exe_host"), 0, "exe_host: {c}");
    }
    // Only the /proc maker of a joined pid namespace (CAP_SYS_ADMIN under a filter that
    // leaves it nothing but making procfs mounts) may hold more than the container.
    if !joined {
        assert_eq!(c.get("privileged"), 0, "privileged: {c}");
    }
    // Controls: the probe saw the processes it raced and reached them through /proc.
    assert!(c.get("seen") >= tried / 10, "the probe saw too few of {tried} processes: {c}");
    assert!(c.get("root_ctr") > 0, "the probe never reached a process's root: {c}");
}

fn race_exec(watcher: Watcher) {
    let ptrace = watcher == Watcher::Ptrace;
    let d = Daemon::with_busybox();
    let name = start_probe(&d, watcher.args(), 0);
    for _ in 0..N {
        d.berth(&["exec", &name, "true"]).ok();
    }
    // With a terminal, the process opens the container's devpts before it appears.
    for _ in 0..N / 10 {
        d.berth(&["exec", "-t", &name, "true"]).ok();
    }
    let c = finish(&d, &name);
    assert_no_breach(&c, N, watcher, false);
    // pidfd_getfd works on what the probe may reach: an exec'd process's own stdio.
    assert!(c.get("getfd_std") > 0, "pidfd_getfd never worked: {c}");
    // The control that the race is run inside the window: a ptrace-capable watcher catches
    // processes before their execve (their exe is still the shim's binary; about half of
    // them on this machine), so a probe that only ever saw finished execs cannot pass.
    if ptrace {
        assert!(c.get("exe_host") > 0, "the probe never caught a process before its execve: {c}");
    }
}

#[test]
fn exec_is_never_visible_outside_the_container_or_unconfined() {
    race_exec(Watcher::Default);
}

#[test]
fn exec_is_never_visible_outside_the_container_even_to_a_ptrace_capable_watcher() {
    race_exec(Watcher::Ptrace);
}

/// Healthchecks every millisecond (Docker's minimum interval): a check starts as soon as
/// the last has ended.
fn race_healthchecks(watcher: Watcher) {
    let d = Daemon::with_busybox();
    let mut extra = watcher.args().to_vec();
    extra.extend_from_slice(&["--health-cmd", "true", "--health-interval", "1ms"]);
    let name = start_probe(&d, &extra, N as u32);
    // The probe ends by itself once it has seen N processes (the checks).
    let code = d.berth(&["wait", &name]).ok();
    assert_eq!(code.trim(), "0");
    let c = Counts::parse(&d.berth(&["logs", &name]).ok());
    assert_no_breach(&c, N, watcher, false);
}

#[test]
fn healthchecks_are_never_visible_outside_the_container() {
    race_healthchecks(Watcher::Default);
}

#[test]
fn healthchecks_are_never_visible_outside_the_container_even_to_a_ptrace_capable_watcher() {
    race_healthchecks(Watcher::Ptrace);
}

#[test]
fn a_container_joining_a_pid_namespace_is_never_visible_before_it_is_confined() {
    race_joining_containers(Daemon::with_busybox(), Watcher::Default);
}

#[test]
fn a_container_joining_a_pid_namespace_is_never_visible_even_to_a_ptrace_capable_watcher() {
    race_joining_containers(Daemon::with_busybox(), Watcher::Ptrace);
}

/// Kernels before 6.15 have no procfs `pidns` option: the joining container's /proc is
/// then opened by a helper inside the namespace (see berth-runtime's joined_proc), which
/// a watcher can see and must find harmless.
fn older_kernel() -> Daemon {
    let mut d = Daemon::with_busybox();
    d.env.push(("BERTH_PROC_MAKER".into(), "1".into()));
    d.restart();
    d
}

#[test]
fn a_container_joining_a_pid_namespace_on_an_older_kernel_is_never_visible_before_it_is_confined() {
    race_joining_containers(older_kernel(), Watcher::Default);
}

#[test]
fn a_container_joining_a_pid_namespace_on_an_older_kernel_is_never_visible_even_to_a_ptrace_capable_watcher() {
    race_joining_containers(older_kernel(), Watcher::Ptrace);
}

/// The joining containers are started by a few clients at once, as a busy host would.
fn race_joining_containers(d: Daemon, watcher: Watcher) {
    let name = start_probe(&d, watcher.args(), 0);
    let pid = format!("container:{name}");
    const CLIENTS: u64 = 4;
    std::thread::scope(|s| {
        for _ in 0..CLIENTS {
            s.spawn(|| {
                for _ in 0..N / CLIENTS {
                    d.berth(&["run", "--rm", "--pid", &pid, "--network", "none", "busybox", "true"]).ok();
                }
            });
        }
    });
    let c = finish(&d, &name);
    assert_no_breach(&c, N, watcher, true);
    // Control: the probe reached the joining containers' executables (their own files).
    assert!(c.get("exe_other") > 0, "the probe never opened a joining container's exe: {c}");
    // The joining container's /proc is the namespace's: it lists the other container's
    // process (checked apart from the probe, whose count a program's own files would skew).
    let other = unique("other");
    d.berth(&["run", "-d", "--name", &other, "--network", "none", "busybox", "sleep", "600"]).ok();
    let ps = d
        .berth(&[
            "run",
            "--rm",
            "--pid",
            &format!("container:{other}"),
            "--network",
            "none",
            "busybox",
            "ps",
            "-o",
            "pid,args",
        ])
        .ok();
    assert!(ps.contains("sleep 600"), "{ps}");
}
