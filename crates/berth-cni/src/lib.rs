//! Pod networking through CNI plugins (the Container Network Interface, spec 1.0 and the 0.3
//! and 0.4 versions still in use), driven the way a container runtime drives them.
//!
//! # Vocabulary
//!
//! - A **network config list** ([`NetworkList`], a "conflist") names a network and the chain of
//!   plugins that make it, each an object whose `type` is the name of an executable in one of
//!   the plugin directories. A `.conf` or `.json` file holds one plugin's config and is read as
//!   a list of one.
//! - The **default network** is the first file of the config directory, in lexical order, that
//!   ends in `.conf`, `.conflist` or `.json` (what libcni and containerd pick). The directory is
//!   read again at every [`Cni::network`], so a config written later is used without a restart;
//!   with none there, the network is "uninitialized" ([`CniError::NoConfig`]).
//! - An **attachment** ([`Attachment`]) is one pod joined to its networks: loopback (`lo`, the
//!   runtime's own network of the `loopback` plugin, as containerd adds it) and the default
//!   network (`eth0`). It is recorded as a file in the cache directory, named after the pod, and
//!   holds everything a later DEL needs: the config lists as they were at ADD, the plugins'
//!   results, the pod's CNI_ARGS and its runtime arguments (port mappings and the like). The
//!   record lives on disk, so DEL works after a daemon restart and the pod's addresses are
//!   reported again.
//!
//! # Lifecycle
//!
//! 1. [`Cni::network`] loads the default network, or says why there is none.
//! 2. [`Cni::setup`] records the attachment *before* any plugin runs (a daemon that dies
//!    mid-ADD still leaves enough behind to DEL), then ADDs loopback and the network: each
//!    plugin of a list gets the previous plugin's result as `prevResult`, and the last result is
//!    the network's. When a plugin fails, everything added so far is DELeted again, the record
//!    goes, and the plugin's error is returned: nothing stays half made.
//! 3. [`Cni::attachment`] reads the record back; [`Attachment::addresses`] are the pod's IPs
//!    (those the default network's result puts on `eth0` inside the pod, IPv4 first).
//! 4. [`Cni::teardown`] DELs the networks in reverse order, each list's plugins in reverse
//!    order, with the recorded config and arguments (not what the directory holds now) and,
//!    from spec 0.4.0 on, the recorded result as `prevResult`. Every plugin is asked even when
//!    one fails, and every failure is reported; the record is removed only when all succeeded,
//!    so the next teardown tries again. Without a record there is nothing to do: teardown is
//!    idempotent. When the pod's network namespace is gone, `CNI_NETNS` is empty, which plugins
//!    accept for DEL (they release addresses and rules; the interfaces went with the namespace).
//!
//! # The exec protocol
//!
//! A plugin runs as a child process, never through a shell, with the daemon's environment
//! (minus any `CNI_*` of its own) plus `CNI_COMMAND`, `CNI_CONTAINERID`, `CNI_NETNS`,
//! `CNI_IFNAME`, `CNI_ARGS` and `CNI_PATH` (the plugin directories, `:`-separated, for plugins
//! that call IPAM plugins), and its config on stdin: the plugin's object from the list with the
//! list's `name` and `cniVersion`, `prevResult`, and a `runtimeConfig` holding those runtime
//! arguments the plugin declares in its `capabilities`. Success is exit status 0 with the
//! result JSON on stdout (ADD; DEL prints nothing); failure is a non-zero status with an error
//! object (`code`, `msg`, `details`) on stdout, whose message is reported. A plugin that takes
//! longer than [`Options::timeout`] is killed and reported as failed.

mod config;
mod exec;
mod record;
mod result;

use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_api::{ErrorKind, HasKind};
use serde_json::{Map, Value};

pub use config::NetworkList;
pub use record::Attachment;

