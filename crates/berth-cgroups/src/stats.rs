//! Resource usage for `docker stats`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::Result;
use crate::fs::{keyed, read, read_u64};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Stats {
    /// Total CPU time used, nanoseconds.
    pub cpu_total_ns: u64,
    pub cpu_user_ns: u64,
    pub cpu_system_ns: u64,
    pub memory_usage: u64,
    pub memory_limit: u64,
    /// Page cache charged to the group (excluded from "usage" by the docker CLI).
    pub memory_cache: u64,
    pub memory_stat: Vec<(String, u64)>,
    pub pids_current: u64,
    pub pids_limit: u64,
    pub blkio_read: u64,
    pub blkio_write: u64,
}

fn stat_pairs(s: &str) -> Vec<(String, u64)> {
    s.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?.to_string(), it.next()?.parse().ok()?))
        })
        .collect()
}

pub fn v1(root: &Path, rel: &str) -> Result<Stats> {
    let d = |c: &str| root.join(c).join(rel);
    let mut s = Stats {
        cpu_total_ns: read_u64(&d("cpuacct").join("cpuacct.usage")).unwrap_or(0),
        memory_usage: read_u64(&d("memory").join("memory.usage_in_bytes")).unwrap_or(0),
        memory_limit: read_u64(&d("memory").join("memory.limit_in_bytes")).unwrap_or(0),
        pids_current: read_u64(&d("pids").join("pids.current")).unwrap_or(0),
        pids_limit: read_u64(&d("pids").join("pids.max")).unwrap_or(0),
        ..Stats::default()
    };
    if let Ok(st) = read(&d("cpuacct").join("cpuacct.stat")) {
        // USER_HZ ticks.
        s.cpu_user_ns = keyed(&st, "user").unwrap_or(0) * 10_000_000;
        s.cpu_system_ns = keyed(&st, "system").unwrap_or(0) * 10_000_000;
    }
    if let Ok(st) = read(&d("memory").join("memory.stat")) {
        s.memory_cache = keyed(&st, "total_inactive_file").unwrap_or(0);
        s.memory_stat = stat_pairs(&st);
    }
    if let Ok(b) = read(&d("blkio").join("blkio.throttle.io_service_bytes")) {
        for l in b.lines() {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() == 3 {
                let v: u64 = f[2].parse().unwrap_or(0);
                match f[1] {
                    "Read" => s.blkio_read += v,
                    "Write" => s.blkio_write += v,
                    _ => {}
                }
            }
        }
    }
    Ok(s)
}

pub fn v2(dir: &Path) -> Result<Stats> {
    let mut s = Stats::default();
    if let Ok(st) = read(&dir.join("cpu.stat")) {
        s.cpu_total_ns = keyed(&st, "usage_usec").unwrap_or(0) * 1000;
        s.cpu_user_ns = keyed(&st, "user_usec").unwrap_or(0) * 1000;
        s.cpu_system_ns = keyed(&st, "system_usec").unwrap_or(0) * 1000;
    }
    s.memory_usage = read_u64(&dir.join("memory.current")).unwrap_or(0);
    s.memory_limit = read_u64(&dir.join("memory.max")).unwrap_or(0);
    if let Ok(st) = read(&dir.join("memory.stat")) {
        s.memory_cache = keyed(&st, "inactive_file").unwrap_or(0);
        s.memory_stat = stat_pairs(&st);
    }
    s.pids_current = read_u64(&dir.join("pids.current")).unwrap_or(0);
    s.pids_limit = read_u64(&dir.join("pids.max")).unwrap_or(0);
    if let Ok(io) = read(&dir.join("io.stat")) {
        for l in io.lines() {
            for kv in l.split_whitespace().skip(1) {
                if let Some((k, v)) = kv.split_once('=') {
                    let v: u64 = v.parse().unwrap_or(0);
                    match k {
                        "rbytes" => s.blkio_read += v,
                        "wbytes" => s.blkio_write += v,
                        _ => {}
                    }
                }
            }
        }
    }
    Ok(s)
}
