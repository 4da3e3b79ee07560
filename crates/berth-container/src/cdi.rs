//! The Container Device Interface: devices named `vendor.com/class=name`, described by spec
//! files (JSON or YAML) in directories such as /etc/cdi and /var/run/cdi. A spec gives each
//! device the edits that make it usable in a container (environment, device nodes, mounts)
//! and may add edits for every device of its kind. `--device vendor.com/class=name` reaches
//! the daemon as a device request for the `cdi` driver; `--gpus` becomes CDI requests for
//! `nvidia.com/gpu` when a spec for it exists (dockerd 28 does the same).
//!
//! Names are resolved at create, so an unknown one is refused before anything exists, and
//! again at every start, when the edits are applied (a spec can change between the two).
//! Where two directories define a device, the later directory wins; two files of the same
//! directory defining it are a conflict. A file that does not parse is left out, and its
//! error is named when a device cannot be resolved.
//!
//! Hooks (host programs the runtime would run), `additionalGIDs`, `intelRdt` and
//! `netDevices` are refused rather than dropped: berth's runtime has no hooks, and a device
//! set up without what its vendor says it needs is worse than a clear error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_api::models::DeviceRequest;
use berth_runtime::spec::{Device, DeviceRule, Mount, Spec};
use serde::Deserialize;

use crate::{ContainerError, Result};

