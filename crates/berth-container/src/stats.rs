//! `docker top`, `docker stats` and `docker update`.

use std::sync::Arc;

use berth_api::models::{TopResponse, UpdateRequest, UpdateResponse};
use berth_cgroups::{CpuResources, MemoryResources, PidsResources, Resources};
use serde_json::json;

use crate::record::Record;
use crate::{ContainerError, ContainerService, Result};

fn clock_ticks() -> u64 {
    100
}

fn boot_time() -> u64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("btime ").and_then(|v| v.trim().parse().ok())))
        .unwrap_or(0)
}

/// Total CPU time of the host in nanoseconds (what `system_cpu_usage` means).
fn system_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .map(|l| l.split_whitespace().skip(1).take(7).filter_map(|v| v.parse::<u64>().ok()).sum::<u64>())
        })
        .unwrap_or(0)
        * (1_000_000_000 / clock_ticks())
}

fn user_name(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 2 && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[0].to_string())
            })
        })
        .unwrap_or_else(|| uid.to_string())
}

/// One row of `ps -ef` for a host pid.
fn ps_row(pid: i32, btime: u64) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let close = stat.rfind(')')?;
    let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    let ppid = fields.get(1)?.to_string();
    let tty_nr: i64 = fields.get(4)?.parse().ok()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let start: u64 = fields.get(19)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let uid: u32 = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let cmd = if cmdline.is_empty() {
        format!("[{}]", &stat[stat.find('(')? + 1..close])
    } else {
        cmdline
            .split(|&b| b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let total = (utime + stime) / clock_ticks();
    let started = btime + start / clock_ticks();
    let now = (berth_api::time::now_nanos() / 1_000_000_000) as u64;
    let elapsed = now.saturating_sub(started).max(1);
    let c = ((utime + stime) / clock_ticks()) * 100 / elapsed;
    let stime_s = {
        let t = berth_api::time::rfc3339_nanos(started as i128 * 1_000_000_000);
        t.get(11..16).unwrap_or("").to_string()
    };
    let tty = if tty_nr == 0 {
        "?".to_string()
    } else {
        let major = (tty_nr >> 8) & 0xfff;
        let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
        if major == 136 { format!("pts/{minor}") } else { format!("tty{minor}") }
    };
    Some(vec![
        user_name(uid),
        pid.to_string(),
        ppid,
        c.to_string(),
        stime_s,
        tty,
        format!("{:02}:{:02}:{:02}", total / 3600, (total / 60) % 60, total % 60),
        cmd,
    ])
}

impl ContainerService {
    fn cgroup_of(&self, rec: &Record) -> Result<berth_cgroups::Cgroup> {
        berth_cgroups::Cgroup::host(&crate::cgroup_path(&self.cfg.cgroup_parent, rec))
            .map_err(|e| ContainerError::Internal(e.to_string()))
    }

    /// What a running container's cgroup has used (CPU, memory, pids, I/O); `None` when it is
    /// not running, so it has no cgroup to read.
    pub fn usage(&self, rec: &Record) -> Result<Option<berth_cgroups::Stats>> {
        if !rec.state.is_running() {
            return Ok(None);
        }
        let stats = self.cgroup_of(rec)?.stats().map_err(|e| ContainerError::Internal(e.to_string()))?;
        Ok(Some(stats))
    }

    /// `docker top`: the container's processes, `ps -ef` style by default, or the host's
    /// `ps` with the given arguments, filtered to the container's processes (as Docker does),
    /// and a `top` event, as dockerd logs one.
    pub async fn top(&self, id: &str, ps_args: &str) -> Result<TopResponse> {
        let rec = self.get(id)?.record();
        let r = self.top_processes(&rec, ps_args).await?;
        self.emit(&rec, "top", &[]);
        Ok(r)
    }

    async fn top_processes(&self, rec: &Record, ps_args: &str) -> Result<TopResponse> {
        let rec = rec.clone();
        if !rec.state.is_running() {
            return Err(ContainerError::Conflict(format!("container {} is not running", rec.id)));
        }
        let pids = self.cgroup_of(&rec)?.pids().map_err(|e| ContainerError::Internal(e.to_string()))?;
        if ps_args.is_empty() || ps_args == "-ef" {
            let btime = boot_time();
            let processes = pids.iter().filter_map(|p| ps_row(*p, btime)).collect();
            return Ok(TopResponse {
                titles: ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                processes,
            });
        }
        let out = tokio::process::Command::new("ps")
            .args(ps_args.split_whitespace())
            .output()
            .await
            .map_err(|e| ContainerError::Internal(format!("running ps: {e}")))?;
        if !out.status.success() {
            return Err(ContainerError::Internal(format!("ps: {}", String::from_utf8_lossy(&out.stderr).trim())));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        let header = lines.next().unwrap_or("");
        let titles: Vec<String> = header.split_whitespace().map(String::from).collect();
        let pid_col = titles
            .iter()
            .position(|t| t == "PID")
            .ok_or_else(|| ContainerError::Invalid("Couldn't find PID field in ps output".into()))?;
        let mut processes = Vec::new();
        for l in lines {
            let cols: Vec<&str> = l.split_whitespace().collect();
            if cols.len() < titles.len() {
                continue;
            }
            if cols[pid_col].parse::<i32>().is_ok_and(|p| pids.contains(&p)) {
                let mut row: Vec<String> = cols[..titles.len() - 1].iter().map(|s| s.to_string()).collect();
                row.push(cols[titles.len() - 1..].join(" "));
                processes.push(row);
            }
        }
        Ok(TopResponse { titles, processes })
    }

    /// One `docker stats` sample, in the Engine API's JSON shape. `pre` is the previous
    /// sample (for the CPU delta the CLI computes).
    pub fn stats_sample(&self, id: &str, pre: Option<&serde_json::Value>) -> Result<serde_json::Value> {
        let rec = self.get(id)?.record();
        let now = berth_api::time::rfc3339_now();
        let empty_pre = json!({"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0}, "system_cpu_usage": 0, "online_cpus": 0, "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}});
        if !rec.state.is_running() {
            return Ok(json!({
                "read": berth_api::time::ZERO_TIME, "preread": berth_api::time::ZERO_TIME,
                "name": format!("/{}", rec.name), "id": rec.id,
                "pids_stats": {}, "blkio_stats": {}, "num_procs": 0, "storage_stats": {},
                "cpu_stats": empty_pre, "precpu_stats": empty_pre, "memory_stats": {},
            }));
        }
        let cg = self.cgroup_of(&rec)?;
        let s = cg.stats().map_err(|e| ContainerError::Internal(e.to_string()))?;
        let ncpu = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let mut stats = serde_json::Map::new();
        for (k, v) in &s.memory_stat {
            stats.insert(k.clone(), json!(v));
        }
        let mut networks = serde_json::Map::new();
        if let Ok(dev) = std::fs::read_to_string(format!("/proc/{}/net/dev", rec.state.pid)) {
            for l in dev.lines().skip(2) {
                let Some((name, rest)) = l.split_once(':') else { continue };
                let name = name.trim();
                if name == "lo" {
                    continue;
                }
                let v: Vec<u64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
                if v.len() >= 16 {
                    networks.insert(
                        name.to_string(),
                        json!({
                            "rx_bytes": v[0], "rx_packets": v[1], "rx_errors": v[2], "rx_dropped": v[3],
                            "tx_bytes": v[8], "tx_packets": v[9], "tx_errors": v[10], "tx_dropped": v[11],
                        }),
                    );
                }
            }
        }
        let limit = if s.memory_limit == 0 || s.memory_limit > (1 << 62) { host_memory() } else { s.memory_limit };
        let cpu = json!({
            "cpu_usage": {"total_usage": s.cpu_total_ns, "usage_in_kernelmode": s.cpu_system_ns, "usage_in_usermode": s.cpu_user_ns},
            "system_cpu_usage": system_cpu_ns(),
            "online_cpus": ncpu,
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
        });
        let (pre_cpu, pre_read) = match pre {
            Some(p) => (p["cpu_stats"].clone(), p["read"].clone()),
            None => (empty_pre, json!(berth_api::time::ZERO_TIME)),
        };
        let mut v = json!({
            "read": now,
            "preread": pre_read,
            "name": format!("/{}", rec.name),
            "id": rec.id,
            "pids_stats": {"current": s.pids_current, "limit": s.pids_limit},
            "blkio_stats": {"io_service_bytes_recursive": [
                {"major": 0, "minor": 0, "op": "read", "value": s.blkio_read},
                {"major": 0, "minor": 0, "op": "write", "value": s.blkio_write}
            ]},
            "num_procs": 0,
            "storage_stats": {},
            "cpu_stats": cpu,
            "precpu_stats": pre_cpu,
            "memory_stats": {"usage": s.memory_usage, "stats": stats, "limit": limit},
        });
        if !networks.is_empty() {
            v["networks"] = serde_json::Value::Object(networks);
        }
        Ok(v)
    }

    /// `docker update`: new limits (applied at once if running) and restart policy.
    #[tracing::instrument(name = "update", skip_all, fields(container = tracing::field::Empty))]
    pub async fn update(self: &Arc<Self>, id: &str, u: UpdateRequest) -> Result<UpdateResponse> {
        let e = self.get(id)?;
        crate::name_in_span(&e);
        let _op = e.op.lock().await;
        let rec = e.record();
        // As dockerd does, a zero (or empty) field is one not given: the docker CLI sends
        // every field, and `update -m` must leave CPU shares and the restart policy alone.
        let u = given(u);
        let mut h = rec.host_config.clone();
        let conflict = |m: &str| Err(ContainerError::Invalid(format!("Cannot update container {}: {m}", rec.id)));
        if u.nano_cpus.is_some() && h.cpu_period > 0 {
            return conflict("Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set");
        }
        if u.nano_cpus.is_some() && h.cpu_quota > 0 {
            return conflict("Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set");
        }
        if u.cpu_period.is_some() && h.nano_cpus > 0 {
            return conflict("Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set");
        }
        if u.cpu_quota.is_some() && h.nano_cpus > 0 {
            return conflict("Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set");
        }
        if u.restart_policy.as_ref().is_some_and(|p| p.name != "no") && h.auto_remove {
            return conflict("Restart policy cannot be updated because AutoRemove is enabled for the container");
        }
        if let Some(v) = u.memory {
            h.memory = v;
        }
        if let Some(v) = u.memory_swap {
            h.memory_swap = v;
        }
        if let Some(v) = u.memory_reservation {
            h.memory_reservation = v;
        }
        if let Some(v) = u.cpu_shares {
            h.cpu_shares = v;
        }
        if let Some(v) = u.nano_cpus {
            h.nano_cpus = v;
        }
        if let Some(v) = u.cpu_period {
            h.cpu_period = v;
        }
        if let Some(v) = u.cpu_quota {
            h.cpu_quota = v;
        }
        if let Some(v) = &u.cpuset_cpus {
            h.cpuset_cpus = v.clone();
        }
        if let Some(v) = &u.cpuset_mems {
            h.cpuset_mems = v.clone();
        }
        if let Some(v) = u.pids_limit {
            h.pids_limit = Some(v);
        }
        if let Some(v) = u.blkio_weight {
            h.blkio_weight = v;
        }
        if let Some(v) = u.cpu_realtime_period {
            h.cpu_realtime_period = v;
        }
        if let Some(v) = u.cpu_realtime_runtime {
            h.cpu_realtime_runtime = v;
        }
        if u.cpu_realtime_period.is_some() || u.cpu_realtime_runtime.is_some() {
            crate::verify::decoder_resources(&h, &crate::verify::Host::probe())?;
        }
        if let Some(rp) = &u.restart_policy {
            h.restart_policy = rp.clone();
        }
        if h.memory > 0
            && u.memory.is_some()
            && u.memory_swap.is_none()
            && rec.host_config.memory_swap > 0
            && h.memory > rec.host_config.memory_swap
        {
            return Err(ContainerError::Invalid("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time".into()));
        }
        crate::create::validate_host_config(&h)?;
        if rec.state.is_running() {
            let mut r = Resources::default();
            if u.memory.is_some() || u.memory_swap.is_some() || u.memory_reservation.is_some() {
                let swap = match h.memory_swap {
                    0 if h.memory > 0 => Some(h.memory * 2),
                    0 => None,
                    s => Some(s),
                };
                r.memory = Some(MemoryResources {
                    limit: (h.memory > 0).then_some(h.memory),
                    swap,
                    reservation: (h.memory_reservation > 0).then_some(h.memory_reservation),
                    ..Default::default()
                });
            }
            if u.cpu_shares.is_some()
                || u.nano_cpus.is_some()
                || u.cpu_period.is_some()
                || u.cpu_quota.is_some()
                || u.cpuset_cpus.is_some()
                || u.cpuset_mems.is_some()
            {
                let mut c = CpuResources::default();
                if h.cpu_shares > 0 {
                    c.shares = Some(h.cpu_shares as u64);
                }
                if h.nano_cpus > 0 {
                    c.period = Some(100_000);
                    c.quota = Some(h.nano_cpus * 100_000 / 1_000_000_000);
                } else if u.nano_cpus.is_some() {
                    c.quota = Some(-1);
                }
                if h.cpu_period > 0 {
                    c.period = Some(h.cpu_period as u64);
                }
                if h.cpu_quota != 0 {
                    c.quota = Some(h.cpu_quota);
                }
                if !h.cpuset_cpus.is_empty() {
                    c.cpus = Some(h.cpuset_cpus.clone());
                }
                if !h.cpuset_mems.is_empty() {
                    c.mems = Some(h.cpuset_mems.clone());
                }
                r.cpu = Some(c);
            }
            if u.cpu_realtime_period.is_some() || u.cpu_realtime_runtime.is_some() {
                let c = r.cpu.get_or_insert_with(CpuResources::default);
                c.realtime_period = (h.cpu_realtime_period > 0).then_some(h.cpu_realtime_period as u64);
                c.realtime_runtime = (h.cpu_realtime_runtime != 0).then_some(h.cpu_realtime_runtime);
            }
            if let Some(w) = u.blkio_weight {
                r.block_io = Some(berth_cgroups::BlockIoResources { weight: Some(w), ..Default::default() });
            }
            if let Some(p) = u.pids_limit {
                r.pids = Some(PidsResources { limit: p });
            }
            self.cgroup_of(&rec)?
                .apply(&r)
                .map_err(|e| ContainerError::Invalid(format!("Cannot update container {}: {e}", rec.id)))?;
        }
        e.update(|r| r.host_config = h);
        self.persist(&e)?;
        self.emit(&e.record(), "update", &[]);
        let mut warnings = Vec::new();
        if u.blkio_weight.is_some() && !crate::verify::Host::probe().block_io.weight {
            warnings.push(
                "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.".into(),
            );
        }
        Ok(UpdateResponse { warnings })
    }
}

fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("MemTotal:").and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
        })
        .unwrap_or(0)
        * 1024
}

/// The fields of an update that were given: dockerd takes a zero or empty value for "leave
/// as it is" (and a restart policy without a name).
fn given(mut u: UpdateRequest) -> UpdateRequest {
    for v in [
        &mut u.cpu_shares,
        &mut u.memory,
        &mut u.memory_swap,
        &mut u.memory_reservation,
        &mut u.nano_cpus,
        &mut u.cpu_period,
        &mut u.cpu_quota,
        &mut u.cpu_realtime_period,
        &mut u.cpu_realtime_runtime,
    ] {
        if *v == Some(0) {
            *v = None;
        }
    }
    for v in [&mut u.cpuset_cpus, &mut u.cpuset_mems] {
        if v.as_deref() == Some("") {
            *v = None;
        }
    }
    if u.blkio_weight == Some(0) {
        u.blkio_weight = None;
    }
    if u.restart_policy.as_ref().is_some_and(|p| p.name.is_empty()) {
        u.restart_policy = None;
    }
    u
}
