//! Network configs: the config directory, `.conf`/`.conflist` files, and what one plugin reads
//! on stdin.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::{CniError, Result};

const EXTENSIONS: [&str; 3] = ["conf", "conflist", "json"];

/// A network: its name, spec version and plugin chain, as a config list.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkList {
    pub name: String,
    pub cni_version: String,
    pub plugins: Vec<Map<String, Value>>,
    /// The list as JSON (a single-plugin config already turned into a list), as recorded.
    pub raw: Value,
    /// The file it came from.
    pub source: PathBuf,
}

/// The network containerd adds to every pod for `lo`.
pub fn loopback() -> Value {
    serde_json::json!({"cniVersion": "0.3.1", "name": "cni-loopback", "plugins": [{"type": "loopback"}]})
}

/// The first config of `dir` in lexical order, parsed.
pub fn default_network(dir: &Path) -> Result<NetworkList> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(CniError::NoConfig(dir.to_path_buf())),
        Err(e) => return Err(CniError::io(format!("reading {}", dir.display()), e)),
    };
    let mut files: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| EXTENSIONS.iter().any(|e| x == *e)))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let path = files.into_iter().next().ok_or_else(|| CniError::NoConfig(dir.to_path_buf()))?;
    let invalid = |reason: String| CniError::InvalidConfig { path: path.clone(), reason };
    let bytes = std::fs::read(&path).map_err(|e| invalid(e.to_string()))?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
    let list = if path.extension().is_some_and(|x| x == "conflist") { value } else { single_to_list(value) };
    NetworkList::parse(list, &path)
}

/// A single plugin's config as a list of one, named and versioned as the plugin is.
fn single_to_list(conf: Value) -> Value {
    let field = |k: &str| conf.get(k).cloned().unwrap_or(Value::String(String::new()));
    serde_json::json!({"cniVersion": field("cniVersion"), "name": field("name"), "plugins": [conf]})
}

/// A plugin's `type`: the name of its executable.
pub fn plugin_type(plugin: &Map<String, Value>) -> &str {
    plugin.get("type").and_then(Value::as_str).unwrap_or("")
}

impl NetworkList {
    /// Checks a config list as libcni does: a name, plugins, each with a type that names an
    /// executable (not a path).
    pub fn parse(raw: Value, source: &Path) -> Result<NetworkList> {
        let invalid = |reason: &str| CniError::InvalidConfig { path: source.to_path_buf(), reason: reason.into() };
        let obj = raw.as_object().ok_or_else(|| invalid("not a JSON object"))?;
        let name = obj.get("name").and_then(Value::as_str).unwrap_or("");
        if name.is_empty() {
            return Err(invalid("no network name"));
        }
        let cni_version = match obj.get("cniVersion") {
            None => "",
            Some(v) => v.as_str().ok_or_else(|| invalid("cniVersion is not a string"))?,
        };
        let plugins = obj.get("plugins").and_then(Value::as_array).ok_or_else(|| invalid("no plugins in the list"))?;
        if plugins.is_empty() {
            return Err(invalid("no plugins in the list"));
        }
        let mut out = Vec::new();
        for p in plugins {
            let p = p.as_object().ok_or_else(|| invalid("a plugin's config is not a JSON object"))?;
            let kind = plugin_type(p);
            if kind.is_empty() {
                return Err(invalid("a plugin has no type"));
            }
            if kind.contains('/') || kind == "." || kind == ".." {
                return Err(CniError::InvalidConfig {
                    path: source.to_path_buf(),
                    reason: format!("plugin type {kind:?} is a path, not the name of an executable"),
                });
            }
            out.push(p.clone());
        }
        Ok(NetworkList {
            name: name.to_string(),
            cni_version: cni_version.to_string(),
            plugins: out,
            raw,
            source: source.to_path_buf(),
        })
    }

    /// What `plugin` reads on stdin: its own config with the list's name and version, the
    /// previous result, and the runtime arguments it declares a capability for.
    pub fn plugin_config(
        &self,
        plugin: &Map<String, Value>,
        prev: Option<&Value>,
        capabilities: &Map<String, Value>,
    ) -> Value {
        let mut c = plugin.clone();
        c.insert("name".into(), Value::String(self.name.clone()));
        c.insert("cniVersion".into(), Value::String(self.cni_version.clone()));
        if let Some(p) = prev {
            c.insert("prevResult".into(), p.clone());
        }
        let runtime: Map<String, Value> = plugin
            .get("capabilities")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter(|(_, on)| on.as_bool() == Some(true))
            .filter_map(|(k, _)| capabilities.get(k).map(|v| (k.clone(), v.clone())))
            .collect();
        if !runtime.is_empty() {
            c.insert("runtimeConfig".into(), Value::Object(runtime));
        }
        Value::Object(c)
    }
}

