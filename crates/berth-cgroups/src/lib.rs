//! Control groups for containers.
//!
//! # Contract
//!
//! A [`Cgroup`] names one container's group by a path relative to the hierarchy roots
//! (`/berth/<id>`). The same operations work on both layouts found in the field:
//!
//! - **v2 (unified)**: one tree at `/sys/fs/cgroup`; limits are `memory.max`, `cpu.max`,
//!   `pids.max`…; devices are an eBPF program attached to the group; freezing is
//!   `cgroup.freeze`; `cgroup.kill` kills everything inside. Controllers are enabled on the way down via `cgroup.subtree_control`.
//! - **v1 (and hybrid, v1 controllers with a v2 tree beside them)**: one tree per controller
//!   under `/sys/fs/cgroup/<controller>`; limits are `memory.limit_in_bytes`,
//!   `cpu.cfs_quota_us`…; devices are allow-listed in the `devices` controller; freezing is
//!   `freezer.state`. A new `cpuset` group starts empty, so its cpus/mems are copied down from
//!   the parent before any process can join.
//!
//! [`Cgroup::create`] is idempotent; [`Cgroup::apply`] writes only the limits that are set;
//! [`Cgroup::join`] moves the calling process (as `0`, so it works inside any pid
//! namespace); [`Cgroup::destroy`] kills what is left and removes the directories, tolerating
//! ones already gone. Every operation reports the file it failed on.
//!
//! Device rules are read once into a [`devices::Policy`] and enforced by the `devices`
//! controller on v1 and by an eBPF program attached to the group on v2 (see [`devices`]).
//! Callers apply them before any process joins the group; [`Cgroup::apply`] fails rather
//! than leave a v2 group with rules but without its program, or a v1 group with rules but
//! no `devices` controller to hold them (as runc, even for an allow-all policy).

pub mod devices;
mod fs;
mod stats;
mod v1;
mod v2;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use stats::Stats;

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cgroup {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Invalid(String),
    /// The kernel refused a `bpf(2)` step for the group at `path` (`what` carries the
    /// verifier's log when loading failed).
    #[error("cgroup {path}: {what}: {source}")]
    Bpf { path: PathBuf, what: String, source: std::io::Error },
}

pub type Result<T> = std::result::Result<T, CgroupError>;

/// Which cgroup layout the host uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    V1,
    V2,
}

/// Detects the host's layout from the filesystem type mounted at `/sys/fs/cgroup`.
pub fn detect(root: &Path) -> Mode {
    const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
    match rustix::fs::statfs(root) {
        Ok(s) if s.f_type == CGROUP2_SUPER_MAGIC => Mode::V2,
        _ => Mode::V1,
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DeviceRule {
    pub allow: bool,
    #[serde(rename = "type", default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub major: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minor: Option<i64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub access: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MemoryResources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation: Option<i64>,
    /// Memory plus swap, as in the OCI spec (`-1` for unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swappiness: Option<u64>,
    #[serde(rename = "disableOOMKiller", default, skip_serializing_if = "Option::is_none")]
    pub disable_oom_killer: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CpuResources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shares: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mems: Option<String>,
    /// Real-time scheduling budget (cgroup v1 `cpu.rt_runtime_us`/`cpu.rt_period_us`; the
    /// parent cgroup must grant at least as much, as with runc).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realtime_runtime: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realtime_period: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PidsResources {
    pub limit: i64,
}

/// One device's I/O weight (OCI `blockIO.weightDevice`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WeightDevice {
    pub major: i64,
    pub minor: i64,
    pub weight: u16,
}

/// One device's bandwidth or operations limit (OCI `blockIO.throttle*Device`): bytes or
/// operations per second, 0 for no limit (as the kernel reads 0 in v1).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ThrottleDevice {
    pub major: i64,
    pub minor: i64,
    pub rate: u64,
}

/// `linux.resources.blockIO` of the OCI spec. On v1 these are the `blkio.*` files (the
/// weights under `bfq.` when the kernel schedules with BFQ); on v2 `io.weight` (or
/// `io.bfq.weight`) and `io.max`. Weights are written only where the kernel offers a file
/// for them; callers refuse a device weight the host cannot apply before asking.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BlockIoResources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u16>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weight_device: Vec<WeightDevice>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub throttle_read_bps_device: Vec<ThrottleDevice>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub throttle_write_bps_device: Vec<ThrottleDevice>,
    #[serde(rename = "throttleReadIOPSDevice", default, skip_serializing_if = "Vec::is_empty")]
    pub throttle_read_iops_device: Vec<ThrottleDevice>,
    #[serde(rename = "throttleWriteIOPSDevice", default, skip_serializing_if = "Vec::is_empty")]
    pub throttle_write_iops_device: Vec<ThrottleDevice>,
}

