//! cgroup v2: one unified tree.

use std::path::Path;

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
    if let Some(b) = &r.block_io
        && let Some(w) = b.weight
    {
        let f = dir.join("io.weight");
        if f.exists() {
            write(&f, &format!("default {w}"))?;
        }
    }
    Ok(())
}

fn max(v: i64) -> String {
    if v < 0 { "max".into() } else { v.to_string() }
}

pub fn freeze(dir: &Path, frozen: bool) -> Result<()> {
    write(&dir.join("cgroup.freeze"), if frozen { "1" } else { "0" })?;
    for _ in 0..1000 {
        let events = fs::read(&dir.join("cgroup.events"))?;
        if fs::keyed(&events, "frozen") == Some(frozen as u64) {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    Err(crate::CgroupError::Invalid("the cgroup did not freeze".into()))
}
