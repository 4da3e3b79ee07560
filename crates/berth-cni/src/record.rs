//! Attachment records: one JSON file per pod in the cache directory, written whole (a
//! temporary file renamed over the old one), root's only.
//!
//! Schema (version 1; a change here needs a migration of the records on disk):
//! `{"version":1,"id":…,"netns":…,"args":[[k,v]…],"capabilities":{…},
//!   "networks":[{"ifname":…,"config":<config list>,"result":<result or null>}…]}`

use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{CniError, DEFAULT_IFNAME, NetworkList, PodRequest, Result, config, result};

/// A pod joined to its networks: what setup did and teardown needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    pub version: u32,
    /// The pod sandbox's ID (`CNI_CONTAINERID`).
    pub id: String,
    /// The network namespace the networks were added in.
    pub netns: String,
    pub args: Vec<(String, String)>,
    pub capabilities: Map<String, Value>,
    /// In ADD order: loopback, then the default network.
    pub networks: Vec<Joined>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Joined {
    pub ifname: String,
    /// The config list as it was at ADD.
    pub config: Value,
    /// The last plugin's result; `None` until the network's ADD succeeded.
    pub result: Option<Value>,
}

impl Attachment {
    pub(crate) fn new(pod: &PodRequest, net: &NetworkList) -> Attachment {
        let joined = |ifname: &str, config: Value| Joined { ifname: ifname.into(), config, result: None };
        Attachment {
            version: 1,
            id: pod.id.clone(),
            netns: pod.netns.display().to_string(),
            args: pod.args.clone(),
            capabilities: pod.capabilities.clone(),
            networks: vec![joined("lo", config::loopback()), joined(DEFAULT_IFNAME, net.raw.clone())],
        }
    }

    /// `CNI_ARGS`: `K=V` pairs joined by `;`.
    pub fn cni_args(&self) -> String {
        self.args.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(";")
    }

    /// The pod's addresses: those the default network put on `eth0`, IPv4 first.
    pub fn addresses(&self) -> Vec<IpAddr> {
        self.networks
            .iter()
            .filter(|n| n.ifname == DEFAULT_IFNAME)
            .filter_map(|n| n.result.as_ref())
            .flat_map(|r| result::addresses(r, DEFAULT_IFNAME))
            .collect()
    }

    /// The name of the default network.
    pub fn network_name(&self) -> String {
        let n = self.networks.iter().find(|n| n.ifname == DEFAULT_IFNAME);
        n.and_then(|n| n.config.get("name")?.as_str().map(String::from)).unwrap_or_default()
    }
}

fn path(dir: &Path, id: &str) -> Result<PathBuf> {
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(CniError::io(
            format!("recording the network of {id:?}"),
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a container ID"),
        ));
    }
    Ok(dir.join(format!("{id}.json")))
}

pub fn load(dir: &Path, id: &str) -> Result<Option<Attachment>> {
    let p = path(dir, id)?;
    match std::fs::read(&p) {
        Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| {
            CniError::io(format!("reading {}", p.display()), std::io::Error::new(std::io::ErrorKind::InvalidData, e))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CniError::io(format!("reading {}", p.display()), e)),
    }
}

pub fn save(dir: &Path, att: &Attachment) -> Result<()> {
    use std::io::Write;
    let p = path(dir, &att.id)?;
    let io = |what: &str, e| CniError::io(format!("{what} {}", p.display()), e);
    std::fs::create_dir_all(dir).map_err(|e| io("creating the directory of", e))?;
    // The records themselves are 0600: a directory that keeps wider permissions shows only
    // their names.
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    let tmp = p.with_extension("json.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| io("writing", e))?;
    let body = serde_json::to_vec(att).unwrap_or_default();
    f.write_all(&body).and_then(|_| f.sync_all()).map_err(|e| io("writing", e))?;
    std::fs::rename(&tmp, &p).map_err(|e| io("writing", e))
}

/// The IDs of the recorded attachments (a record being written is not one yet).
pub fn ids(dir: &Path) -> Result<Vec<String>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(CniError::io(format!("reading {}", dir.display()), e)),
    };
    let mut ids = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| CniError::io(format!("reading {}", dir.display()), e))?;
        let name = entry.file_name();
        if let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".json")).filter(|id| path(dir, id).is_ok()) {
            ids.push(id.to_string());
        }
    }
    ids.sort();
    Ok(ids)
}

pub fn remove(dir: &Path, id: &str) -> Result<()> {
    let p = path(dir, id)?;
    match std::fs::remove_file(&p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(CniError::io(format!("removing {}", p.display()), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_refuse_ids_that_are_paths() {
        let d = tempfile::tempdir().unwrap();
        let net = NetworkList::parse(
            serde_json::json!({"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge"}]}),
            Path::new("x"),
        )
        .unwrap();
        let pod = PodRequest {
            id: "abc123".into(),
            netns: "/proc/1/ns/net".into(),
            args: vec![("IgnoreUnknown".into(), "1".into()), ("K8S_POD_NAME".into(), "p".into())],
            ..Default::default()
        };
        let a = Attachment::new(&pod, &net);
        assert_eq!(a.cni_args(), "IgnoreUnknown=1;K8S_POD_NAME=p");
        assert_eq!(a.network_name(), "n");
        assert_eq!(load(d.path(), "abc123").unwrap(), None);
        save(d.path(), &a).unwrap();
        assert_eq!(load(d.path(), "abc123").unwrap(), Some(a));
        remove(d.path(), "abc123").unwrap();
        remove(d.path(), "abc123").unwrap();
        assert_eq!(load(d.path(), "abc123").unwrap(), None);
        assert!(load(d.path(), "../x").is_err());
    }
}
