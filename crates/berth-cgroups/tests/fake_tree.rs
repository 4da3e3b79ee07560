//! The file-level logic of both cgroup layouts, against a fake tree in a temporary directory:
//! what is created where, which file each limit is written to and in which form, how stats
//! are read from each layout's files, freezing, removal, and what is refused.
//!
//! A fake tree is plain directories and files, so it cannot show what the kernel does on its
//! side (files that appear by themselves in a new group, writes it merges or refuses, a
//! freezer that passes through FREEZING, rmdir of a group with live processes). Those are
//! exercised only on a real host: see "Control groups" in the README. No test here puts a
//! pid in a fake `cgroup.procs` before calling `destroy` (it would signal that pid on the
//! real host).

use std::path::Path;

use berth_cgroups::{
    BlockIoResources, BlockIoSupport, Cgroup, CgroupError, CpuResources, DeviceRule, MemoryResources, Mode,
    PidsResources, Resources, ThrottleDevice, V1_CONTROLLERS, WeightDevice,
};

fn write(p: &Path, s: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, s).unwrap();
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A v1 host: one hierarchy per controller (a controller counts as mounted when its root has
/// `cgroup.procs`), `cpuset` with the host's cpus and mems.
fn v1_root(mounted: &[&str]) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    for c in mounted {
        write(&t.path().join(c).join("cgroup.procs"), "");
    }
    if mounted.contains(&"cpuset") {
        write(&t.path().join("cpuset/cpuset.cpus"), "0-3\n");
        write(&t.path().join("cpuset/cpuset.mems"), "0\n");
    }
    t
}

/// A v2 host offering `controllers` at its root.
fn v2_root(controllers: &str) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    write(&t.path().join("cgroup.procs"), "");
    write(&t.path().join("cgroup.controllers"), controllers);
    t
}

fn group(root: &Path, path: &str, mode: Mode) -> Cgroup {
    Cgroup::new(root, path, mode).unwrap()
}

// --- paths -----------------------------------------------------------------------------

#[test]
fn a_group_path_is_relative_and_plain() {
    let root = Path::new("/nonexistent");
    for bad in ["", "/", "//", "a//b", "a/../b", "..", "./a", "a/."] {
        let err = Cgroup::new(root, bad, Mode::V2).unwrap_err();
        assert!(matches!(err, CgroupError::Invalid(_)), "{bad:?}: {err}");
        assert!(err.to_string().contains("invalid cgroup path"), "{err}");
    }
    let g = group(root, "/berth/abc/", Mode::V1);
    assert_eq!((g.path(), g.mode()), ("berth/abc", Mode::V1));
}

// --- v1 --------------------------------------------------------------------------------

#[test]
fn v1_create_makes_the_group_under_each_mounted_controller_only() {
    let root = v1_root(&["cpu", "cpuacct", "memory", "pids", "freezer"]);
    let g = group(root.path(), "berth/abc", Mode::V1);
    g.create().unwrap();
    for c in V1_CONTROLLERS {
        let made = root.path().join(c).join("berth/abc").is_dir();
        assert_eq!(made, ["cpu", "cpuacct", "memory", "pids", "freezer"].contains(c), "{c}");
    }
    let want: Vec<_> =
        ["cpu", "cpuacct", "memory", "freezer", "pids"].iter().map(|c| root.path().join(c).join("berth/abc")).collect();
    assert_eq!(g.dirs(), want, "in the order they are joined");
    // Again: nothing to do, no error.
    g.create().unwrap();
}

