//! A pod's network through CNI: what the plugins are told about the pod (CNI_ARGS and the
//! runtime arguments containerd passes), attaching the holder's namespace, detaching it, and
//! the pod's addresses.
//!
//! The namespace plugins enter is the holder's, pinned as containerd pins it: a bind mount of
//! the holder's `/proc/<pid>/ns/net` at `<data-root>/cri-netns/<pod>` made when the pod is
//! attached and removed once DEL has succeeded. DEL never names the namespace by the holder's
//! PID, which another process may have by then (the plugins would delete `eth0` in whatever
//! namespace that is, the host's included). Without a pin (after a reboot) DEL gets no
//! namespace, and plugins release addresses and rules only. Pods on the node's network have
//! no CNI attachment.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_api::ErrorKind;
use berth_cni::{NetworkList, PodRequest};
use berth_container::Record;
use serde_json::{Map, Value, json};
use tonic::Status;

use crate::Cri;
use crate::error::{code, invalid};
use crate::proto::{PodIp, PodSandboxConfig, PodSandboxNetworkStatus, Protocol};

const INGRESS_ANNOTATION: &str = "kubernetes.io/ingress-bandwidth";
const EGRESS_ANNOTATION: &str = "kubernetes.io/egress-bandwidth";

/// The runtime arguments of a pod by capability name: `portMappings` (those with a host port),
/// `bandwidth` (from kubelet's annotations), `dns`, and the pod's annotations.
pub fn capabilities(cfg: &PodSandboxConfig) -> Result<Map<String, Value>, Status> {
    let mut caps = Map::new();
    let ports: Vec<Value> = cfg
        .port_mappings
        .iter()
        .filter(|p| p.host_port > 0)
        .map(|p| {
            let proto = match Protocol::try_from(p.protocol) {
                Ok(Protocol::Udp) => "udp",
                Ok(Protocol::Sctp) => "sctp",
                _ => "tcp",
            };
            json!({"hostPort": p.host_port, "containerPort": p.container_port, "protocol": proto, "hostIP": p.host_ip})
        })
        .collect();
    if !ports.is_empty() {
        caps.insert("portMappings".into(), Value::Array(ports));
    }
    let mut bw = Map::new();
    for (annotation, rate, burst) in
        [(INGRESS_ANNOTATION, "ingressRate", "ingressBurst"), (EGRESS_ANNOTATION, "egressRate", "egressBurst")]
    {
        if let Some(q) = cfg.annotations.get(annotation) {
            let bits = quantity(q).ok_or_else(|| invalid(format!("invalid {annotation} annotation {q:?}")))?;
            bw.insert(rate.into(), json!(bits));
            // As containerd: no burst limit of its own.
            bw.insert(burst.into(), json!(u32::MAX));
        }
    }
    if !bw.is_empty() {
        caps.insert("bandwidth".into(), Value::Object(bw));
    }
    if let Some(d) = &cfg.dns_config {
        caps.insert("dns".into(), json!({"servers": d.servers, "searches": d.searches, "options": d.options}));
    }
    let annotations: serde_json::Map<String, Value> =
        cfg.annotations.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    caps.insert("io.kubernetes.cri.pod-annotations".into(), Value::Object(annotations));
    Ok(caps)
}

/// A Kubernetes quantity ("10M", "1Gi", "500k", "2e6") as a whole number.
fn quantity(q: &str) -> Option<u64> {
    let q = q.trim();
    let split = q.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult: f64 = match suffix {
        "" => 1.0,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        s if s.starts_with(['e', 'E']) => 10f64.powi(s[1..].parse().ok()?),
        _ => return None,
    };
    let v = (n * mult).ceil();
    (v.is_finite() && v >= 0.0 && v < u64::MAX as f64).then_some(v as u64)
}

fn failed(what: &str, e: berth_cni::CniError) -> Status {
    Status::new(code(berth_api::HasKind::kind(&e)), format!("{what}: {e}"))
}

/// procfs's nsfs magic: what a pinned namespace's file is once mounted.
const NSFS_MAGIC: i64 = 0x6e73_6673;

/// Whether `path` holds a pinned namespace (not just the empty file left after a reboot).
fn pinned(path: &Path) -> bool {
    rustix::fs::statfs(path).is_ok_and(|s| s.f_type == NSFS_MAGIC)
}

/// Removes a pin: its mount, then its file.
fn unpin(path: &Path) {
    // An unmounted pin (after a reboot) is only a file: both steps may find nothing to do.
    let _ = rustix::mount::unmount(path, rustix::mount::UnmountFlags::DETACH);
    let _ = std::fs::remove_file(path);
}