/// The interface the default network makes in the pod.
pub const DEFAULT_IFNAME: &str = "eth0";
/// The plugin directories when none are configured: the CNI project's customary place and
/// Debian's (containernetworking-plugins).
pub const DEFAULT_BIN_DIRS: [&str; 2] = ["/opt/cni/bin", "/usr/lib/cni"];
pub const DEFAULT_CONF_DIR: &str = "/etc/cni/net.d";
/// How long one plugin may run.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum CniError {
    #[error("cni config uninitialized: no network config (.conf, .conflist or .json) in {}", .0.display())]
    NoConfig(PathBuf),
    #[error("cni config uninitialized: invalid network config {}: {reason}", path.display())]
    InvalidConfig { path: PathBuf, reason: String },
    #[error("plugin type={plugin:?} name={network:?} failed ({command}): {message}")]
    Plugin {
        plugin: String,
        network: String,
        command: &'static str,
        /// The CNI error code the plugin gave (11: try again later).
        code: Option<u64>,
        message: String,
    },
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    /// Several failures of one teardown, each reported.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Many(Vec<CniError>),
}

pub type Result<T, E = CniError> = std::result::Result<T, E>;

impl CniError {
    fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        CniError::Io { context: context.into(), source }
    }
}

impl HasKind for CniError {
    fn kind(&self) -> ErrorKind {
        match self {
            // Not ready yet: the node's network is still being configured.
            CniError::NoConfig(_) | CniError::InvalidConfig { .. } => ErrorKind::Unavailable,
            CniError::Plugin { code: Some(11), .. } => ErrorKind::Unavailable,
            CniError::Plugin { .. } | CniError::Io { .. } => ErrorKind::Internal,
            CniError::Many(v) => v.first().map_or(ErrorKind::Internal, HasKind::kind),
        }
    }
}

/// Where the configs, the plugins and the attachment records are.
#[derive(Debug, Clone)]
pub struct Options {
    pub conf_dir: PathBuf,
    /// Searched in order for a plugin's executable.
    pub bin_dirs: Vec<PathBuf>,
    /// Attachment records (one JSON file per pod), kept across daemon restarts.
    pub cache_dir: PathBuf,
    pub timeout: Duration,
}

/// What the runtime knows of the pod it attaches.
#[derive(Debug, Clone, Default)]
pub struct PodRequest {
    /// `CNI_CONTAINERID`: the pod sandbox's ID.
    pub id: String,
    /// The pod's network namespace (a path plugins can open).
    pub netns: PathBuf,
    /// `CNI_ARGS`, in order (`K8S_POD_NAMESPACE` and the like).
    pub args: Vec<(String, String)>,
    /// Runtime arguments by capability name (`portMappings`, `dns`, `bandwidth`…); a plugin
    /// gets those it declares in its `capabilities` as its `runtimeConfig`.
    pub capabilities: Map<String, Value>,
}

/// The CNI plugins of one node.
#[derive(Debug, Clone)]
pub struct Cni {
    opts: Options,
}

impl Cni {
    pub fn new(opts: Options) -> Cni {
        Cni { opts }
    }

    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// The default network, read from the config directory now.
    pub fn network(&self) -> Result<NetworkList> {
        config::default_network(&self.opts.conf_dir)
    }

    /// Attaches a pod to loopback and `net` (see the module's lifecycle).
    pub async fn setup(&self, net: &NetworkList, pod: &PodRequest) -> Result<Attachment> {
        let mut att = Attachment::new(pod, net);
        self.save(&att)?;
        for i in 0..att.networks.len() {
            let list = NetworkList::parse(att.networks[i].config.clone(), Path::new("(recorded)"))?;
            let added = self.add_list(&list, &att, i).await;
            match added {
                Ok(result) => {
                    att.networks[i].result = Some(result);
                    self.save(&att)?;
                }
                Err(e) => {
                    return match self.del_all(&att, Some(&pod.netns)).await {
                        Ok(()) => {
                            self.forget(&att.id)?;
                            Err(e)
                        }
                        // The record stays: the next teardown DELs again.
                        Err(undo) => Err(CniError::Many(vec![e, undo])),
                    };
                }
            }
        }
        Ok(att)
    }