impl BlockIoResources {
    /// The throttles with the key each has in v2's `io.max` and its v1 file's middle part.
    pub(crate) fn throttles(&self) -> [(&'static str, &'static str, &[ThrottleDevice]); 4] {
        [
            ("rbps", "read_bps", &self.throttle_read_bps_device),
            ("wbps", "write_bps", &self.throttle_write_bps_device),
            ("riops", "read_iops", &self.throttle_read_iops_device),
            ("wiops", "write_iops", &self.throttle_write_iops_device),
        ]
    }
}

/// What the host's block I/O controller offers, probed from the root of its hierarchy (the
/// files a child group gets are those its root shows, except v2's weights, which only
/// children have and which follow from the `io` controller being there).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlockIoSupport {
    pub weight: bool,
    pub weight_device: bool,
    pub throttle: bool,
}

/// Probes [`BlockIoSupport`] under `root` for `mode`.
pub fn block_io_support(root: &Path, mode: Mode) -> BlockIoSupport {
    match mode {
        Mode::V1 => {
            let has = |f: &str| root.join("blkio").join(f).exists();
            BlockIoSupport {
                weight: has("blkio.weight") || has("blkio.bfq.weight"),
                weight_device: has("blkio.weight_device") || has("blkio.bfq.weight_device"),
                throttle: has("blkio.throttle.read_bps_device"),
            }
        }
        Mode::V2 => {
            let io = fs::read(&root.join("cgroup.controllers")).is_ok_and(|c| c.split_whitespace().any(|c| c == "io"));
            BlockIoSupport { weight: io, weight_device: io, throttle: io }
        }
    }
}

/// `linux.resources` of the OCI spec.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryResources>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<CpuResources>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<PidsResources>,
    #[serde(rename = "blockIO", default, skip_serializing_if = "Option::is_none")]
    pub block_io: Option<BlockIoResources>,
}

/// One container's control group.
#[derive(Debug, Clone)]
pub struct Cgroup {
    /// Where the hierarchies are mounted (`/sys/fs/cgroup`).
    root: PathBuf,
    /// Relative path, e.g. `berth/<id>`.
    path: String,
    mode: Mode,
}

/// The v1 controllers berth manages, in the order they are created and joined.
pub const V1_CONTROLLERS: &[&str] = &["cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids"];

