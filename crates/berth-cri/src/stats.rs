//! Resource usage as kubelet reads it: ContainerStats, ListContainerStats, PodSandboxStats
//! and ListPodSandboxStats.
//!
//! Figures come from the cgroups (a container's own; a pod's cgroup parent when kubelet gave
//! one, else the sum of its holder and containers), the writable layer's upper directory and
//! the pod's network namespace (`/proc/<holder>/net/dev`). Memory follows cAdvisor's
//! definitions, which kubelet's eviction uses: the working set is the usage less the inactive
//! file cache. `usage_nano_cores` is the rate since the previous sample of the same object,
//! absent on the first one, as containerd reports it.

use std::collections::HashMap;
use std::sync::Mutex;

use berth_cgroups::Stats;
use berth_container::Record;
use tonic::Status;

use crate::Cri;
use crate::meta::{self, ContainerMeta, SandboxMeta};
use crate::proto::{
    ContainerAttributes, ContainerMetadata, ContainerStats, ContainerStatsFilter, CpuUsage, FilesystemIdentifier,
    FilesystemUsage, LinuxPodSandboxStats, MemoryUsage, NetworkInterfaceUsage, NetworkUsage, PodSandboxAttributes,
    PodSandboxStats, PodSandboxStatsFilter, ProcessUsage, UInt64Value,
};

/// A memory limit at or above this is no limit (cgroup v1 writes the page-rounded i64::MAX).
const UNLIMITED: u64 = 1 << 62;

/// The last CPU sample of each container and pod: (nanoseconds since the epoch, CPU time).
#[derive(Default)]
pub struct Samples(Mutex<HashMap<String, (i64, u64)>>);

impl Samples {
    /// The CPU use since the previous sample of `id`, in nanocores, and remembers this one.
    fn rate(&self, id: &str, now: i64, cpu_ns: u64) -> Option<u64> {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let prev = m.insert(id.to_string(), (now, cpu_ns));
        let (then, used) = prev?;
        let elapsed = u64::try_from(now - then).ok().filter(|e| *e > 0)?;
        let delta = cpu_ns.checked_sub(used)?;
        Some((u128::from(delta) * 1_000_000_000 / u128::from(elapsed)) as u64)
    }

    /// Forgets objects that are gone, so the map does not grow with every pod ever run.
    fn retain(&self, live: &[&str]) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        m.retain(|k, _| live.contains(&k.as_str()));
    }
}

fn value(v: u64) -> Option<UInt64Value> {
    Some(UInt64Value { value: v })
}

/// A `memory.stat` entry: v1's hierarchical `total_<key>` when there is one, else `<key>`.
fn memory_stat(s: &Stats, key: &str) -> Option<u64> {
    let total = format!("total_{key}");
    let find = |k: &str| s.memory_stat.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
    find(&total).or_else(|| find(key))
}

fn cpu(samples: &Samples, id: &str, now: i64, s: &Stats) -> CpuUsage {
    CpuUsage {
        timestamp: now,
        usage_core_nano_seconds: value(s.cpu_total_ns),
        usage_nano_cores: samples.rate(id, now, s.cpu_total_ns).and_then(value),
        ..Default::default()
    }
}

fn memory(now: i64, s: &Stats) -> MemoryUsage {
    let inactive = memory_stat(s, "inactive_file").unwrap_or(0);
    let working_set = s.memory_usage.saturating_sub(inactive);
    let limited = s.memory_limit > 0 && s.memory_limit < UNLIMITED;
    MemoryUsage {
        timestamp: now,
        working_set_bytes: value(working_set),
        available_bytes: if limited { value(s.memory_limit.saturating_sub(working_set)) } else { None },
        usage_bytes: value(s.memory_usage),
        // cgroup v1 counts it as rss, v2 as anon.
        rss_bytes: memory_stat(s, "rss").or_else(|| memory_stat(s, "anon")).and_then(value),
        page_faults: memory_stat(s, "pgfault").and_then(value),
        major_page_faults: memory_stat(s, "pgmajfault").and_then(value),
        ..Default::default()
    }
}

/// The sum of several groups' usage (a pod without a cgroup parent of its own).
fn sum(all: &[Stats]) -> Stats {
    let mut t = Stats::default();
    let mut keyed: HashMap<String, u64> = HashMap::new();
    for s in all {
        t.cpu_total_ns += s.cpu_total_ns;
        t.cpu_user_ns += s.cpu_user_ns;
        t.cpu_system_ns += s.cpu_system_ns;
        t.memory_usage += s.memory_usage;
        t.pids_current += s.pids_current;
        for (k, v) in &s.memory_stat {
            *keyed.entry(k.clone()).or_default() += v;
        }
    }
    t.memory_stat = keyed.into_iter().collect();
    t
}

