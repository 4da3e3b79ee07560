//! `docker update` and what inspect and save report (issue 16, points 5 and 19): an update
//! changes only what it is given; `--cgroup-parent`, links, ShmSize and the restarting state
//! as Docker shows them; the defaults and Resources keys inspect reports; saved images keep
//! their creation times.

use std::path::Path;

use berth_integration::{Daemon, unique};

fn inspect(d: &Daemon, name: &str, format: &str) -> String {
    d.docker(&["inspect", "-f", format, name]).ok().trim().to_string()
}

/// The memory limit the kernel enforces for a container (cgroup v1 or v2).
fn memory_limit(pid: &str) -> String {
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for l in cg.lines() {
        let mut parts = l.splitn(3, ':');
        let (_, ctrls, path) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
        if ctrls.split(',').any(|c| c == "memory") {
            return std::fs::read_to_string(format!("/sys/fs/cgroup/memory{path}/memory.limit_in_bytes"))
                .unwrap()
                .trim()
                .to_string();
        }
        if ctrls.is_empty() && std::path::Path::new(&format!("/sys/fs/cgroup{path}/memory.max")).exists() {
            return std::fs::read_to_string(format!("/sys/fs/cgroup{path}/memory.max")).unwrap().trim().to_string();
        }
    }
    panic!("no memory cgroup in {cg}");
}

/// `update --memory 16m` kept nothing else: the restart policy became "" (point 5) and CPU
/// shares 0; `--cpu-shares` reset the memory limit (point 19). Docker takes a zero field
/// for one not given.
#[test]
fn update_changes_only_what_it_is_given() {
    let d = Daemon::with_busybox();
    let name = unique("upd");
    d.docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        "--restart",
        "on-failure:3",
        "--cpu-shares",
        "512",
        "-m",
        "32m",
        "busybox",
        "sleep",
        "1000",
    ])
    .ok();
    let all = "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}} \
               {{.HostConfig.CpuShares}} {{.HostConfig.Memory}}";
    d.docker(&["update", "--memory", "16m", &name]).ok();
    assert_eq!(inspect(&d, &name, all), "on-failure:3 512 16777216");
    let pid = inspect(&d, &name, "{{.State.Pid}}");
    assert_eq!(memory_limit(&pid), "16777216");
    d.docker(&["update", "--cpu-shares", "256", &name]).ok();
    assert_eq!(inspect(&d, &name, all), "on-failure:3 256 16777216");
    assert_eq!(memory_limit(&pid), "16777216", "the running limit stays");
    d.docker(&["update", "--restart", "always", &name]).ok();
    assert_eq!(inspect(&d, &name, all), "always:0 256 16777216");
    // Docker's conflicts: --cpus once a CPU period is set.
    d.docker(&["update", "--cpu-period", "100000", &name]).ok();
    let err = d.docker(&["update", "--cpus", "1", &name]).fails();
    assert!(
        err.contains("Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set"),
        "{err}"
    );
    d.docker(&["rm", "-f", &name]).ok();
}

/// `--cgroup-parent` puts the container's cgroup under that parent (it was ignored); links
/// read `/target:/container/alias`; ShmSize is the 64 MiB default when not given (was 0).
#[test]
fn cgroup_parent_links_and_shm_size_as_docker_reports() {
    let d = Daemon::with_busybox();
    let (db, web) = (unique("db"), unique("web"));
    let parent = format!("{}/custom", d.cgroup_parent);
    d.docker(&["run", "-d", "--name", &db, "busybox", "sleep", "1000"]).ok();
    d.docker(&[
        "run",
        "-d",
        "--name",
        &web,
        "--link",
        &format!("{db}:database"),
        "--cgroup-parent",
        &parent,
        "busybox",
        "sleep",
        "1000",
    ])
    .ok();
    let id = inspect(&d, &web, "{{.Id}}");
    let pid = inspect(&d, &web, "{{.State.Pid}}");
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let want = format!("/{parent}/{id}");
    assert!(cg.lines().any(|l| l.ends_with(&want)), "cgroups of the container: {cg}\nwanted {want}");
    assert_eq!(inspect(&d, &web, "{{json .HostConfig.Links}}"), format!("[\"/{db}:/{web}/database\"]"));
    assert_eq!(inspect(&d, &web, "{{.HostConfig.ShmSize}}"), "67108864");
    assert_eq!(inspect(&d, &db, "{{json .HostConfig.Links}}"), "null");
    d.docker(&["rm", "-f", &web, &db]).ok();
}

