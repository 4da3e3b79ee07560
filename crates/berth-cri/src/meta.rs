//! What the CRI keeps about a pod or container, in the labels of its berth container record.
//!
//! Schema (version 1; a change here needs a migration of the records that carry it):
//! - `io.berth.namespace` = `k8s.io` ([`berth_container::record::NAMESPACE_LABEL`]).
//! - `io.berth.cri.kind` = `sandbox` | `container`.
//! - `io.berth.cri.sandbox` = the pod's ID (containers only).
//! - `io.berth.cri.meta` = [`SandboxMeta`] or [`ContainerMeta`] as JSON.
//!
//! The CRI's own labels and annotations live inside the JSON, never as record labels, so
//! nothing kubelet sets can collide with berth's keys.

use std::collections::{BTreeMap, HashMap};

use berth_container::Record;
use berth_container::record::NAMESPACE_LABEL;
use serde::{Deserialize, Serialize};

pub const NAMESPACE: &str = "k8s.io";
pub const KIND_LABEL: &str = "io.berth.cri.kind";
pub const SANDBOX_LABEL: &str = "io.berth.cri.sandbox";
pub const META_LABEL: &str = "io.berth.cri.meta";

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct SandboxMeta {
    pub name: String,
    pub uid: String,
    pub namespace: String,
    pub attempt: u32,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub log_directory: String,
    /// The CRI's NamespaceMode of the pod's network, PID and IPC namespaces.
    pub network: i32,
    pub pid: i32,
    pub ipc: i32,
    pub cgroup_parent: String,
    /// The pod's supplemental groups, which each of its containers gets too.
    pub supplemental_groups: Vec<i64>,
    pub runtime_handler: String,
    /// Nanoseconds since the epoch.
    pub created_at: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ContainerMeta {
    pub name: String,
    pub attempt: u32,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// The image as the request named it.
    pub image: String,
    /// The full path of the CRI log (empty: no log).
    pub log_path: String,
    pub mounts: Vec<MountMeta>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct MountMeta {
    pub container_path: String,
    pub host_path: String,
    pub readonly: bool,
    pub propagation: i32,
}

/// The record labels of a pod (`sandbox: None`) or of a container in pod `sandbox`.
pub fn labels<T: Serialize>(meta: &T, sandbox: Option<&str>) -> BTreeMap<String, String> {
    let mut l = BTreeMap::new();
    l.insert(NAMESPACE_LABEL.to_string(), NAMESPACE.to_string());
    l.insert(KIND_LABEL.to_string(), if sandbox.is_some() { "container" } else { "sandbox" }.to_string());
    if let Some(s) = sandbox {
        l.insert(SANDBOX_LABEL.to_string(), s.to_string());
    }
    l.insert(META_LABEL.to_string(), serde_json::to_string(meta).unwrap_or_default());
    l
}

fn is_kind(rec: &Record, kind: &str) -> bool {
    rec.config.labels.get(NAMESPACE_LABEL).is_some_and(|n| n == NAMESPACE)
        && rec.config.labels.get(KIND_LABEL).is_some_and(|k| k == kind)
}

/// The pod a record describes, if it is one.
pub fn sandbox(rec: &Record) -> Option<SandboxMeta> {
    if !is_kind(rec, "sandbox") {
        return None;
    }
    serde_json::from_str(rec.config.labels.get(META_LABEL)?).ok()
}

/// The container a record describes, with its pod's ID, if it is one.
pub fn container(rec: &Record) -> Option<(String, ContainerMeta)> {
    if !is_kind(rec, "container") {
        return None;
    }
    let sb = rec.config.labels.get(SANDBOX_LABEL)?.clone();
    Some((sb, serde_json::from_str(rec.config.labels.get(META_LABEL)?).ok()?))
}

pub fn to_map(m: &BTreeMap<String, String>) -> HashMap<String, String> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

pub fn from_map(m: &HashMap<String, String>) -> BTreeMap<String, String> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// A CRI label selector: every pair must be present.
pub fn selected(selector: &HashMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// An RFC 3339 time of a record as nanoseconds (0 for Go's zero time or nothing).
pub fn nanos(t: &str) -> i64 {
    berth_api::time::parse_rfc3339(t).filter(|n| *n > 0).map(|n| n as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trips_through_labels() {
        let m = ContainerMeta { name: "web".into(), attempt: 2, log_path: "/l/web/2.log".into(), ..Default::default() };
        let mut rec = Record::default();
        rec.config.labels = labels(&m, Some("pod1"));
        assert_eq!(container(&rec), Some(("pod1".to_string(), m)));
        assert_eq!(sandbox(&rec), None, "a container is not a pod");
        let s = SandboxMeta { name: "p".into(), uid: "u".into(), ..Default::default() };
        rec.config.labels = labels(&s, None);
        assert_eq!(sandbox(&rec), Some(s));
        rec.config.labels.remove(NAMESPACE_LABEL);
        assert_eq!(sandbox(&rec), None, "only records of the k8s.io namespace are the CRI's");
    }

    #[test]
    fn selectors_need_every_pair() {
        let l: BTreeMap<String, String> = [("a".into(), "1".into()), ("b".into(), "2".into())].into();
        assert!(selected(&HashMap::new(), &l));
        assert!(selected(&[("a".to_string(), "1".to_string())].into(), &l));
        assert!(!selected(&[("a".to_string(), "2".to_string())].into(), &l));
        assert!(!selected(&[("c".to_string(), "1".to_string())].into(), &l));
    }
}