/// The interfaces of the network namespace process `pid` is in, loopback left out.
fn network(pid: impl std::fmt::Display, now: i64) -> Option<NetworkUsage> {
    let dev = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).ok()?;
    let mut interfaces: Vec<NetworkInterfaceUsage> = dev
        .lines()
        .skip(2)
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let name = name.trim();
            let v: Vec<u64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
            (name != "lo" && v.len() >= 16).then(|| NetworkInterfaceUsage {
                name: name.to_string(),
                rx_bytes: value(v[0]),
                rx_errors: value(v[2]),
                tx_bytes: value(v[8]),
                tx_errors: value(v[10]),
            })
        })
        .collect();
    interfaces.sort_by(|a, b| a.name.cmp(&b.name));
    // The pod's interface is eth0, as CNI names it.
    let default_interface = interfaces.iter().find(|i| i.name == "eth0").cloned();
    Some(NetworkUsage { timestamp: now, default_interface, interfaces })
}

impl Cri {
    pub async fn container_stats(&self, id: &str) -> Result<ContainerStats, Status> {
        let (rec, _, m) = self.container(id)?;
        Ok(self.stats_of(rec, m).await)
    }

    pub async fn list_container_stats(&self, filter: Option<ContainerStatsFilter>) -> Vec<ContainerStats> {
        let f = filter.unwrap_or_default();
        let mut out = Vec::new();
        for (rec, _, m) in self.all_containers().into_iter().filter(|(r, sb, m)| {
            (f.id.is_empty() || r.id.starts_with(&f.id))
                && (f.pod_sandbox_id.is_empty() || sb.starts_with(&f.pod_sandbox_id))
                && meta::selected(&f.label_selector, &m.labels)
        }) {
            out.push(self.stats_of(rec, m).await);
        }
        self.forget_gone();
        out
    }

    pub async fn pod_sandbox_stats(&self, id: &str) -> Result<PodSandboxStats, Status> {
        let (rec, sb) = self.sandbox(id)?;
        Ok(self.pod_stats_of(rec, sb).await)
    }

    pub async fn list_pod_sandbox_stats(&self, filter: Option<PodSandboxStatsFilter>) -> Vec<PodSandboxStats> {
        let f = filter.unwrap_or_default();
        let mut out = Vec::new();
        for (rec, sb) in self.sandboxes().into_iter().filter(|(r, sb)| {
            (f.id.is_empty() || r.id.starts_with(&f.id)) && meta::selected(&f.label_selector, &sb.labels)
        }) {
            out.push(self.pod_stats_of(rec, sb).await);
        }
        self.forget_gone();
        out
    }

    /// Every CRI container, with its pod's ID and description.
    fn all_containers(&self) -> Vec<(Record, String, ContainerMeta)> {
        self.containers
            .all()
            .into_iter()
            .map(|e| e.record())
            .filter_map(|r| meta::container(&r).map(|(sb, m)| (r, sb, m)))
            .collect()
    }

    fn forget_gone(&self) {
        let all: Vec<String> = self.containers.all().into_iter().map(|e| e.record().id).collect();
        self.samples.retain(&all.iter().map(String::as_str).collect::<Vec<_>>());
    }

    /// The cgroup usage of a record, `None` when it is not running (or its group is gone).
    fn usage(&self, rec: &Record) -> Option<Stats> {
        self.containers.usage(rec).ok().flatten()
    }

    async fn stats_of(&self, rec: Record, m: ContainerMeta) -> ContainerStats {
        let now = berth_api::time::now_nanos() as i64;
        let usage = self.usage(&rec);
        let root = self.data_root.join("snapshots");
        let upper = self.images.snapshots().upper_dir(&rec.id).ok();
        // A walk of the container's own files: off the async workers.
        let layer = match upper {
            Some(dir) => tokio::task::spawn_blocking(move || crate::image::usage(&dir)).await.ok(),
            None => None,
        };
        ContainerStats {
            attributes: Some(ContainerAttributes {
                id: rec.id.clone(),
                metadata: Some(ContainerMetadata { name: m.name.clone(), attempt: m.attempt }),
                labels: meta::to_map(&m.labels),
                annotations: meta::to_map(&m.annotations),
            }),
            cpu: usage.as_ref().map(|s| cpu(&self.samples, &rec.id, now, s)),
            memory: usage.as_ref().map(|s| memory(now, s)),
            writable_layer: layer.map(|(bytes, inodes)| FilesystemUsage {
                timestamp: now,
                fs_id: Some(FilesystemIdentifier { mountpoint: root.display().to_string() }),
                used_bytes: value(bytes),
                inodes_used: value(inodes),
            }),
            ..Default::default()
        }
    }

