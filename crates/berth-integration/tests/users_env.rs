//! Users, groups and the environment a process gets (issue 16, point 20), as Docker gives
//! them: the primary group among the supplementary ones, `HOME` from the user's passwd
//! entry, `TERM` only for a process with a terminal, and `--ipc host` with the host's
//! /dev/shm.

use berth_integration::{Daemon, unique};

#[test]
fn the_primary_group_is_among_the_supplementary_groups() {
    let d = Daemon::with_busybox();
    // The kernel's list, sorted (busybox's `id -G` adds the primary group itself).
    const GROUPS: &str = "sed -n 's/^Groups:[[:space:]]*//p' /proc/self/status";
    let groups = |args: &[&str]| {
        let mut a = vec!["run", "--rm", "--network", "none"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["busybox", "sh", "-c", GROUPS]);
        d.docker(&a).ok().trim().to_string()
    };
    assert_eq!(groups(&[]), "0");
    assert_eq!(groups(&["--group-add", "10"]), "0 10");
    assert_eq!(groups(&["--user", "postgres"]), "70");
    assert_eq!(groups(&["--user", "postgres", "--group-add", "nogroup"]), "70 65534");
    assert_eq!(groups(&["--user", "1000:1000"]), "1000");
    // exec resolves the same way.
    let name = unique("grp");
    d.docker(&["run", "-d", "--name", &name, "--network", "none", "--group-add", "10", "busybox", "sleep", "300"]).ok();
    assert_eq!(d.docker(&["exec", &name, "sh", "-c", GROUPS]).ok().trim(), "0 10");
    assert_eq!(d.docker(&["exec", "-u", "postgres", &name, "sh", "-c", GROUPS]).ok().trim(), "10 70");
    d.docker(&["rm", "-f", &name]).ok();
}

#[test]
fn home_comes_from_the_users_passwd_entry() {
    let d = Daemon::with_busybox();
    let home = |user: &str| {
        d.docker(&["run", "--rm", "--network", "none", "-u", user, "busybox", "sh", "-c", "echo $HOME"])
            .ok()
            .trim()
            .to_string()
    };
    assert_eq!(home("postgres"), "/var/lib/postgresql");
    assert_eq!(home("root"), "/root");
    // A uid with no entry gets /, as with Docker.
    assert_eq!(home("4242"), "/");
    // A HOME the user gives wins.
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-u",
        "postgres",
        "-e",
        "HOME=/x",
        "busybox",
        "sh",
        "-c",
        "echo $HOME",
    ]);
    assert_eq!(out.ok().trim(), "/x");
}

#[test]
fn term_is_set_only_for_a_process_with_a_terminal() {
    let d = Daemon::with_busybox();
    let name = unique("term");
    d.docker(&["run", "-d", "-t", "--name", &name, "--network", "none", "busybox", "sleep", "300"]).ok();
    let env = d.docker(&["exec", &name, "env"]).ok();
    assert!(!env.contains("TERM="), "an exec without -t got TERM:\n{env}");
    assert!(env.contains("HOSTNAME="), "{env}");
    let env = d.docker(&["exec", "-t", &name, "env"]).ok();
    assert!(env.contains("TERM=xterm"), "an exec with -t has no TERM:\n{env}");
    d.docker(&["rm", "-f", &name]).ok();
    let env = d.docker(&["run", "--rm", "--network", "none", "busybox", "env"]).ok();
    assert!(!env.contains("TERM="), "{env}");
}

/// Removes a file in the host's /dev/shm when the test ends, however it ends.
struct ShmFile(std::path::PathBuf);

impl Drop for ShmFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn ipc_host_shares_the_hosts_dev_shm() {
    let d = Daemon::with_busybox();
    let file = ShmFile(std::path::PathBuf::from(format!("/dev/shm/{}", unique("berth-ipc"))));
    std::fs::write(&file.0, "from the host\n").unwrap();
    let inside = format!("/dev/shm/{}", file.0.file_name().unwrap().to_str().unwrap());
    let out = d.docker(&["run", "--rm", "--network", "none", "--ipc", "host", "busybox", "cat", &inside]);
    assert_eq!(out.ok(), "from the host\n");
    // And what the container writes there is the host's.
    let written = format!("{inside}.w");
    let _cleanup = ShmFile(std::path::PathBuf::from(&written));
    let script = format!("echo from the container > {written}");
    d.docker(&["run", "--rm", "--network", "none", "--ipc", "host", "busybox", "sh", "-c", &script]).ok();
    assert_eq!(std::fs::read_to_string(&written).unwrap(), "from the container\n");
    // Control: a container with its own IPC namespace has its own, empty /dev/shm.
    let out = d.docker(&["run", "--rm", "--network", "none", "busybox", "cat", &inside]);
    assert_ne!(out.code, 0, "a private /dev/shm showed the host's file");
}