#[test]
fn v1_cpuset_groups_inherit_cpus_and_mems_from_their_parent_at_every_level() {
    let root = v1_root(&["cpuset"]);
    // An existing parent with its own cpus: the new child copies the parent, not the root.
    std::fs::create_dir(root.path().join("cpuset/berth")).unwrap();
    write(&root.path().join("cpuset/berth/cpuset.cpus"), "1\n");
    write(&root.path().join("cpuset/berth/cpuset.mems"), "0\n");
    group(root.path(), "berth/abc/inner", Mode::V1).create().unwrap();
    assert_eq!(read(&root.path().join("cpuset/berth/abc/cpuset.cpus")), "1");
    assert_eq!(read(&root.path().join("cpuset/berth/abc/inner/cpuset.cpus")), "1");
    assert_eq!(read(&root.path().join("cpuset/berth/abc/inner/cpuset.mems")), "0");
    // A parent that the existing-parent rule skipped keeps its own.
    assert_eq!(read(&root.path().join("cpuset/berth/cpuset.cpus")), "1\n");
}

#[test]
fn v1_create_fails_on_the_file_it_could_not_read() {
    let root = v1_root(&["cpuset"]);
    std::fs::remove_file(root.path().join("cpuset/cpuset.mems")).unwrap();
    let err = group(root.path(), "berth/abc", Mode::V1).create().unwrap_err();
    match err {
        CgroupError::Io { path, .. } => assert_eq!(path, root.path().join("cpuset/cpuset.mems")),
        other => panic!("{other}"),
    }
}

#[test]
fn v1_limits_go_to_each_controllers_files() {
    let root = v1_root(&["cpu", "cpuset", "memory", "pids", "blkio"]);
    let g = group(root.path(), "berth/abc", Mode::V1);
    g.create().unwrap();
    let mem = root.path().join("memory/berth/abc");
    // Swap accounting is on when the kernel offers memsw.
    write(&mem.join("memory.memsw.limit_in_bytes"), "9223372036854771712\n");
    write(&mem.join("memory.limit_in_bytes"), "9223372036854771712\n");
    write(&root.path().join("blkio/berth/abc/blkio.weight"), "");
    let r = Resources {
        memory: Some(MemoryResources {
            limit: Some(256 << 20),
            reservation: Some(128 << 20),
            swap: Some(512 << 20),
            swappiness: Some(10),
            disable_oom_killer: Some(true),
        }),
        cpu: Some(CpuResources {
            shares: Some(512),
            quota: Some(50_000),
            period: Some(100_000),
            cpus: Some("0-1".into()),
            mems: Some("0".into()),
            realtime_runtime: Some(1000),
            realtime_period: Some(1_000_000),
        }),
        pids: Some(PidsResources { limit: 64 }),
        block_io: Some(BlockIoResources {
            weight: Some(300),
            throttle_read_bps_device: vec![ThrottleDevice { major: 8, minor: 0, rate: 1 << 20 }],
            ..Default::default()
        }),
        ..Default::default()
    };
    g.apply(&r).unwrap();
    let cpu = root.path().join("cpu/berth/abc");
    let want = [
        (mem.join("memory.limit_in_bytes"), "268435456"),
        (mem.join("memory.memsw.limit_in_bytes"), "536870912"),
        (mem.join("memory.soft_limit_in_bytes"), "134217728"),
        (mem.join("memory.swappiness"), "10"),
        (mem.join("memory.oom_control"), "1"),
        (cpu.join("cpu.shares"), "512"),
        (cpu.join("cpu.cfs_quota_us"), "50000"),
        (cpu.join("cpu.cfs_period_us"), "100000"),
        (cpu.join("cpu.rt_period_us"), "1000000"),
        (cpu.join("cpu.rt_runtime_us"), "1000"),
        (root.path().join("cpuset/berth/abc/cpuset.cpus"), "0-1"),
        (root.path().join("cpuset/berth/abc/cpuset.mems"), "0"),
        (root.path().join("pids/berth/abc/pids.max"), "64"),
        (root.path().join("blkio/berth/abc/blkio.weight"), "300"),
        (root.path().join("blkio/berth/abc/blkio.throttle.read_bps_device"), "8:0 1048576"),
    ];
    for (file, value) in want {
        assert_eq!(read(&file), value, "{}", file.display());
    }
}