    async fn pod_stats_of(&self, rec: Record, sb: SandboxMeta) -> PodSandboxStats {
        let now = berth_api::time::now_nanos() as i64;
        let members = self.containers_in(&rec.id);
        let mut containers = Vec::new();
        for c in members.iter().cloned() {
            if let Some((_, m)) = meta::container(&c) {
                containers.push(self.stats_of(c, m).await);
            }
        }
        // kubelet's pod cgroup holds every process of the pod; without one, add them up.
        let usage = if rec.state.is_running() && !sb.cgroup_parent.trim_matches('/').is_empty() {
            berth_cgroups::Cgroup::host(&sb.cgroup_parent).and_then(|g| g.stats()).ok()
        } else {
            None
        };
        let usage = usage.or_else(|| {
            let all: Vec<Stats> = std::iter::once(&rec).chain(members.iter()).filter_map(|r| self.usage(r)).collect();
            (!all.is_empty()).then(|| sum(&all))
        });
        let on_node = sb.network == crate::proto::NamespaceMode::Node as i32;
        PodSandboxStats {
            attributes: Some(PodSandboxAttributes {
                id: rec.id.clone(),
                metadata: Some(crate::sandbox::metadata(&sb)),
                labels: meta::to_map(&sb.labels),
                annotations: meta::to_map(&sb.annotations),
            }),
            linux: Some(LinuxPodSandboxStats {
                cpu: usage.as_ref().map(|s| cpu(&self.samples, &rec.id, now, s)),
                memory: usage.as_ref().map(|s| memory(now, s)),
                // The node's own interfaces are not the pod's to report.
                network: if rec.state.is_running() && !on_node { network(rec.state.pid, now) } else { None },
                process: usage.as_ref().map(|s| ProcessUsage { timestamp: now, process_count: value(s.pids_current) }),
                containers,
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(usage: u64, limit: u64, stat: &[(&str, u64)]) -> Stats {
        Stats {
            memory_usage: usage,
            memory_limit: limit,
            memory_stat: stat.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn the_working_set_leaves_out_inactive_file_cache() {
        // cgroup v1 names the hierarchical figures total_*.
        let m = memory(1, &stats(100, 1000, &[("inactive_file", 5), ("total_inactive_file", 30), ("total_rss", 60)]));
        assert_eq!(m.working_set_bytes, value(70));
        assert_eq!(m.available_bytes, value(930));
        assert_eq!(m.rss_bytes, value(60));
        // cgroup v2: no total_, rss is anon; no limit, so nothing is "available".
        let m = memory(1, &stats(100, 0, &[("inactive_file", 40), ("anon", 50), ("pgmajfault", 2)]));
        assert_eq!(m.working_set_bytes, value(60));
        assert_eq!(m.available_bytes, None);
        assert_eq!(m.rss_bytes, value(50));
        assert_eq!(m.major_page_faults, value(2));
        assert_eq!(memory(1, &stats(10, u64::MAX / 2, &[])).available_bytes, None);
        // A cache larger than the usage (a racing read) is no negative working set.
        assert_eq!(memory(1, &stats(10, 0, &[("inactive_file", 20)])).working_set_bytes, value(0));
    }

    #[test]
    fn nanocores_are_the_rate_since_the_previous_sample() {
        let s = Samples::default();
        assert_eq!(s.rate("a", 1_000_000_000, 500), None);
        // Half a CPU second in one second: half a core.
        assert_eq!(s.rate("a", 2_000_000_000, 500_000_500), Some(500_000_000));
        // A clock that did not move, or a counter that went back (a new cgroup): no rate.
        assert_eq!(s.rate("a", 2_000_000_000, 600_000_000), None);
        assert_eq!(s.rate("a", 3_000_000_000, 1), None);
        s.retain(&["b"]);
        assert_eq!(s.rate("a", 4_000_000_000, 10), None);
    }

    #[test]
    fn a_pod_without_its_own_cgroup_adds_up_its_members() {
        let a = Stats { cpu_total_ns: 5, memory_usage: 10, pids_current: 1, ..stats(10, 0, &[("inactive_file", 1)]) };
        let b = Stats { cpu_total_ns: 7, memory_usage: 20, pids_current: 2, ..stats(20, 0, &[("inactive_file", 3)]) };
        let t = sum(&[a, b]);
        assert_eq!((t.cpu_total_ns, t.memory_usage, t.pids_current), (12, 30, 3));
        assert_eq!(memory_stat(&t, "inactive_file"), Some(4));
    }
}