fn failed(e: impl std::fmt::Display) -> ContainerError {
    ContainerError::Invalid(format!("CDI device injection failed: {e}"))
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpecFile {
    #[serde(default)]
    #[allow(dead_code)]
    cdi_version: String,
    kind: String,
    #[serde(default)]
    devices: Vec<DeviceSpec>,
    #[serde(default)]
    container_edits: Edits,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeviceSpec {
    name: String,
    #[serde(default)]
    container_edits: Edits,
}

/// `containerEdits` of a spec or one of its devices.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Edits {
    #[serde(default)]
    env: Vec<String>,
    #[serde(default)]
    device_nodes: Vec<DeviceNode>,
    #[serde(default)]
    mounts: Vec<CdiMount>,
    #[serde(default)]
    hooks: Vec<serde_json::Value>,
    #[serde(default, rename = "additionalGIDs")]
    additional_gids: Vec<u32>,
    #[serde(default)]
    intel_rdt: Option<serde_json::Value>,
    #[serde(default)]
    net_devices: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
struct DeviceNode {
    path: String,
    #[serde(default)]
    host_path: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    major: Option<i64>,
    #[serde(default)]
    minor: Option<i64>,
    #[serde(default)]
    file_mode: Option<u32>,
    #[serde(default)]
    permissions: Option<String>,
    #[serde(default)]
    uid: Option<u32>,
    #[serde(default)]
    gid: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
struct CdiMount {
    host_path: String,
    container_path: String,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    options: Vec<String>,
}

/// One device as found: its edits, its spec's edits, and the file it came from.
#[derive(Debug, Clone)]
struct Found {
    device: Edits,
    spec: Edits,
    file: PathBuf,
}

/// Every device the spec directories define, by qualified name.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    devices: BTreeMap<String, Found>,
    /// Devices two files of one directory define.
    conflicts: BTreeMap<String, (PathBuf, PathBuf)>,
    /// Files that could not be read or parsed, with why.
    errors: Vec<String>,
}

/// `vendor.com/class`: a vendor of letters, digits, `.`, `-`, `_` and a class of letters,
/// digits, `-`, `_`, each starting and ending with a letter or digit.
fn valid_kind(kind: &str) -> bool {
    let word = |w: &str, extra: &str| {
        w.starts_with(|c: char| c.is_ascii_alphanumeric())
            && w.ends_with(|c: char| c.is_ascii_alphanumeric())
            && w.chars().all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
    };
    kind.split_once('/').is_some_and(|(v, c)| word(v, "._-") && word(c, "_-"))
}

fn valid_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-:".contains(c))
}

impl Registry {
    /// Reads the spec files of `dirs`, in order of rising priority.
    pub(crate) fn load(dirs: &[PathBuf]) -> Registry {
        let mut reg = Registry::default();
        for dir in dirs {
            let Ok(entries) = std::fs::read_dir(dir) else { continue };
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json" || x == "yaml" || x == "yml"))
                .collect();
            files.sort();
            let mut this_dir: BTreeMap<String, Found> = BTreeMap::new();
            for file in files {
                match read_spec(&file) {
                    Ok(spec) => {
                        for d in spec.devices {
                            let name = format!("{}={}", spec.kind, d.name);
                            if let Some(other) = this_dir.get(&name) {
                                reg.conflicts.insert(name.clone(), (other.file.clone(), file.clone()));
                                continue;
                            }
                            let found = Found {
                                device: d.container_edits,
                                spec: spec.container_edits.clone(),
                                file: file.clone(),
                            };
                            this_dir.insert(name, found);
                        }
                    }
                    Err(e) => reg.errors.push(format!("{}: {e}", file.display())),
                }
            }
            reg.devices.extend(this_dir);
        }
        reg
    }

    /// Whether any device of `kind` is defined.
    fn has_kind(&self, kind: &str) -> bool {
        self.devices.keys().any(|n| n.split_once('=').is_some_and(|(k, _)| k == kind))
    }

    fn names_of(&self, kind: &str) -> Vec<String> {
        self.devices
            .keys()
            .filter_map(|n| n.split_once('=').filter(|(k, _)| *k == kind).map(|(_, d)| d.to_string()))
            .collect()
    }

    /// The qualified names a container's device requests ask for. `--gpus` maps to
    /// `nvidia.com/gpu` devices when a spec defines them: `all` (or every device but `all`
    /// when there is no such device), the IDs given, or the first `count` devices. Without
    /// one it is refused with dockerd's words for a missing driver.
    pub(crate) fn requested(&self, requests: &[DeviceRequest]) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for r in requests {
            if r.driver == "cdi" {
                names.extend(r.device_ids.clone().unwrap_or_default());
                continue;
            }
            let gpu = r.capabilities.iter().flatten().any(|c| c.iter().any(|c| c == "gpu"));
            if !(matches!(r.driver.as_str(), "" | "nvidia") && gpu && self.has_kind("nvidia.com/gpu")) {
                let caps: Vec<String> = r.capabilities.iter().flatten().map(|c| format!("[{}]", c.join(" "))).collect();
                return Err(ContainerError::Invalid(format!(
                    "could not select device driver {:?} with capabilities: [{}]",
                    r.driver,
                    caps.join(" ")
                )));
            }
            let all = self.names_of("nvidia.com/gpu");
            let singles: Vec<String> = all.iter().filter(|n| *n != "all").cloned().collect();
            let picked: Vec<String> = match (&r.device_ids, r.count) {
                (Some(ids), _) if !ids.is_empty() => ids.clone(),
                (_, -1) if all.iter().any(|n| n == "all") => vec!["all".into()],
                (_, -1) => singles,
                (_, n) if n > 0 && (n as usize) <= singles.len() => singles[..n as usize].to_vec(),
                (_, n) => {
                    return Err(failed(format!("{n} GPUs requested, {} defined for nvidia.com/gpu", singles.len())));
                }
            };
            names.extend(picked.into_iter().map(|n| format!("nvidia.com/gpu={n}")));
        }
        Ok(names)
    }

    /// The edits for `names`: each device's, and each spec's once. Refuses a name that is
    /// malformed, unknown or in conflict, and edits berth cannot apply.
    pub(crate) fn edits(&self, names: &[String]) -> Result<Vec<Edits>> {
        let mut out = Vec::new();
        let mut specs_done: Vec<&Path> = Vec::new();
        let unknown: Vec<&str> = names.iter().map(String::as_str).filter(|n| !self.devices.contains_key(*n)).collect();
        for n in names {
            let ok = n.split_once('=').is_some_and(|(k, d)| valid_kind(k) && valid_name(d));
            if !ok {
                return Err(failed(format!("invalid CDI device name {n:?}: want vendor.com/class=name")));
            }
            if let Some((a, b)) = self.conflicts.get(n) {
                return Err(failed(format!("device {n} is defined in both {} and {}", a.display(), b.display())));
            }
        }
        if !unknown.is_empty() {
            let mut msg = format!("unresolvable CDI devices {}", unknown.join(", "));
            if !self.errors.is_empty() {
                msg.push_str(&format!(" (spec files left out: {})", self.errors.join("; ")));
            }
            return Err(failed(msg));
        }
        for n in names {
            let f = &self.devices[n];
            for e in [&f.device, &f.spec] {
                let what = [
                    (!e.hooks.is_empty(), "hooks"),
                    (!e.additional_gids.is_empty(), "additionalGIDs"),
                    (e.intel_rdt.is_some(), "intelRdt"),
                    (!e.net_devices.is_empty(), "netDevices"),
                ];
                if let Some((_, w)) = what.iter().find(|(set, _)| *set) {
                    return Err(failed(format!("{n} ({}): berth cannot apply {w}", f.file.display())));
                }
                // The device cgroup takes r, w and m only (as the CDI library checks a spec).
                let bad = e.device_nodes.iter().find_map(|d| {
                    let p = d.permissions.as_deref()?;
                    p.chars().any(|c| !"rwm".contains(c)).then_some((&d.path, p))
                });
                if let Some((path, p)) = bad {
                    return Err(failed(format!(
                        "{n} ({}): device node {path}: invalid permissions {p:?}: want r, w and m only",
                        f.file.display()
                    )));
                }
            }
            out.push(f.device.clone());
            if !specs_done.contains(&f.file.as_path()) {
                specs_done.push(&f.file);
                out.push(f.spec.clone());
            }
        }
        Ok(out)
    }
}

