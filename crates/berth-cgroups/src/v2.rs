//! cgroup v2: one unified tree.

use std::path::Path;

use crate::devices::kernel::{Attach, Kernel};
use crate::fs::{self, mkdir, write};
use crate::{Resources, Result};

pub fn create(root: &Path, rel: &str) -> Result<()> {
    let available = fs::read(&root.join("cgroup.controllers")).unwrap_or_default();
    let wanted: Vec<&str> = ["cpu", "cpuset", "memory", "pids", "io"]
        .into_iter()
        .filter(|c| available.split_whitespace().any(|a| a == *c))
        .collect();
    let mut cur = root.to_path_buf();
    for comp in rel.split('/') {
        // Controllers must be delegated by each parent before the child can use them.
        let enable: String = wanted.iter().map(|c| format!("+{c} ")).collect();
        if !enable.is_empty() {
            let _ = write(&cur.join("cgroup.subtree_control"), enable.trim());
        }
        cur = cur.join(comp);
        mkdir(&cur)?;
    }
    Ok(())
}

pub fn apply(dir: &Path, r: &Resources) -> Result<()> {
    apply_with(dir, r, &Kernel)
}

/// [`apply`], handing the device program to `kernel`. Devices go first: a group whose
/// program cannot be attached is refused before anything else is written.
fn apply_with(dir: &Path, r: &Resources, kernel: &dyn Attach) -> Result<()> {
    if !r.devices.is_empty() {
        let policy = crate::devices::Policy::new(&r.devices)?;
        kernel.attach(dir, &crate::devices::program::build(&policy))?;
    }
    if let Some(m) = &r.memory {
        if let Some(l) = m.limit {
            write(&dir.join("memory.max"), &max(l))?;
            // v2 accounts swap separately; the OCI value is memory+swap.
            if let Some(s) = m.swap {
                let f = dir.join("memory.swap.max");
                if f.exists() {
                    let swap_only = if s < 0 || l < 0 { -1 } else { (s - l).max(0) };
                    write(&f, &max(swap_only))?;
                }
            }
        }
        if let Some(res) = m.reservation {
            write(&dir.join("memory.low"), &max(res))?;
        }
        if let Some(true) = m.disable_oom_killer {
            let f = dir.join("memory.oom.group");
            if f.exists() {
                write(&f, "0")?;
            }
        }
    }
    if let Some(c) = &r.cpu {
        if let Some(s) = c.shares {
            // The usual conversion of v1 shares (2–262144) to v2 weight (1–10000).
            let w = 1 + ((s.clamp(2, 262_144) - 2) * 9999) / 262_142;
            write(&dir.join("cpu.weight"), &w.to_string())?;
        }
        if c.quota.is_some() || c.period.is_some() {
            let quota = c.quota.filter(|&q| q > 0).map(|q| q.to_string()).unwrap_or_else(|| "max".into());
            let period = c.period.unwrap_or(100_000);
            write(&dir.join("cpu.max"), &format!("{quota} {period}"))?;
        }
        if let Some(cpus) = c.cpus.as_deref().filter(|s| !s.is_empty()) {
            write(&dir.join("cpuset.cpus"), cpus)?;
        }
        if let Some(mems) = c.mems.as_deref().filter(|s| !s.is_empty()) {
            write(&dir.join("cpuset.mems"), mems)?;
        }
    }
    if let Some(p) = &r.pids {
        write(&dir.join("pids.max"), &if p.limit > 0 { p.limit.to_string() } else { "max".into() })?;
    }
    if let Some(b) = &r.block_io {
        block_io(dir, b)?;
    }
    Ok(())
}

