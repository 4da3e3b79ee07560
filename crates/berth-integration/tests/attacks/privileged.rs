//! `--privileged` and `--cap-add ALL` grant what the daemon itself may hold (its bounding
//! set), as Docker does: a daemon started without a capability the kernel knows still runs
//! privileged containers (they failed), and never hands out the capability it lacks.

use berth_integration::Daemon;

/// A capability set from /proc status text (`CapBnd`, `CapEff`).
fn caps(status: &str, key: &str) -> u64 {
    let hex = status.lines().find_map(|l| l.strip_prefix(key)).unwrap().trim_start_matches(':').trim();
    u64::from_str_radix(hex, 16).unwrap()
}

/// CAP_SYS_BOOT's bit.
const SYS_BOOT: u64 = 1 << 22;

fn privileged_caps(d: &Daemon, flags: &[&str]) -> u64 {
    let mut args = vec!["run", "--rm", "--network", "none"];
    args.extend(flags);
    args.extend(["busybox", "cat", "/proc/self/status"]);
    caps(&d.berth(&args).ok(), "CapEff")
}

#[test]
fn privileged_containers_get_the_daemons_bounding_set_and_no_more() {
    let d = Daemon::start_under(&["setpriv", "--bounding-set", "-sys_boot"], &[]);
    d.import_busybox("busybox:latest");
    let daemon = std::fs::read_to_string(format!("/proc/{}/status", d.pid().unwrap())).unwrap();
    let bounding = caps(&daemon, "CapBnd");
    assert_eq!(bounding & SYS_BOOT, 0, "the daemon runs without CAP_SYS_BOOT");
    for flags in [&["--privileged"][..], &["--cap-add", "ALL"][..]] {
        let eff = privileged_caps(&d, flags);
        assert_eq!(eff, bounding, "{flags:?}: {eff:x} where the daemon holds {bounding:x}");
    }
    // Asked for by name, the missing capability fails the start (as with Docker and runc),
    // it is not silently left out.
    d.berth(&["run", "--rm", "--network", "none", "--cap-add", "SYS_BOOT", "busybox", "true"]).fails();

    // Control: a daemon with the full set hands CAP_SYS_BOOT to a privileged container.
    let full = Daemon::with_busybox();
    assert_ne!(privileged_caps(&full, &["--privileged"]) & SYS_BOOT, 0);
}
