//! cgroup v1: a tree per controller.

use std::path::Path;

use crate::fs::{self, mkdir, write};
use crate::{Resources, Result, V1_CONTROLLERS};

pub fn create(root: &Path, rel: &str) -> Result<()> {
    for c in V1_CONTROLLERS {
        let base = root.join(c);
        if !base.join("cgroup.procs").exists() {
            continue;
        }
        let mut cur = base.clone();
        for comp in rel.split('/') {
            let parent = cur.clone();
            cur = cur.join(comp);
            if cur.exists() {
                continue;
            }
            mkdir(&cur)?;
            if *c == "cpuset" {
                // A fresh cpuset group has no cpus or mems; inherit the parent's.
                for f in ["cpuset.cpus", "cpuset.mems"] {
                    let v = fs::read(&parent.join(f))?;
                    write(&cur.join(f), v.trim())?;
                }
            }
        }
    }
    Ok(())
}

pub fn apply(root: &Path, rel: &str, r: &Resources) -> Result<()> {
    let dir = |c: &str| root.join(c).join(rel);
    if let Some(m) = &r.memory {
        let d = dir("memory");
        if let Some(v) = m.reservation {
            write(&d.join("memory.soft_limit_in_bytes"), &v.to_string())?;
        }
        // With swap, the combined limit must never be below the memory limit while the two
        // are changed, so raise memsw first when growing and lower it last when shrinking.
        let memsw = d.join("memory.memsw.limit_in_bytes");
        let swap_accounting = memsw.exists();
        match (m.limit, m.swap) {
            (Some(limit), Some(swap)) if swap_accounting => {
                let current = fs::read_u64(&d.join("memory.limit_in_bytes")).unwrap_or(u64::MAX) as i64;
                if limit > current || limit == -1 {
                    write(&memsw, &swap.to_string())?;
                    write(&d.join("memory.limit_in_bytes"), &limit.to_string())?;
                } else {
                    write(&d.join("memory.limit_in_bytes"), &limit.to_string())?;
                    write(&memsw, &swap.to_string())?;
                }
            }
            (Some(limit), _) => write(&d.join("memory.limit_in_bytes"), &limit.to_string())?,
            (None, Some(swap)) if swap_accounting => write(&memsw, &swap.to_string())?,
            _ => {}
        }
        if let Some(s) = m.swappiness {
            write(&d.join("memory.swappiness"), &s.to_string())?;
        }
        if let Some(true) = m.disable_oom_killer {
            write(&d.join("memory.oom_control"), "1")?;
        }
    }
    if let Some(c) = &r.cpu {
        let d = dir("cpu");
        if let Some(s) = c.shares {
            write(&d.join("cpu.shares"), &s.to_string())?;
        }
        if let Some(p) = c.period {
            write(&d.join("cpu.cfs_period_us"), &p.to_string())?;
        }
        if let Some(q) = c.quota {
            write(&d.join("cpu.cfs_quota_us"), &q.to_string())?;
        }
        // The period first: the kernel checks the runtime against it.
        if let Some(p) = c.realtime_period {
            write(&d.join("cpu.rt_period_us"), &p.to_string())?;
        }
        if let Some(r) = c.realtime_runtime {
            write(&d.join("cpu.rt_runtime_us"), &r.to_string())?;
        }
        let cs = dir("cpuset");
        if let Some(cpus) = c.cpus.as_deref().filter(|s| !s.is_empty()) {
            write(&cs.join("cpuset.cpus"), cpus)?;
        }
        if let Some(mems) = c.mems.as_deref().filter(|s| !s.is_empty()) {
            write(&cs.join("cpuset.mems"), mems)?;
        }
    }
    if let Some(p) = &r.pids {
        let v = if p.limit > 0 { p.limit.to_string() } else { "max".to_string() };
        write(&dir("pids").join("pids.max"), &v)?;
    }
    if let Some(b) = &r.block_io {
        block_io(&dir("blkio"), b)?;
    }
    if !r.devices.is_empty() {
        let policy = crate::devices::Policy::new(&r.devices)?;
        let d = dir("devices");
        // Fail closed: without the controller nothing would stop a container from opening a
        // device node it makes (CAP_MKNOD is a default capability). Privileged containers are
        // refused too, as runc refuses any container whose devices group it cannot find (and
        // dockerd will not start on such a v1 host at all).
        if !d.exists() {
            return Err(crate::CgroupError::Invalid(format!(
                "{}: the devices cgroup controller is not mounted, so the container's devices cannot be confined",
                d.display()
            )));
        }
        for (file, line) in policy.v1_lines() {
            write(&d.join(file), &line)?;
        }
    }
    Ok(())
}

/// The weights go to `blkio.weight*` or, with BFQ, `blkio.bfq.weight*`; a plain weight the
/// kernel has no file for is skipped (dockerd warns at create), a device weight fails.
fn block_io(d: &Path, b: &crate::BlockIoResources) -> Result<()> {
    let file = |name: &str| {
        [d.join(format!("blkio.{name}")), d.join(format!("blkio.bfq.{name}"))].into_iter().find(|f| f.exists())
    };
    if let Some(w) = b.weight
        && let Some(f) = file("weight")
    {
        write(&f, &w.to_string())?;
    }
    if !b.weight_device.is_empty() {
        let f = file("weight_device").ok_or_else(|| {
            crate::CgroupError::Invalid(format!("{}: the kernel offers no blkio.weight_device", d.display()))
        })?;
        for w in &b.weight_device {
            write(&f, &format!("{}:{} {}", w.major, w.minor, w.weight))?;
        }
    }
    for (_, name, devices) in b.throttles() {
        for t in devices {
            write(&d.join(format!("blkio.throttle.{name}_device")), &format!("{}:{} {}", t.major, t.minor, t.rate))?;
        }
    }
    Ok(())
}

/// Writes the wanted freezer state; the kernel settles it later (see [`freeze_settled`]).
pub fn request_freeze(root: &Path, rel: &str, frozen: bool) -> Result<()> {
    write(&root.join("freezer").join(rel).join("freezer.state"), if frozen { "FROZEN" } else { "THAWED" })
}

/// Whether the freezer state reads as wanted. It passes through FREEZING while a task cannot
/// be frozen yet (one in uninterruptible sleep, say).
pub fn freeze_settled(root: &Path, rel: &str, frozen: bool) -> Result<bool> {
    let s = fs::read(&root.join("freezer").join(rel).join("freezer.state"))?;
    Ok(s.trim() == if frozen { "FROZEN" } else { "THAWED" })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::docker_defaults;

    #[test]
    fn device_rules_without_a_devices_controller_fail_closed() {
        for privileged in [false, true] {
            let root = tempfile::tempdir().unwrap();
            let r = Resources { devices: docker_defaults(privileged), ..Default::default() };
            let err = apply(root.path(), "ctr", &r).unwrap_err().to_string();
            assert!(err.contains("devices cgroup controller is not mounted"), "{err}");
            // Control: with the controller's directory, the rules are written.
            std::fs::create_dir_all(root.path().join("devices/ctr")).unwrap();
            apply(root.path(), "ctr", &r).unwrap();
            assert!(root.path().join("devices/ctr/devices.allow").exists());
        }
    }
}