#[test]
fn v1_limits_that_are_not_set_are_not_written() {
    let root = v1_root(&["memory", "pids", "blkio"]);
    let g = group(root.path(), "berth/abc", Mode::V1);
    g.create().unwrap();
    // No memsw: the swap value has nowhere to go, and a missing pids limit is "max".
    let r = Resources {
        memory: Some(MemoryResources { swap: Some(1 << 30), ..Default::default() }),
        pids: Some(PidsResources { limit: 0 }),
        block_io: Some(BlockIoResources { weight: Some(500), ..Default::default() }),
        ..Default::default()
    };
    g.apply(&r).unwrap();
    let files = |c: &str| {
        let mut v: Vec<String> = std::fs::read_dir(root.path().join(c).join("berth/abc"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert!(files("memory").is_empty(), "{:?}", files("memory"));
    assert_eq!(files("pids"), ["pids.max"]);
    assert_eq!(read(&root.path().join("pids/berth/abc/pids.max")), "max");
    // A plain weight without a weight file is skipped (dockerd warns at create).
    assert!(files("blkio").is_empty(), "{:?}", files("blkio"));
    // BFQ's file is used when that is the one the kernel offers.
    write(&root.path().join("blkio/berth/abc/blkio.bfq.weight"), "");
    g.apply(&r).unwrap();
    assert_eq!(read(&root.path().join("blkio/berth/abc/blkio.bfq.weight")), "500");
}

#[test]
fn v1_bad_values_are_refused_naming_what() {
    let root = v1_root(&["memory", "blkio", "devices"]);
    let g = group(root.path(), "berth/abc", Mode::V1);
    // Not created: the first write names its file.
    let r = Resources {
        memory: Some(MemoryResources { limit: Some(1 << 20), ..Default::default() }),
        ..Default::default()
    };
    match g.apply(&r).unwrap_err() {
        CgroupError::Io { path, .. } => assert_eq!(path, root.path().join("memory/berth/abc/memory.limit_in_bytes")),
        other => panic!("{other}"),
    }
    g.create().unwrap();
    let weights = Resources {
        block_io: Some(BlockIoResources {
            weight_device: vec![WeightDevice { major: 8, minor: 0, weight: 200 }],
            ..Default::default()
        }),
        ..Default::default()
    };
    let err = g.apply(&weights).unwrap_err();
    assert!(matches!(err, CgroupError::Invalid(_)) && err.to_string().contains("blkio.weight_device"), "{err}");
    let bad_rule = Resources {
        devices: vec![DeviceRule { allow: true, kind: "x".into(), ..Default::default() }],
        ..Default::default()
    };
    let err = g.apply(&bad_rule).unwrap_err();
    assert!(err.to_string().contains("invalid device rule"), "{err}");
}

#[test]
fn v1_stats_are_read_from_each_controllers_files() {
    let root = v1_root(&["cpuacct", "memory", "pids", "blkio"]);
    let g = group(root.path(), "berth/abc", Mode::V1);
    g.create().unwrap();
    let d = |c: &str, f: &str| root.path().join(c).join("berth/abc").join(f);
    write(&d("cpuacct", "cpuacct.usage"), "123456789\n");
    write(&d("cpuacct", "cpuacct.stat"), "user 30\nsystem 12\n");
    write(&d("memory", "memory.usage_in_bytes"), "104857600\n");
    write(&d("memory", "memory.limit_in_bytes"), "268435456\n");
    write(&d("memory", "memory.stat"), "cache 4096\nrss 8192\ntotal_inactive_file 2048\nbad line\n");
    write(&d("pids", "pids.current"), "3\n");
    write(&d("pids", "pids.max"), "max\n");
    write(
        &d("blkio", "blkio.throttle.io_service_bytes"),
        "8:0 Read 100\n8:0 Write 50\n8:0 Sync 150\n8:16 Read 1\n8:16 Write 2\nTotal 153\n",
    );
    let s = g.stats().unwrap();
    assert_eq!((s.cpu_total_ns, s.cpu_user_ns, s.cpu_system_ns), (123_456_789, 300_000_000, 120_000_000));
    assert_eq!((s.memory_usage, s.memory_limit, s.memory_cache), (104_857_600, 268_435_456, 2048));
    assert_eq!(
        s.memory_stat,
        [("cache".to_string(), 4096), ("rss".to_string(), 8192), ("total_inactive_file".to_string(), 2048)]
    );
    // "max" is no number: 0, as the API's "no limit".
    assert_eq!((s.pids_current, s.pids_limit), (3, 0));
    assert_eq!((s.blkio_read, s.blkio_write), (101, 52));
}

#[test]
fn v1_stats_of_a_group_without_files_are_zero() {
    let root = v1_root(&["memory"]);
    let s = group(root.path(), "berth/none", Mode::V1).stats().unwrap();
    assert_eq!(s, berth_cgroups::Stats::default());
}

/// Asks for a freeze or thaw and checks that it settled, as the container service polls it.
fn freeze(g: &Cgroup, frozen: bool) -> berth_cgroups::Result<()> {
    g.request_freeze(frozen)?;
    assert!(g.freeze_settled(frozen)?, "a fake tree settles at once");
    Ok(())
}

#[test]
fn v1_freezing_writes_the_freezer_state_and_waits_for_it() {
    let root = v1_root(&["freezer"]);
    let g = group(root.path(), "berth/abc", Mode::V1);
    g.create().unwrap();
    let state = root.path().join("freezer/berth/abc/freezer.state");
    freeze(&g, true).unwrap();
    assert_eq!(read(&state), "FROZEN");
    freeze(&g, false).unwrap();
    assert_eq!(read(&state), "THAWED");
    // No freezer group: the error names the file.
    match freeze(&group(root.path(), "berth/gone", Mode::V1), true).unwrap_err() {
        CgroupError::Io { path, .. } => assert_eq!(path, root.path().join("freezer/berth/gone/freezer.state")),
        other => panic!("{other}"),
    }
}

#[test]
fn v1_a_freeze_is_requested_then_polled_without_blocking() {
    let root = v1_root(&["freezer"]);
    let g = group(root.path(), "berth/abc", Mode::V1);
    g.create().unwrap();
    let state = root.path().join("freezer/berth/abc/freezer.state");
    g.request_freeze(true).unwrap();
    assert_eq!(read(&state), "FROZEN");
    // The kernel reports FREEZING while a task cannot be frozen yet.
    write(&state, "FREEZING\n");
    assert!(!g.freeze_settled(true).unwrap());
    write(&state, "FROZEN\n");
    assert!(g.freeze_settled(true).unwrap());
    assert!(!g.freeze_settled(false).unwrap());
}

#[test]
fn v1_oom_kills_are_read_from_the_oom_control() {
    let root = v1_root(&["memory"]);
    let g = group(root.path(), "berth/abc", Mode::V1);
    assert!(!g.oom_killed(), "no group, no kill");
    g.create().unwrap();
    let f = root.path().join("memory/berth/abc/memory.oom_control");
    write(&f, "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n");
    assert!(!g.oom_killed());
    write(&f, "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
    assert!(g.oom_killed());
}

#[test]
fn v1_processes_are_added_to_every_mounted_controller() {
    let root = v1_root(&["cpu", "memory", "pids"]);
    let g = group(root.path(), "berth/abc", Mode::V1);
    g.create().unwrap();
    g.add(4321).unwrap();
    for c in ["cpu", "memory", "pids"] {
        assert_eq!(read(&root.path().join(c).join("berth/abc/cgroup.procs")), "4321", "{c}");
    }
    // The first controller's list is the group's.
    write(&root.path().join("cpu/berth/abc/cgroup.procs"), "4321\n4322\n");
    assert_eq!(g.pids().unwrap(), [4321, 4322]);
    // Nothing mounted: no list to read.
    let bare = tempfile::tempdir().unwrap();
    assert!(matches!(group(bare.path(), "berth/abc", Mode::V1).pids(), Err(CgroupError::Invalid(_))));
}

#[test]
fn v1_removal_takes_the_group_out_of_every_controller_and_tolerates_a_second_time() {
    let root = v1_root(&["cpu", "memory", "pids", "freezer"]);
    let g = group(root.path(), "berth/abc", Mode::V1);
    g.create().unwrap();
    g.destroy().unwrap();
    for c in ["cpu", "memory", "pids", "freezer"] {
        assert!(!root.path().join(c).join("berth/abc").exists(), "{c}");
        assert!(root.path().join(c).join("berth").is_dir(), "the parent stays: {c}");
    }
    g.destroy().unwrap();
}

#[test]
fn v1_removal_reports_a_group_it_could_not_remove() {
    let root = v1_root(&["memory"]);
    let g = group(root.path(), "berth/abc", Mode::V1);
    g.create().unwrap();
    // A child group left inside (the kernel refuses rmdir as well).
    std::fs::create_dir(root.path().join("memory/berth/abc/child")).unwrap();
    match g.destroy().unwrap_err() {
        CgroupError::Io { path, .. } => assert_eq!(path, root.path().join("memory/berth/abc")),
        other => panic!("{other}"),
    }
}

#[test]
fn v1_block_io_support_is_probed_at_the_blkio_root() {
    let root = v1_root(&["blkio"]);
    assert_eq!(berth_cgroups::block_io_support(root.path(), Mode::V1), BlockIoSupport::default());
    write(&root.path().join("blkio/blkio.bfq.weight"), "");
    write(&root.path().join("blkio/blkio.throttle.read_bps_device"), "");
    let s = berth_cgroups::block_io_support(root.path(), Mode::V1);
    assert_eq!(s, BlockIoSupport { weight: true, weight_device: false, throttle: true });
}

// --- v2 --------------------------------------------------------------------------------

#[test]
fn v2_create_delegates_the_controllers_the_root_offers_on_the_way_down() {
    let root = v2_root("cpuset cpu io memory hugetlb pids rdma misc\n");
    let g = group(root.path(), "berth/abc", Mode::V2);
    g.create().unwrap();
    let all = "+cpu +cpuset +memory +pids +io";
    assert_eq!(read(&root.path().join("cgroup.subtree_control")), all);
    assert_eq!(read(&root.path().join("berth/cgroup.subtree_control")), all);
    assert!(root.path().join("berth/abc").is_dir());
    assert!(!root.path().join("berth/abc/cgroup.subtree_control").exists(), "the leaf delegates nothing");
    assert_eq!(g.dirs(), [root.path().join("berth/abc")]);
    g.create().unwrap();

    let few = v2_root("memory pids");
    group(few.path(), "berth/abc", Mode::V2).create().unwrap();
    assert_eq!(read(&few.path().join("cgroup.subtree_control")), "+memory +pids");

    // Nothing offered: nothing to delegate, the directories are still made.
    let none = tempfile::tempdir().unwrap();
    group(none.path(), "berth/abc", Mode::V2).create().unwrap();
    assert!(none.path().join("berth/abc").is_dir());
    assert!(!none.path().join("cgroup.subtree_control").exists());
}

#[test]
fn v2_limits_are_written_in_v2_form() {
    let root = v2_root("cpuset cpu io memory pids");
    let g = group(root.path(), "berth/abc", Mode::V2);
    g.create().unwrap();
    let d = root.path().join("berth/abc");
    for f in ["memory.swap.max", "memory.oom.group", "io.weight"] {
        write(&d.join(f), "");
    }
    let r = Resources {
        memory: Some(MemoryResources {
            limit: Some(256 << 20),
            reservation: Some(64 << 20),
            swap: Some(384 << 20),
            swappiness: Some(10),
            disable_oom_killer: Some(true),
        }),
        cpu: Some(CpuResources {
            shares: Some(1024),
            quota: Some(150_000),
            period: Some(100_000),
            cpus: Some("2-3".into()),
            mems: Some("0".into()),
            ..Default::default()
        }),
        pids: Some(PidsResources { limit: 100 }),
        block_io: Some(BlockIoResources { weight: Some(200), ..Default::default() }),
        ..Default::default()
    };
    g.apply(&r).unwrap();
    let want = [
        ("memory.max", "268435456"),
        // v2 counts swap alone; the OCI value is memory + swap.
        ("memory.swap.max", "134217728"),
        ("memory.low", "67108864"),
        ("memory.oom.group", "0"),
        // 1024 shares in v1's range 2–262144, mapped onto 1–10000.
        ("cpu.weight", "39"),
        ("cpu.max", "150000 100000"),
        ("cpuset.cpus", "2-3"),
        ("cpuset.mems", "0"),
        ("pids.max", "100"),
        ("io.weight", "default 200"),
    ];
    for (f, v) in want {
        assert_eq!(read(&d.join(f)), v, "{f}");
    }
    assert!(!d.join("memory.swappiness").exists(), "v2 has no swappiness");
}

#[test]
fn v2_unlimited_and_edge_values() {
    let root = v2_root("cpu memory pids");
    let g = group(root.path(), "berth/abc", Mode::V2);
    g.create().unwrap();
    let d = root.path().join("berth/abc");
    write(&d.join("memory.swap.max"), "");
    let apply = |memory, cpu, pids| {
        g.apply(&Resources { memory, cpu, pids, ..Default::default() }).unwrap();
    };
    let mem = |limit, swap| Some(MemoryResources { limit: Some(limit), swap: Some(swap), ..Default::default() });
    apply(mem(-1, -1), None, Some(PidsResources { limit: 0 }));
    assert_eq!((read(&d.join("memory.max")), read(&d.join("memory.swap.max"))), ("max".into(), "max".into()));
    assert_eq!(read(&d.join("pids.max")), "max");
    // Swap below the memory limit means no swap at all.
    apply(mem(512 << 20, 256 << 20), None, None);
    assert_eq!(read(&d.join("memory.swap.max")), "0");
    let cpu = |shares, quota, period| Some(CpuResources { shares, quota, period, ..Default::default() });
    apply(None, cpu(Some(2), None, Some(50_000)), None);
    assert_eq!((read(&d.join("cpu.weight")), read(&d.join("cpu.max"))), ("1".into(), "max 50000".into()));
    apply(None, cpu(Some(1 << 20), Some(0), None), None);
    assert_eq!((read(&d.join("cpu.weight")), read(&d.join("cpu.max"))), ("10000".into(), "max 100000".into()));
    // Without a swap file (no swap accounting) only the limit is written.
    std::fs::remove_file(d.join("memory.swap.max")).unwrap();
    apply(mem(1 << 30, 2 << 30), None, None);
    assert!(!d.join("memory.swap.max").exists());
    assert_eq!(read(&d.join("memory.max")), "1073741824");
}

#[test]
fn v2_bad_values_are_refused_naming_what() {
    let root = v2_root("memory io");
    let g = group(root.path(), "berth/abc", Mode::V2);
    let r = Resources { pids: Some(PidsResources { limit: 5 }), ..Default::default() };
    match g.apply(&r).unwrap_err() {
        CgroupError::Io { path, .. } => assert_eq!(path, root.path().join("berth/abc/pids.max")),
        other => panic!("{other}"),
    }
    g.create().unwrap();
    let weights = Resources {
        block_io: Some(BlockIoResources {
            weight_device: vec![WeightDevice { major: 8, minor: 0, weight: 200 }],
            ..Default::default()
        }),
        ..Default::default()
    };
    let err = g.apply(&weights).unwrap_err();
    assert!(err.to_string().contains("neither io.weight nor io.bfq.weight"), "{err}");
}

#[test]
fn v2_stats_are_read_from_the_groups_files() {
    let root = v2_root("cpu memory pids io");
    let g = group(root.path(), "berth/abc", Mode::V2);
    g.create().unwrap();
    let d = root.path().join("berth/abc");
    write(&d.join("cpu.stat"), "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 0\n");
    write(&d.join("memory.current"), "52428800\n");
    write(&d.join("memory.max"), "max\n");
    write(&d.join("memory.stat"), "anon 4096\nfile 8192\ninactive_file 1024\n");
    write(&d.join("pids.current"), "2\n");
    write(&d.join("pids.max"), "50\n");
    write(
        &d.join("io.stat"),
        "8:0 rbytes=100 wbytes=50 rios=1 wios=2 dbytes=0 dios=0\n8:16 rbytes=1 wbytes=2 rios=1 wios=1\n",
    );
    let s = g.stats().unwrap();
    assert_eq!((s.cpu_total_ns, s.cpu_user_ns, s.cpu_system_ns), (1_500_000, 1_000_000, 500_000));
    assert_eq!((s.memory_usage, s.memory_limit, s.memory_cache), (52_428_800, 0, 1024));
    assert_eq!(s.memory_stat.len(), 3);
    assert_eq!((s.pids_current, s.pids_limit), (2, 50));
    assert_eq!((s.blkio_read, s.blkio_write), (101, 52));
}

#[test]
fn v2_freezing_writes_cgroup_freeze_and_reads_cgroup_events() {
    let root = v2_root("cpu");
    let g = group(root.path(), "berth/abc", Mode::V2);
    g.create().unwrap();
    let d = root.path().join("berth/abc");
    // The kernel reports the settled state in cgroup.events; a fake one says it at once.
    write(&d.join("cgroup.events"), "populated 1\nfrozen 1\n");
    freeze(&g, true).unwrap();
    assert_eq!(read(&d.join("cgroup.freeze")), "1");
    write(&d.join("cgroup.events"), "populated 1\nfrozen 0\n");
    freeze(&g, false).unwrap();
    assert_eq!(read(&d.join("cgroup.freeze")), "0");
    // No events file: the error names it.
    std::fs::remove_file(d.join("cgroup.events")).unwrap();
    match freeze(&g, true).unwrap_err() {
        CgroupError::Io { path, .. } => assert_eq!(path, d.join("cgroup.events")),
        other => panic!("{other}"),
    }
}

#[test]
fn v2_oom_kills_are_read_from_memory_events() {
    let root = v2_root("memory");
    let g = group(root.path(), "berth/abc", Mode::V2);
    g.create().unwrap();
    let f = root.path().join("berth/abc/memory.events");
    write(&f, "low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\n");
    assert!(!g.oom_killed());
    write(&f, "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n");
    assert!(g.oom_killed());
}

#[test]
fn v2_removal_takes_the_leaf_and_tolerates_a_second_time() {
    let root = v2_root("cpu memory");
    let g = group(root.path(), "berth/abc", Mode::V2);
    g.create().unwrap();
    g.destroy().unwrap();
    assert!(!root.path().join("berth/abc").exists());
    assert!(root.path().join("berth").is_dir());
    g.destroy().unwrap();
}

#[test]
fn v2_block_io_support_follows_the_io_controller() {
    assert_eq!(berth_cgroups::block_io_support(v2_root("cpu memory").path(), Mode::V2), BlockIoSupport::default());
    let s = berth_cgroups::block_io_support(v2_root("cpu io memory").path(), Mode::V2);
    assert_eq!(s, BlockIoSupport { weight: true, weight_device: true, throttle: true });
}
