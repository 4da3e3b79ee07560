//! The block I/O and device options of `docker run`: each one either reaches the kernel
//! (read back from the container's cgroup) or is refused with dockerd's words and nothing
//! is created. Never accepted and ignored.

use std::path::{Path, PathBuf};

use berth_integration::{Daemon, unique};

/// `docker create` with `args` is refused with `want`, and nothing is left.
#[track_caller]
fn refused(d: &Daemon, args: &[&str], want: &str) {
    let name = unique("dev");
    let mut full = vec!["create", "--name", name.as_str()];
    full.extend_from_slice(args);
    full.extend(["busybox", "true"]);
    let run = d.docker(&full);
    if run.code == 0 {
        d.docker(&["rm", "-f", &name]);
    }
    let shown = format!("{}{}", run.stdout, run.stderr);
    assert_ne!(run.code, 0, "{args:?} was accepted");
    assert!(shown.contains(want), "{args:?}: {shown}");
    let ls = d.docker(&["ps", "-aq", "--filter", &format!("name=^{name}$")]).ok();
    assert!(ls.trim().is_empty(), "{args:?} left a container behind");
}

/// The whole disk behind `/` (throttles apply to disks, not partitions) and its numbers,
/// found through /proc/self/mountinfo and sysfs.
fn root_disk() -> (PathBuf, String) {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let numbers = info
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.get(4) == Some(&"/"))
        .map(|f| f[2].to_string())
        .expect("a mount at /");
    let mut sys = std::fs::canonicalize(format!("/sys/dev/block/{numbers}")).expect("/ is on a block device");
    if sys.join("partition").exists() {
        sys.pop();
    }
    let disk = std::fs::read_to_string(sys.join("dev")).unwrap().trim().to_string();
    let name = sys.file_name().unwrap().to_string_lossy().into_owned();
    (Path::new("/dev").join(name), disk)
}

