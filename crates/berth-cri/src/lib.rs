//! The Kubernetes Container Runtime Interface (CRI, `runtime.v1`) on top of berth's container
//! and image services, so a kubelet can use berth as its node runtime.
//!
//! # Vocabulary and contract
//!
//! - A **pod sandbox** is one berth container running the built-in holder process
//!   (`berth-shim pause`, bind-mounted as `/sbin/docker-init`; no `pause` image is pulled). The
//!   holder owns the pod's network, IPC and UTS namespaces: a network namespace of its own,
//!   or the node's with `hostNetwork`.
//! - A pod's own network namespace is set up by **CNI** plugins ([`berth_cni`]), as containerd
//!   does it: loopback and the first network of the config directory, ADDed once the holder
//!   runs (with the pod's CNI_ARGS, port mappings, bandwidth, DNS and annotations as runtime
//!   arguments), DELeted when the pod stops or is removed (its holder removed through the
//!   Docker API too, and at start for holders removed while the CRI was off), from the
//!   attachment recorded under the data root (so after a daemon restart too). The pod's status reports the addresses
//!   the network gave `eth0`. Without a network config `Status` reports `NetworkReady` false
//!   (`NetworkPluginNotReady`) and such a pod is refused before anything is made for it; a
//!   config written later is used at once. A plugin that fails leaves nothing behind: what
//!   was added is DELeted and the holder removed.
//! - A **container** in a pod is a berth container that joins the holder's namespaces as
//!   `--network container:<holder>` does (network, IPC, UTS; PID when the pod asks), shares the
//!   holder's /etc/hosts and /etc/resolv.conf, and logs in the CRI format to the path kubelet
//!   gives (`log_directory` of the pod joined with the container's `log_path`), reached from
//!   the log directory with no symlink on the way (a link there is refused, at create, start
//!   and ReopenContainerLog: see `berth_shim::beneath`).
//! - Both live in the namespace `k8s.io`: their records carry [`NAMESPACE_LABEL`], which keeps
//!   them out of the Docker API's container list, and the CRI's own description of the object
//!   (metadata, labels, annotations, the pod's options) as a JSON label (see [`meta`]). That
//!   record is the only state: after a daemon restart pods and containers are reported again
//!   from it, with the shims that kept them running.
//! - Images are the Docker API's image store: an image pulled through either is seen by both.
//!
//! - **Streams** (`Exec`, `Attach`, `PortForward`) are served on a TCP streaming server of
//!   their own, as containerd serves them: the call answers with a one-time URL, and the client
//!   connects there with SPDY/3.1 or a WebSocket (see [`stream`]).
//!
//! Errors map to gRPC codes in one place ([`error`]); removing or stopping an unknown pod or
//! container succeeds, as the CRI asks.
//!
//! [`NAMESPACE_LABEL`]: berth_container::record::NAMESPACE_LABEL

pub mod proto {
    //! The CRI's messages, server traits and clients, generated from `proto/runtime/v1/api.proto`.
    #![allow(clippy::all, clippy::pedantic, missing_docs)]
    tonic::include_proto!("runtime.v1");
}

mod container;
pub mod error;
mod events;
mod exec;
mod image;
pub mod meta;
mod network;
pub mod oom;
mod runtime;
mod sandbox;
mod security;
mod server;
mod stats;
pub mod stream;

use std::path::PathBuf;
use std::sync::Arc;

use berth_container::ContainerService;
use berth_distribution::Distribution;
use berth_image::ImageStore;
use berth_store::db::Db;

pub use server::{bind, serve};
pub use stats::Samples;

/// The services the CRI works through, and the daemon's settings it reports.
pub struct Cri {
    pub containers: Arc<ContainerService>,
    pub images: Arc<ImageStore>,
    pub db: Arc<Db>,
    pub distribution: Arc<Distribution>,
    /// The daemon's data root (ImageFsInfo reports its `snapshots/`).
    pub data_root: PathBuf,
    /// The previous CPU sample of each container and pod, for `usage_nano_cores`.
    pub samples: stats::Samples,
    /// The node's CNI plugins and networks, for pods of their own network.
    pub cni: berth_cni::Cni,
    /// The streaming server's address and waiting tokens (Exec, Attach, PortForward).
    pub streaming: stream::Server,
}