/// A spec file; YAML is a superset of JSON, so one parser reads both.
fn read_spec(path: &Path) -> std::result::Result<SpecFile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let spec: SpecFile = serde_yaml::from_str(&text).map_err(|e| e.to_string())?;
    if !valid_kind(&spec.kind) {
        return Err(format!("invalid kind {:?}: want vendor.com/class", spec.kind));
    }
    if let Some(d) = spec.devices.iter().find(|d| !valid_name(&d.name)) {
        return Err(format!("invalid device name {:?}", d.name));
    }
    Ok(spec)
}

/// Applies `edits` to a container's spec: variables (replacing one of the same name),
/// device nodes (allowed in the device cgroup unless privileged) and mounts.
pub(crate) fn apply(edits: &[Edits], spec: &mut Spec, privileged: bool) -> Result<()> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    for e in edits {
        for v in &e.env {
            let key = v.split_once('=').map_or(v.as_str(), |(k, _)| k);
            spec.process.env.retain(|x| x.split_once('=').map_or(x.as_str(), |(k, _)| k) != key);
            spec.process.env.push(v.clone());
        }
        for n in &e.device_nodes {
            let host = n.host_path.as_deref().unwrap_or(&n.path);
            let (kind, major, minor, mode) = match (&n.kind, n.major, n.minor) {
                (Some(k), Some(ma), Some(mi)) => (k.clone(), ma, mi, n.file_mode),
                _ => {
                    let md = std::fs::metadata(host).map_err(|e| failed(format!("device node {host}: {e}")))?;
                    let ft = md.file_type();
                    let kind = if ft.is_char_device() {
                        "c"
                    } else if ft.is_block_device() {
                        "b"
                    } else {
                        return Err(failed(format!("{host} is not a device node")));
                    };
                    let rdev = md.rdev();
                    let mode = n.file_mode.or(Some(md.mode() & 0o7777));
                    (kind.to_string(), rustix::fs::major(rdev) as i64, rustix::fs::minor(rdev) as i64, mode)
                }
            };
            spec.linux.devices.retain(|d| d.path != n.path);
            spec.linux.devices.push(Device {
                kind: kind.clone(),
                path: n.path.clone(),
                major,
                minor,
                file_mode: mode,
                uid: n.uid.or(Some(0)),
                gid: n.gid.or(Some(0)),
            });
            if !privileged && let Some(r) = spec.linux.resources.as_mut() {
                let access = n.permissions.clone().filter(|p| !p.is_empty()).unwrap_or_else(|| "rwm".into());
                r.devices.push(DeviceRule { allow: true, kind, major: Some(major), minor: Some(minor), access });
            }
        }
        for m in &e.mounts {
            let kind = m.kind.clone().filter(|k| !k.is_empty()).unwrap_or_else(|| "bind".into());
            let mut options = m.options.clone();
            if kind == "bind" && !options.iter().any(|o| o == "bind" || o == "rbind") {
                options.insert(0, "rbind".into());
            }
            spec.mounts.retain(|x| x.destination != m.container_path);
            spec.mounts.push(Mount {
                destination: m.container_path.clone(),
                kind,
                source: m.host_path.clone(),
                options,
                beneath: None,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, file: &str, text: &str) {
        std::fs::write(dir.join(file), text).unwrap();
    }

    const YAML: &str = r#"
cdiVersion: "0.6.0"
kind: vendor.example/dev
devices:
  - name: one
    containerEdits:
      env: ["ONE=1"]
      deviceNodes:
        - path: /dev/berth-one
          hostPath: /dev/null
containerEdits:
  env: ["KIND=dev"]
"#;

    #[test]
    fn specs_resolve_and_apply() {
        let low = tempfile::tempdir().unwrap();
        let high = tempfile::tempdir().unwrap();
        write(low.path(), "a.yaml", YAML);
        write(low.path(), "broken.json", "{not json");
        write(
            high.path(),
            "b.json",
            r#"{"cdiVersion":"0.6.0","kind":"vendor.example/dev","devices":[{"name":"one","containerEdits":{"env":["ONE=high"]}}]}"#,
        );
        let reg = Registry::load(&[low.path().into(), high.path().into()]);
        let edits = reg.edits(&["vendor.example/dev=one".into()]).unwrap();
        assert_eq!(edits[0].env, ["ONE=high"], "the later directory wins");
        let err = reg.edits(&["vendor.example/dev=two".into()]).unwrap_err().to_string();
        assert!(
            err.starts_with("CDI device injection failed: unresolvable CDI devices vendor.example/dev=two"),
            "{err}"
        );
        assert!(err.contains("broken.json"), "{err}");

        let only = Registry::load(&[low.path().into()]);
        let mut spec = Spec::default();
        spec.linux.resources = Some(Default::default());
        spec.process.env = vec!["ONE=0".into()];
        apply(&only.edits(&["vendor.example/dev=one".into()]).unwrap(), &mut spec, false).unwrap();
        assert_eq!(spec.process.env, ["ONE=1", "KIND=dev"]);
        let d = &spec.linux.devices[0];
        assert_eq!((d.kind.as_str(), d.path.as_str(), d.major, d.minor), ("c", "/dev/berth-one", 1, 3));
        assert_eq!(spec.linux.resources.unwrap().devices[0].access, "rwm");
    }

    #[test]
    fn conflicts_hooks_and_gpus() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.yaml", YAML);
        write(dir.path(), "b.yaml", YAML);
        let hooks = r#"{"kind":"vendor.example/hook","devices":[{"name":"h","containerEdits":{"hooks":[{"hookName":"createContainer","path":"/bin/true"}]}}]}"#;
        write(dir.path(), "c.json", hooks);
        let gpus = r#"{"kind":"nvidia.com/gpu","devices":[{"name":"0"},{"name":"1"},{"name":"all"}]}"#;
        let reg = Registry::load(&[dir.path().into()]);
        assert!(reg.edits(&["vendor.example/dev=one".into()]).unwrap_err().to_string().contains("defined in both"));
        assert!(reg.edits(&["vendor.example/hook=h".into()]).unwrap_err().to_string().contains("cannot apply hooks"));
        // Permissions other than r, w and m are refused naming the device, for a device's
        // nodes and for those its spec adds to every device of the kind.
        let node = |p: &str| format!(r#"{{"path":"/dev/x","hostPath":"/dev/null","permissions":"{p}"}}"#);
        for (kind, device, spec) in
            [("perm", node("rwx"), node("r")), ("specperm", node("rw"), node("rw ")), ("ok", node("mr"), node(""))]
        {
            let device = format!(r#"{{"name":"p","containerEdits":{{"deviceNodes":[{device}]}}}}"#);
            let json = format!(
                r#"{{"kind":"vendor.example/{kind}","devices":[{device}],"containerEdits":{{"deviceNodes":[{spec}]}}}}"#
            );
            write(dir.path(), &format!("{kind}.json"), &json);
        }
        let reg = Registry::load(&[dir.path().into()]);
        let err = reg.edits(&["vendor.example/perm=p".into()]).unwrap_err().to_string();
        assert!(err.contains("vendor.example/perm=p (") && err.contains("invalid permissions \"rwx\""), "{err}");
        let err = reg.edits(&["vendor.example/specperm=p".into()]).unwrap_err().to_string();
        assert!(err.contains("device node /dev/x: invalid permissions \"rw \""), "{err}");
        reg.edits(&["vendor.example/ok=p".into()]).unwrap();
        let gpu = |count, ids: Option<Vec<String>>| DeviceRequest {
            count,
            device_ids: ids,
            capabilities: Some(vec![vec!["gpu".into()]]),
            ..Default::default()
        };
        let e = reg.requested(&[gpu(-1, None)]).unwrap_err().to_string();
        assert_eq!(e, "could not select device driver \"\" with capabilities: [[gpu]]");
        write(dir.path(), "d.json", gpus);
        let reg = Registry::load(&[dir.path().into()]);
        assert_eq!(reg.requested(&[gpu(-1, None)]).unwrap(), ["nvidia.com/gpu=all"]);
        assert_eq!(reg.requested(&[gpu(1, None)]).unwrap(), ["nvidia.com/gpu=0"]);
        assert_eq!(reg.requested(&[gpu(0, Some(vec!["1".into()]))]).unwrap(), ["nvidia.com/gpu=1"]);
        assert!(reg.requested(&[gpu(3, None)]).is_err());
    }
}