/// Weights go to `io.weight` (the cost model) or `io.bfq.weight`, whichever the kernel
/// offers; a plain weight without either is skipped (dockerd warns at create), a device
/// weight fails. Limits are `io.max` lines, one key each; 0 is "no limit", as in v1.
fn block_io(dir: &Path, b: &crate::BlockIoResources) -> Result<()> {
    let weight = [dir.join("io.weight"), dir.join("io.bfq.weight")].into_iter().find(|f| f.exists());
    if let (Some(w), Some(f)) = (b.weight, &weight) {
        write(f, &format!("default {w}"))?;
    }
    if !b.weight_device.is_empty() {
        let f = weight.ok_or_else(|| {
            crate::CgroupError::Invalid(format!(
                "{}: the kernel offers neither io.weight nor io.bfq.weight",
                dir.display()
            ))
        })?;
        for w in &b.weight_device {
            write(&f, &format!("{}:{} {}", w.major, w.minor, w.weight))?;
        }
    }
    for (key, _, devices) in b.throttles() {
        for t in devices {
            let rate = if t.rate == 0 { "max".to_string() } else { t.rate.to_string() };
            write(&dir.join("io.max"), &format!("{}:{} {key}={rate}", t.major, t.minor))?;
        }
    }
    Ok(())
}

fn max(v: i64) -> String {
    if v < 0 { "max".into() } else { v.to_string() }
}

/// Writes `cgroup.freeze`; the kernel settles it later (see [`freeze_settled`]).
pub fn request_freeze(dir: &Path, frozen: bool) -> Result<()> {
    write(&dir.join("cgroup.freeze"), if frozen { "1" } else { "0" })
}