/// Whenever inspect says `restarting`, `Restarting` is true (it was false while the restart
/// was under way): 300 looks at a container that keeps failing.
#[test]
fn restarting_status_goes_with_restarting_true() {
    let d = Daemon::with_busybox();
    let name = unique("flap");
    d.docker(&["run", "-d", "--name", &name, "--network", "none", "--restart", "always", "busybox", "false"]).ok();
    let mut seen = 0;
    for _ in 0..300 {
        let s = inspect(&d, &name, "{{.State.Status}} {{.State.Restarting}} {{.State.Running}}");
        if s.starts_with("restarting") {
            seen += 1;
            assert_eq!(s, "restarting true false");
        } else {
            assert!(s.ends_with(" false true") || s.ends_with(" false false"), "{s}");
        }
    }
    assert!(seen > 0, "the container was seen restarting");
    d.docker(&["rm", "-f", &name]).ok();
}

/// `docker save` stamps an image's config and layers with its creation time, as dockerd
/// does (berth wrote 1970 on everything); a load of the archive keeps Created.
#[test]
fn saved_images_keep_their_creation_times() {
    let d = Daemon::with_busybox();
    let tag = format!("{}:v1", unique("saved"));
    let ctr = unique("src");
    d.docker(&["run", "--name", &ctr, "--network", "none", "busybox", "touch", "/made"]).ok();
    d.docker(&["commit", &ctr, &tag]).ok();
    let created = d.docker(&["image", "inspect", "-f", "{{.Created}}", &tag]).ok().trim().to_string();
    let id =
        d.docker(&["image", "inspect", "-f", "{{.Id}}", &tag]).ok().trim().trim_start_matches("sha256:").to_string();
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("img.tar");
    d.docker(&["save", "-o", &tar.display().to_string(), &tag]).ok();
    let out = std::process::Command::new("tar")
        .args(["-tv", "--full-time", "--utc", "-f"])
        .arg(&tar)
        .env("TZ", "UTC")
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    // "2026-12-07T05:40:01.123Z" → "2026-12-07 05:40:01"
    let stamp = created.replace('T', " ")[..19].to_string();
    let config = listing.lines().find(|l| l.ends_with(&format!("blobs/sha256/{id}"))).expect(&listing).to_string();
    assert!(config.contains(&stamp), "config entry {config:?} vs Created {created}");
    let layers: Vec<&str> =
        listing.lines().filter(|l| l.contains("blobs/sha256/") && !l.ends_with('/') && l.contains(&stamp)).collect();
    assert!(layers.len() >= 2, "config and layers carry the creation time:\n{listing}");
    d.docker(&["rmi", &tag]).ok();
    d.docker(&["load", "-i", &tar.display().to_string()]).ok();
    assert_eq!(d.docker(&["image", "inspect", "-f", "{{.Created}}", &tag]).ok().trim(), created);
    d.docker(&["rm", &ctr]).ok();
    d.docker(&["rmi", &tag]).ok();
}

/// Inspect fills in what dockerd fills in at create (MemorySwap twice the memory limit,
/// IpcMode `private`, CgroupnsMode `host` on cgroup v1) and carries the Resources keys the
/// docker CLI sends at API 1.45+ (the block I/O lists, DeviceRequests, CpuCount, CpuPercent,
/// IOMaximum*), which berth dropped.
#[test]
fn inspect_reports_the_defaults_and_keys_docker_does() {
    let d = Daemon::with_busybox();
    let name = unique("insp");
    d.docker(&["create", "--name", &name, "-m", "32m", "busybox", "true"]).ok();
    let got = inspect(
        &d,
        &name,
        "{{.HostConfig.MemorySwap}} {{.HostConfig.IpcMode}} {{.HostConfig.CgroupnsMode}} \
         {{json .HostConfig.BlkioWeightDevice}} {{json .HostConfig.BlkioDeviceReadBps}} \
         {{json .HostConfig.BlkioDeviceWriteIOps}} {{json .HostConfig.DeviceRequests}} {{.HostConfig.CpuCount}} \
         {{.HostConfig.CpuPercent}} {{.HostConfig.IOMaximumIOps}} {{.HostConfig.IOMaximumBandwidth}}",
    );
    d.docker(&["rm", "-f", &name]).ok();
    let cgroupns = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() { "private" } else { "host" };
    assert_eq!(got, format!("67108864 private {cgroupns} [] [] [] null 0 0 0 0"));
}