impl Cgroup {
    pub fn new(root: &Path, path: &str, mode: Mode) -> Result<Cgroup> {
        let rel = path.trim_matches('/');
        if rel.is_empty() || rel.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
            return Err(CgroupError::Invalid(format!("invalid cgroup path {path:?}")));
        }
        Ok(Cgroup { root: root.to_path_buf(), path: rel.to_string(), mode })
    }

    /// The host's cgroup for `path`, detecting the layout.
    pub fn host(path: &str) -> Result<Cgroup> {
        let root = Path::new("/sys/fs/cgroup");
        Cgroup::new(root, path, detect(root))
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// The directories of this group: one per v1 controller that is mounted, or one on v2.
    pub fn dirs(&self) -> Vec<PathBuf> {
        match self.mode {
            Mode::V2 => vec![self.root.join(&self.path)],
            Mode::V1 => V1_CONTROLLERS
                .iter()
                .map(|c| self.root.join(c))
                .filter(|d| d.join("cgroup.procs").exists())
                .map(|d| d.join(&self.path))
                .collect(),
        }
    }

    pub fn create(&self) -> Result<()> {
        match self.mode {
            Mode::V1 => v1::create(&self.root, &self.path),
            Mode::V2 => v2::create(&self.root, &self.path),
        }
    }

    pub fn apply(&self, r: &Resources) -> Result<()> {
        match self.mode {
            Mode::V1 => v1::apply(&self.root, &self.path, r),
            Mode::V2 => v2::apply(&self.root.join(&self.path), r),
        }
    }

    /// Moves the calling process, which must be single-threaded (a freshly forked child),
    /// into the group.
    ///
    /// On v1 it moves its one thread through `tasks`. Moving a whole process through
    /// `cgroup.procs` takes the kernel's global threadgroup lock for writing, and the first
    /// writer after a quiet spell waits out a full RCU grace period for it (6–14 ms on a
    /// 2-core VM with Linux 6.18: most of a container start), while the calling thread alone
    /// is moved without that lock (0.5 ms there). For a single-threaded process the result
    /// is the same; a kernel that locks either way is no slower than before.
    pub fn join(&self) -> Result<()> {
        let file = match self.mode {
            Mode::V1 => "tasks",
            // Domain groups take no thread moves on v2; starts there clone into the group.
            Mode::V2 => "cgroup.procs",
        };
        for d in self.dirs() {
            fs::write(&d.join(file), "0")?;
        }
        Ok(())
    }

    /// Moves process `pid` (as seen from the caller) into the group.
    pub fn add(&self, pid: i32) -> Result<()> {
        for d in self.dirs() {
            fs::write(&d.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// Host pids of every process in the group.
    pub fn pids(&self) -> Result<Vec<i32>> {
        let first = self
            .dirs()
            .into_iter()
            .next()
            .ok_or_else(|| CgroupError::Invalid("no cgroup controllers mounted".into()))?;
        let s = fs::read(&first.join("cgroup.procs"))?;
        Ok(s.lines().filter_map(|l| l.trim().parse().ok()).collect())
    }

    /// Asks the kernel to freeze or thaw the group and returns at once. Freezing settles
    /// when every task in the group is frozen; a task in uninterruptible sleep (waiting on a
    /// FUSE server or a throttled disk, say) holds it in between until the sleep ends.
    pub fn request_freeze(&self, frozen: bool) -> Result<()> {
        match self.mode {
            Mode::V1 => v1::request_freeze(&self.root, &self.path, frozen),
            Mode::V2 => v2::request_freeze(&self.root.join(&self.path), frozen),
        }
    }

    /// Whether the group has reached the state [`Cgroup::request_freeze`] asked for. One read
    /// of a control file: never blocks.
    pub fn freeze_settled(&self, frozen: bool) -> Result<bool> {
        match self.mode {
            Mode::V1 => v1::freeze_settled(&self.root, &self.path, frozen),
            Mode::V2 => v2::freeze_settled(&self.root.join(&self.path), frozen),
        }
    }

    pub fn stats(&self) -> Result<Stats> {
        match self.mode {
            Mode::V1 => stats::v1(&self.root, &self.path),
            Mode::V2 => stats::v2(&self.root.join(&self.path)),
        }
    }

    /// Whether the kernel's OOM killer has killed a process in the group.
    pub fn oom_killed(&self) -> bool {
        match self.mode {
            Mode::V1 => fs::read(&self.root.join("memory").join(&self.path).join("memory.oom_control"))
                .map(|s| fs::keyed(&s, "oom_kill").unwrap_or(0) > 0)
                .unwrap_or(false),
            Mode::V2 => fs::read(&self.root.join(&self.path).join("memory.events"))
                .map(|s| fs::keyed(&s, "oom_kill").unwrap_or(0) > 0)
                .unwrap_or(false),
        }
    }

    /// Sends `signal` to every process in the group.
    pub fn kill_all(&self, signal: i32) {
        if let Ok(pids) = self.pids() {
            for p in pids {
                if let (Some(pid), Some(sig)) =
                    (rustix::process::Pid::from_raw(p), rustix::process::Signal::from_named_raw(signal))
                {
                    let _ = rustix::process::kill_process(pid, sig);
                }
            }
        }
    }

    /// Removes the group's directories. A group that still has processes is killed first;
    /// `EBUSY` while they exit is retried briefly. Missing directories are fine.
    pub fn destroy(&self) -> Result<()> {
        if matches!(self.pids(), Ok(p) if !p.is_empty()) {
            if self.mode == Mode::V2 {
                let _ = fs::write(&self.root.join(&self.path).join("cgroup.kill"), "1");
            }
            self.kill_all(9);
        }
        let mut last = Ok(());
        for d in self.dirs() {
            last = fs::remove_dir_retrying(&d);
            if last.is_err() {
                break;
            }
        }
        if self.mode == Mode::V1 {
            // Controllers that are not mounted were skipped by dirs(); nothing else to do.
        }
        last
    }
}