/// Whether spec version `v` ("0.4.0") is at least `min`; an empty or unreadable version is
/// the oldest.
pub fn version_at_least(v: &str, min: (u64, u64, u64)) -> bool {
    let mut parts = v.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    let got = (parts.next().unwrap_or(0), parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    got >= min
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, body: &str) {
        std::fs::write(dir.join(name), body).unwrap();
    }

    #[test]
    fn the_first_config_in_lexical_order_is_the_network() {
        let d = tempfile::tempdir().unwrap();
        assert!(matches!(default_network(d.path()), Err(CniError::NoConfig(_))));
        assert!(matches!(default_network(&d.path().join("absent")), Err(CniError::NoConfig(_))));
        write(d.path(), "README", "not a config");
        write(d.path(), "20-b.conflist", r#"{"cniVersion":"1.0.0","name":"b","plugins":[{"type":"bridge"}]}"#);
        assert_eq!(default_network(d.path()).unwrap().name, "b");
        // A single plugin's config is a list of one, named as it is.
        write(d.path(), "10-a.conf", r#"{"cniVersion":"0.4.0","name":"a","type":"ptp","ipam":{}}"#);
        let n = default_network(d.path()).unwrap();
        assert_eq!((n.name.as_str(), n.cni_version.as_str(), n.plugins.len()), ("a", "0.4.0", 1));
        assert_eq!(plugin_type(&n.plugins[0]), "ptp");
        // The first file decides, even when it is broken: the network is not ready.
        write(d.path(), "05-broken.json", "{");
        let e = default_network(d.path()).unwrap_err().to_string();
        assert!(e.contains("05-broken.json") && e.contains("cni config uninitialized"), "{e}");
    }

    #[test]
    fn lists_need_a_name_and_plugins_with_a_type_that_is_not_a_path() {
        let p = Path::new("x.conflist");
        for (body, why) in [
            (r#"{"cniVersion":"1.0.0","plugins":[{"type":"bridge"}]}"#, "no network name"),
            (r#"{"name":"n","plugins":[]}"#, "no plugins"),
            (r#"{"name":"n"}"#, "no plugins"),
            (r#"{"name":"n","plugins":[{"ipam":{}}]}"#, "no type"),
            (r#"{"name":"n","plugins":[{"type":"../../bin/sh"}]}"#, "is a path"),
        ] {
            let e = NetworkList::parse(serde_json::from_str(body).unwrap(), p).unwrap_err().to_string();
            assert!(e.contains(why), "{body}: {e}");
        }
    }

    #[test]
    fn a_plugin_gets_the_list_name_version_prev_result_and_only_its_capabilities() {
        let raw = serde_json::json!({"cniVersion":"1.0.0","name":"net","plugins":[
            {"type":"bridge","name":"ignored"},
            {"type":"portmap","capabilities":{"portMappings":true,"bandwidth":false}}]});
        let l = NetworkList::parse(raw, Path::new("x")).unwrap();
        let caps: Map<String, Value> =
            serde_json::from_str(r#"{"portMappings":[{"hostPort":80}],"bandwidth":{"ingressRate":1},"dns":{}}"#)
                .unwrap();
        let first = l.plugin_config(&l.plugins[0], None, &caps);
        assert_eq!(first, serde_json::json!({"type":"bridge","name":"net","cniVersion":"1.0.0"}));
        let prev = serde_json::json!({"ips":[]});
        let second = l.plugin_config(&l.plugins[1], Some(&prev), &caps);
        assert_eq!(second["prevResult"], prev);
        assert_eq!(second["runtimeConfig"], serde_json::json!({"portMappings":[{"hostPort":80}]}));
    }

    #[test]
    fn versions_compare_numerically() {
        assert!(version_at_least("0.4.0", (0, 4, 0)));
        assert!(version_at_least("1.0.0", (0, 4, 0)));
        assert!(version_at_least("0.10.0", (0, 4, 0)));
        assert!(!version_at_least("0.3.1", (0, 4, 0)));
        assert!(!version_at_least("", (0, 4, 0)));
    }
}