    /// The recorded attachment of pod `id`, if it is attached.
    pub fn attachment(&self, id: &str) -> Result<Option<Attachment>> {
        record::load(&self.opts.cache_dir, id)
    }

    /// The pods with a recorded attachment.
    pub fn attached(&self) -> Result<Vec<String>> {
        record::ids(&self.opts.cache_dir)
    }

    /// Detaches pod `id` from every network it was attached to; `netns` is its network
    /// namespace while it still exists. Succeeds when there is nothing to detach.
    pub async fn teardown(&self, id: &str, netns: Option<&Path>) -> Result<()> {
        let Some(att) = self.attachment(id)? else { return Ok(()) };
        self.del_all(&att, netns).await?;
        self.forget(id)
    }

    fn save(&self, att: &Attachment) -> Result<()> {
        record::save(&self.opts.cache_dir, att)
    }

    fn forget(&self, id: &str) -> Result<()> {
        record::remove(&self.opts.cache_dir, id)
    }

    /// Runs ADD through the plugins of network `i` of the attachment; the last result.
    async fn add_list(&self, list: &NetworkList, att: &Attachment, i: usize) -> Result<Value> {
        let ifname = &att.networks[i].ifname;
        let mut prev: Option<Value> = None;
        for plugin in &list.plugins {
            let conf = list.plugin_config(plugin, prev.as_ref(), &att.capabilities);
            let out = self.invoke(list, plugin, "ADD", att, Path::new(&att.netns), ifname, &conf).await?;
            let result: Value =
                serde_json::from_slice(&out).ok().filter(Value::is_object).ok_or_else(|| CniError::Plugin {
                    plugin: config::plugin_type(plugin).to_string(),
                    network: list.name.clone(),
                    command: "ADD",
                    code: None,
                    message: format!("no result (a JSON object) on stdout: {:?}", String::from_utf8_lossy(&out)),
                })?;
            prev = Some(result);
        }
        Ok(prev.unwrap_or_else(|| Value::Object(Map::new())))
    }

    /// DELs every network of the attachment, last first, and reports every failure.
    async fn del_all(&self, att: &Attachment, netns: Option<&Path>) -> Result<()> {
        // A namespace that is gone is no longer named: plugins then only release what lives
        // outside it.
        let netns = netns.filter(|p| p.exists()).unwrap_or(Path::new(""));
        let mut errors = Vec::new();
        for joined in att.networks.iter().rev() {
            let list = match NetworkList::parse(joined.config.clone(), Path::new("(recorded)")) {
                Ok(l) => l,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            // The cached result is part of DEL's config from spec 0.4.0 on.
            let prev = joined.result.as_ref().filter(|_| config::version_at_least(&list.cni_version, (0, 4, 0)));
            for plugin in list.plugins.iter().rev() {
                let conf = list.plugin_config(plugin, prev, &att.capabilities);
                if let Err(e) = self.invoke(&list, plugin, "DEL", att, netns, &joined.ifname, &conf).await {
                    errors.push(e);
                }
            }
        }
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(CniError::Many(errors)),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn invoke(
        &self,
        list: &NetworkList,
        plugin: &Map<String, Value>,
        command: &'static str,
        att: &Attachment,
        netns: &Path,
        ifname: &str,
        conf: &Value,
    ) -> Result<Vec<u8>> {
        let kind = config::plugin_type(plugin);
        let call = exec::Call {
            plugin: kind,
            network: &list.name,
            command,
            container_id: &att.id,
            netns,
            ifname,
            args: &att.cni_args(),
            bin_dirs: &self.opts.bin_dirs,
            timeout: self.opts.timeout,
        };
        exec::run(&call, conf).await
    }
}

#[cfg(test)]
mod tests;