impl Cri {
    /// The network namespace of running pod `id`: its pin while it is attached, else its
    /// holder's (a pod on the node's network has the node's).
    pub(crate) fn pod_netns(&self, id: &str) -> Result<PathBuf, String> {
        let rec = self.containers.get(id).map_err(|e| e.to_string())?.record();
        if !rec.state.is_running() || rec.state.pid <= 0 {
            return Err(format!("pod sandbox {id} is not running"));
        }
        let pin = self.pin_path(&rec.id);
        Ok(if pinned(&pin) { pin } else { PathBuf::from(format!("/proc/{}/ns/net", rec.state.pid)) })
    }

    fn pin_path(&self, id: &str) -> PathBuf {
        self.data_root.join("cri-netns").join(id)
    }

    /// Pins the network namespace of the running holder `rec` (see the module's docs).
    fn pin(&self, rec: &Record) -> Result<PathBuf, Status> {
        use std::os::unix::fs::DirBuilderExt;
        if !rec.state.is_running() || rec.state.pid <= 0 {
            return Err(Status::internal(format!("pod sandbox {} stopped before its network was set up", rec.id)));
        }
        let path = self.pin_path(&rec.id);
        let io = |what: &str, e: std::io::Error| Status::internal(format!("{what} {}: {e}", path.display()));
        if let Some(dir) = path.parent() {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| io("creating", e))?;
        }
        std::fs::File::create(&path).map_err(|e| io("creating", e))?;
        let source = format!("/proc/{}/ns/net", rec.state.pid);
        if let Err(e) = rustix::mount::mount_bind(source.as_str(), &path) {
            let _ = std::fs::remove_file(&path);
            return Err(io(&format!("pinning {source} at"), e.into()));
        }
        Ok(path)
    }

    /// The default network, or why pods cannot be networked yet.
    pub(crate) fn network(&self) -> Result<NetworkList, Status> {
        self.cni.network().map_err(|e| failed("failed to set up the pod's network", e))
    }

    /// ADDs the running holder `rec` to loopback and `net`.
    pub(crate) async fn attach(
        &self,
        rec: &Record,
        cfg: &PodSandboxConfig,
        net: &NetworkList,
        caps: Map<String, Value>,
    ) -> Result<(), Status> {
        let md = cfg.metadata.clone().unwrap_or_default();
        // CNI_ARGS is `K=V;K=V`: a `;` or `=` in a value would add arguments of its own
        // (`IP=` asks host-local for an address).
        for (what, v) in [("namespace", &md.namespace), ("name", &md.name), ("uid", &md.uid)] {
            if v.contains([';', '=']) {
                return Err(invalid(format!("the pod's {what} {v:?} may not contain ';' or '='")));
            }
        }
        let netns = self.pin(rec)?;
        let pod = PodRequest {
            id: rec.id.clone(),
            netns,
            args: vec![
                ("IgnoreUnknown".into(), "1".into()),
                ("K8S_POD_NAMESPACE".into(), md.namespace),
                ("K8S_POD_NAME".into(), md.name),
                ("K8S_POD_INFRA_CONTAINER_ID".into(), rec.id.clone()),
                ("K8S_POD_UID".into(), md.uid),
            ],
            capabilities: caps,
        };
        let what = format!("failed to set up the network of pod sandbox {}", rec.id);
        let pin = pod.netns.clone();
        let r = self.cni.setup(net, &pod).await.map(drop).map_err(|e| failed(&what, e));
        if r.is_err() {
            // `setup` undid what the plugins made: nothing is attached.
            unpin(&pin);
        }
        r
    }

    /// DELs pod `id` from its networks, if it is attached; nothing to do otherwise. The pin
    /// goes once DEL has succeeded (a failed DEL is retried in the same namespace).
    pub(crate) async fn detach(&self, id: &str) -> Result<(), Status> {
        let what = format!("failed to tear down the network of pod sandbox {id}");
        let pin = self.pin_path(id);
        let netns = pinned(&pin).then_some(pin.as_path());
        self.cni.teardown(id, netns).await.map_err(|e| failed(&what, e))?;
        unpin(&pin);
        Ok(())
    }

    /// Makes every removal of a pod's holder tear its network down, whichever API removes it
    /// (`docker rm -f` of a holder would otherwise leave its address leased, its host ports
    /// mapped and its namespace pinned). A DEL that fails keeps the holder's record, as
    /// RemovePodSandbox keeps it, so the removal can be tried again.
    pub fn detach_on_removal(self: &Arc<Self>) {
        let cri = Arc::downgrade(self);
        self.containers.on_removal(Arc::new(move |rec: Record| {
            let cri = cri.clone();
            Box::pin(async move {
                match cri.upgrade() {
                    Some(cri) if crate::meta::sandbox(&rec).is_some() => {
                        cri.detach(&rec.id).await.map_err(|e| e.message().to_string())
                    }
                    _ => Ok(()),
                }
            })
        }));
    }

    /// Tears down the networks of pods whose holder is gone: removed while the CRI was off,
    /// or the daemon stopped between the holder's DEL and its record's removal. Pins left
    /// without an attachment go too. Run once at start; failures are logged and retried at
    /// the next start.
    pub async fn detach_orphans(&self) {
        let gone =
            |id: &str| self.containers.get(id).is_err_and(|e| berth_api::HasKind::kind(&e) == ErrorKind::NotFound);
        let attached = match self.cni.attached() {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!("listing the pods' network attachments: {e}");
                Vec::new()
            }
        };
        for id in attached.iter().filter(|id| gone(id)) {
            match self.detach(id).await {
                Ok(()) => tracing::info!("tore down the network of pod sandbox {id}, whose holder is gone"),
                Err(e) => tracing::warn!("{}", e.message()),
            }
        }
        let pins = std::fs::read_dir(self.data_root.join("cri-netns")).into_iter().flatten().flatten();
        for name in pins.filter_map(|e| e.file_name().into_string().ok()) {
            if gone(&name) && !attached.contains(&name) {
                unpin(&self.pin_path(&name));
            }
        }
    }

    /// The pod's addresses (none on the node's network or before its network is set up) and,
    /// for verbose status, the network's result.
    pub(crate) fn pod_network(&self, id: &str) -> (PodSandboxNetworkStatus, Option<Value>) {
        let Ok(Some(att)) = self.cni.attachment(id) else { return (PodSandboxNetworkStatus::default(), None) };
        let mut ips = att.addresses().into_iter().map(|a| a.to_string());
        let st = PodSandboxNetworkStatus {
            ip: ips.next().unwrap_or_default(),
            additional_ips: ips.map(|ip| PodIp { ip }).collect(),
        };
        let result = att.networks.iter().rev().find_map(|n| n.result.clone());
        (st, result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{DnsConfig, PortMapping};

    #[test]
    fn port_mappings_bandwidth_and_dns_become_runtime_arguments() {
        let cfg = PodSandboxConfig {
            port_mappings: vec![
                PortMapping {
                    protocol: Protocol::Udp as i32,
                    container_port: 53,
                    host_port: 5353,
                    host_ip: "127.0.0.1".into(),
                },
                // No host port: nothing to map.
                PortMapping {
                    protocol: Protocol::Tcp as i32,
                    container_port: 80,
                    host_port: 0,
                    host_ip: String::new(),
                },
            ],
            annotations: [(INGRESS_ANNOTATION.to_string(), "10M".to_string())].into(),
            dns_config: Some(DnsConfig {
                servers: vec!["10.0.0.10".into()],
                searches: vec!["svc".into()],
                options: vec![],
            }),
            ..Default::default()
        };
        let c = capabilities(&cfg).unwrap();
        assert_eq!(
            c["portMappings"],
            json!([{"hostPort": 5353, "containerPort": 53, "protocol": "udp", "hostIP": "127.0.0.1"}])
        );
        assert_eq!(c["bandwidth"], json!({"ingressRate": 10_000_000u64, "ingressBurst": u32::MAX}));
        assert_eq!(c["dns"], json!({"servers": ["10.0.0.10"], "searches": ["svc"], "options": []}));
        assert_eq!(c["io.kubernetes.cri.pod-annotations"][INGRESS_ANNOTATION], "10M");
        let bad = PodSandboxConfig {
            annotations: [(EGRESS_ANNOTATION.to_string(), "fast".to_string())].into(),
            ..Default::default()
        };
        assert_eq!(capabilities(&bad).unwrap_err().code(), tonic::Code::InvalidArgument);
    }

    #[test]
    fn quantities() {
        assert_eq!(quantity("1M"), Some(1_000_000));
        assert_eq!(quantity("1Mi"), Some(1 << 20));
        assert_eq!(quantity("1.5k"), Some(1500));
        assert_eq!(quantity("2e3"), Some(2000));
        assert_eq!(quantity("100"), Some(100));
        assert_eq!(quantity("1X"), None);
        assert_eq!(quantity(""), None);
    }
}