/// Whether `cgroup.events` reports the wanted frozen state.
pub fn freeze_settled(dir: &Path, frozen: bool) -> Result<bool> {
    let events = fs::read(&dir.join("cgroup.events"))?;
    Ok(fs::keyed(&events, "frozen") == Some(frozen as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BlockIoResources, ThrottleDevice, WeightDevice};

    /// A group directory holding empty control files. The kernel merges each write into the
    /// device's line; a plain file keeps only the last write, so each case writes one line.
    fn fake_group(files: &[&str]) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        for f in files {
            std::fs::write(t.path().join(f), "").unwrap();
        }
        t
    }

    #[test]
    fn throttles_are_io_max_lines() {
        let g = fake_group(&["io.max"]);
        let t = |rate| vec![ThrottleDevice { major: 254, minor: 0, rate }];
        block_io(g.path(), &BlockIoResources { throttle_write_iops_device: t(30), ..Default::default() }).unwrap();
        assert_eq!(std::fs::read_to_string(g.path().join("io.max")).unwrap(), "254:0 wiops=30");
        block_io(g.path(), &BlockIoResources { throttle_read_bps_device: t(0), ..Default::default() }).unwrap();
        assert_eq!(std::fs::read_to_string(g.path().join("io.max")).unwrap(), "254:0 rbps=max");
    }

    #[test]
    fn device_weights_need_a_weight_file() {
        let w = BlockIoResources {
            weight_device: vec![WeightDevice { major: 8, minor: 16, weight: 300 }],
            ..Default::default()
        };
        let none = fake_group(&["io.max"]);
        let err = block_io(none.path(), &w).unwrap_err().to_string();
        assert!(err.contains("neither io.weight nor io.bfq.weight"), "{err}");
        let bfq = fake_group(&["io.bfq.weight"]);
        block_io(bfq.path(), &w).unwrap();
        assert_eq!(std::fs::read_to_string(bfq.path().join("io.bfq.weight")).unwrap(), "8:16 300");
        let cost = fake_group(&["io.weight", "io.bfq.weight"]);
        block_io(cost.path(), &BlockIoResources { weight: Some(50), ..Default::default() }).unwrap();
        assert_eq!(std::fs::read_to_string(cost.path().join("io.weight")).unwrap(), "default 50");
        // A plain weight with no file for it is left, as dockerd's warning says.
        block_io(none.path(), &BlockIoResources { weight: Some(50), ..Default::default() }).unwrap();
    }

    #[test]
    fn support_follows_the_io_controller() {
        let root = fake_group(&[]);
        std::fs::write(root.path().join("cgroup.controllers"), "cpuset cpu pids memory").unwrap();
        assert_eq!(crate::block_io_support(root.path(), crate::Mode::V2), crate::BlockIoSupport::default());
        std::fs::write(root.path().join("cgroup.controllers"), "cpuset cpu io memory pids").unwrap();
        let s = crate::block_io_support(root.path(), crate::Mode::V2);
        assert!(s.throttle && s.weight_device && s.weight);
    }

    /// Keeps what would have been attached where, or refuses as a kernel without BPF would.
    #[derive(Default)]
    struct Recorder {
        attached: std::cell::RefCell<Vec<(std::path::PathBuf, Vec<crate::devices::program::Insn>)>>,
        refuse: bool,
    }

    impl Attach for Recorder {
        fn attach(&self, dir: &Path, program: &[crate::devices::program::Insn]) -> Result<()> {
            if self.refuse {
                return Err(crate::CgroupError::Bpf {
                    path: dir.to_path_buf(),
                    what: "loading".into(),
                    source: std::io::Error::from_raw_os_error(1),
                });
            }
            self.attached.borrow_mut().push((dir.to_path_buf(), program.to_vec()));
            Ok(())
        }
    }

    fn with_devices(devices: Vec<crate::DeviceRule>) -> Resources {
        let memory = crate::MemoryResources { limit: Some(1 << 30), ..Default::default() };
        Resources { devices, memory: Some(memory), ..Default::default() }
    }

    #[test]
    fn device_rules_become_a_program_attached_to_the_group() {
        let g = fake_group(&["memory.max"]);
        let rec = Recorder::default();
        let rules = crate::devices::docker_defaults(false);
        apply_with(g.path(), &with_devices(rules.clone()), &rec).unwrap();
        let want = crate::devices::program::build(&crate::devices::Policy::new(&rules).unwrap());
        assert_eq!(*rec.attached.borrow(), [(g.path().to_path_buf(), want)]);
        // Nothing device-related is written as a file on v2.
        let mut files: Vec<_> = std::fs::read_dir(g.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        files.sort();
        assert_eq!(files, ["memory.max"]);
        assert_eq!(std::fs::read_to_string(g.path().join("memory.max")).unwrap(), "1073741824");
    }

    /// `docker update` applies resources without devices: the program stays as it was.
    #[test]
    fn resources_without_devices_leave_the_program_alone() {
        let g = fake_group(&["memory.max"]);
        let rec = Recorder::default();
        apply_with(g.path(), &with_devices(vec![]), &rec).unwrap();
        assert!(rec.attached.borrow().is_empty());
        assert_eq!(std::fs::read_to_string(g.path().join("memory.max")).unwrap(), "1073741824");
    }

    #[test]
    fn a_group_whose_program_is_refused_is_not_set_up() {
        let g = fake_group(&["memory.max"]);
        let rec = Recorder { refuse: true, ..Default::default() };
        let err = apply_with(g.path(), &with_devices(crate::devices::docker_defaults(false)), &rec).unwrap_err();
        assert!(matches!(err, crate::CgroupError::Bpf { .. }), "{err}");
        assert_eq!(std::fs::read_to_string(g.path().join("memory.max")).unwrap(), "", "nothing else was applied");
        // Invalid rules are refused before the kernel is asked.
        let bad = vec![crate::DeviceRule { allow: true, kind: "x".into(), ..Default::default() }];
        let err = apply_with(g.path(), &with_devices(bad), &Recorder::default()).unwrap_err().to_string();
        assert!(err.contains("invalid device rule"), "{err}");
    }

    /// The real kernel path refuses a directory that is not a cgroup2 group, rather than
    /// carrying on without device control.
    #[test]
    fn the_kernel_path_fails_closed_outside_a_cgroup2_group() {
        let g = fake_group(&["memory.max"]);
        let err = apply(g.path(), &with_devices(crate::devices::docker_defaults(false))).unwrap_err();
        assert!(matches!(err, crate::CgroupError::Bpf { .. }), "{err}");
        assert_eq!(std::fs::read_to_string(g.path().join("memory.max")).unwrap(), "");
    }
}