fn cgroup_file(d: &Daemon, id: &str, file: &str) -> String {
    let p = Path::new("/sys/fs/cgroup/blkio").join(&d.cgroup_parent).join(id).join(file);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn block_io_throttles_reach_the_cgroup() {
    let blkio = Path::new("/sys/fs/cgroup/blkio");
    if !blkio.join("blkio.throttle.read_bps_device").exists() {
        eprintln!("skipped: no cgroup v1 blkio throttling on this host (v2 is unit-tested on a fake tree)");
        return;
    }
    let d = Daemon::with_busybox();
    let (dev, numbers) = root_disk();
    let dev = dev.to_string_lossy().into_owned();
    let name = unique("throttle");
    let run = d.docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--device-read-bps",
        &format!("{dev}:1mb"),
        "--device-write-bps",
        &format!("{dev}:2mb"),
        "--device-read-iops",
        &format!("{dev}:300"),
        "--device-write-iops",
        &format!("{dev}:400"),
        "busybox",
        "sleep",
        "100",
    ]);
    let id = run.stdout.trim().to_string();
    let files = ["read_bps", "write_bps", "read_iops", "write_iops"]
        .map(|f| (run.code == 0).then(|| cgroup_file(&d, &id, &format!("blkio.throttle.{f}_device"))));
    let shown = d.docker(&["inspect", "-f", "{{json .HostConfig.BlkioDeviceReadBps}} {{json .HostConfig.BlkioDeviceWriteIOps}} {{json .HostConfig.BlkioWeightDevice}}", &name]);
    d.docker(&["rm", "-f", &name]).ok();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let want = [1024 * 1024, 2 * 1024 * 1024, 300, 400].map(|r| Some(format!("{numbers} {r}\n")));
    assert_eq!(files, want);
    assert_eq!(shown.ok().trim(), format!(r#"[{{"Path":"{dev}","Rate":1048576}}] [{{"Path":"{dev}","Rate":400}}] []"#));
}

#[test]
fn block_io_options_the_host_cannot_apply_are_refused() {
    let d = Daemon::with_busybox();
    // Not a block device, and no device at all: refused before anything exists.
    refused(&d, &["--device-read-bps", "/dev/null:1mb"], "/dev/null is not a block device");
    refused(
        &d,
        &["--device-write-iops", "/dev/berth-no-such-disk:10"],
        "stat /dev/berth-no-such-disk: no such file or directory",
    );
    let (dev, _) = root_disk();
    let weight = format!("{}:300", dev.display());
    let blkio = Path::new("/sys/fs/cgroup/blkio");
    if blkio.join("blkio.weight_device").exists() || blkio.join("blkio.bfq.weight_device").exists() {
        let name = unique("weight");
        let run =
            d.docker(&["run", "-d", "--name", &name, "--blkio-weight-device", &weight, "busybox", "sleep", "100"]);
        d.docker(&["rm", "-f", &name]).ok();
        assert_eq!(run.code, 0, "{}", run.stderr);
    } else {
        // This kernel schedules without CFQ or BFQ: dockerd would warn and discard.
        refused(
            &d,
            &["--blkio-weight-device", &weight],
            "Your kernel does not support Block I/O weight_device or the cgroup is not mounted",
        );
    }
}

/// A CDI spec the test writes (YAML, in a directory given with `--cdi-spec-dir`) names a
/// device node backed by /dev/null, a variable for the device, one for its kind, and a
/// mount; `--device vendor/class=name` gets all of them, and `--gpus` maps to an
/// `nvidia.com/gpu` spec when there is one.
#[test]
fn cdi_devices_get_their_spec_edits() {
    let specs = tempfile::tempdir().unwrap();
    let shared = tempfile::tempdir().unwrap();
    std::fs::write(shared.path().join("note"), "from the host\n").unwrap();
    let spec = format!(
        r#"cdiVersion: "0.6.0"
kind: berth.test/dev
devices:
  - name: zero
    containerEdits:
      env: ["BERTH_CDI_DEVICE=zero"]
      deviceNodes:
        - path: /dev/berth-cdi0
          hostPath: /dev/null
      mounts:
        - hostPath: {}
          containerPath: /cdi
          options: ["ro"]
  - name: bad
    containerEdits:
      deviceNodes:
        - path: /dev/berth-cdi1
          hostPath: /dev/null
          permissions: rwx
containerEdits:
  env: ["BERTH_CDI_KIND=dev"]
"#,
        shared.path().display()
    );
    std::fs::write(specs.path().join("berth-test.yaml"), spec).unwrap();
    let gpus = r#"{"cdiVersion":"0.6.0","kind":"nvidia.com/gpu","devices":[{"name":"all","containerEdits":{"env":["BERTH_GPU=all"]}}]}"#;
    std::fs::write(specs.path().join("gpu.json"), gpus).unwrap();
    let dir = specs.path().display().to_string();
    let d = Daemon::start_with(&["--cdi-spec-dir", &dir]);
    d.import_busybox("busybox:latest");
    let script = "echo $BERTH_CDI_DEVICE $BERTH_CDI_KIND; stat -c %t:%T /dev/berth-cdi0; echo x > /dev/berth-cdi0 && cat /cdi/note";
    let out = d.docker(&["run", "--rm", "--device", "berth.test/dev=zero", "busybox", "sh", "-c", script]).ok();
    assert_eq!(out, "zero dev\n1:3\nfrom the host\n");
    let out = d.docker(&["run", "--rm", "--gpus", "all", "busybox", "sh", "-c", "echo $BERTH_GPU"]).ok();
    assert_eq!(out, "all\n");
    refused(
        &d,
        &["--device", "berth.test/dev=one"],
        "CDI device injection failed: unresolvable CDI devices berth.test/dev=one",
    );
    refused(&d, &["--gpus", "2"], "CDI device injection failed: 2 GPUs requested, 0 defined for nvidia.com/gpu");
    // Permissions the device cgroup cannot take are refused, naming the device.
    refused(&d, &["--device", "berth.test/dev=bad"], r#"device node /dev/berth-cdi1: invalid permissions "rwx""#);
}

#[test]
fn device_requests_without_a_driver_are_refused() {
    let d = Daemon::with_busybox();
    refused(&d, &["--gpus", "all"], r#"could not select device driver "" with capabilities: [[gpu]]"#);
    refused(
        &d,
        &["--device", "vendor.example/class=dev0"],
        "CDI device injection failed: unresolvable CDI devices vendor.example/class=dev0",
    );
}
