//! The Kubernetes CRI (runtime.v1) as a kubelet uses it: a gRPC client written in Rust
//! (tonic over the daemon's CRI unix socket, in the test daemon's own directory) against a
//! real daemon. One file per feature.

mod backpressure;
mod bounds;
mod cni;
mod containers;
mod idle;
mod images;
mod log_links;
mod resources;
mod restart;
mod runtime;
mod sandboxes;
mod security;
mod stats;
mod stream_clients;
mod stream_limits;
mod streaming;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_cri::proto::image_service_client::ImageServiceClient;
use berth_cri::proto::runtime_service_client::RuntimeServiceClient;
use berth_cri::proto::*;
use berth_integration::{Daemon, unique};
use tonic::transport::{Channel, Endpoint, Uri};

/// Both CRI clients on one connection.
pub struct Cri {
    pub rt: RuntimeServiceClient<Channel>,
    pub img: ImageServiceClient<Channel>,
}

/// The CRI socket of a test daemon: `cri.sock` in its exec root (the default's place there).
pub fn socket(d: &Daemon) -> PathBuf {
    d.exec_root().join("cri.sock")
}

pub async fn connect_to(path: &Path) -> Cri {
    let path = path.to_path_buf();
    let channel =
        Endpoint::try_from("http://[::]:50051")
            .unwrap()
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let p = path.clone();
                async move {
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tokio::net::UnixStream::connect(p).await?))
                }
            }))
            .await
            .expect("connecting to the CRI socket");
    Cri { rt: RuntimeServiceClient::new(channel.clone()), img: ImageServiceClient::new(channel) }
}

pub async fn connect(d: &Daemon) -> Cri {
    connect_to(&socket(d)).await
}

/// A pod config with unique metadata, logging under `logs`.
pub fn pod(name: &str, logs: &Path) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.into(),
            uid: unique("uid"),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: name.into(),
        log_directory: logs.join(name).display().to_string(),
        labels: HashMap::from([("app".to_string(), name.to_string())]),
        annotations: HashMap::from([("note".to_string(), "made by a test".to_string())]),
        ..Default::default()
    }
}

/// A pod on the node's network.
pub fn host_network(mut p: PodSandboxConfig) -> PodSandboxConfig {
    p.linux = Some(LinuxPodSandboxConfig {
        security_context: Some(LinuxSandboxSecurityContext {
            namespace_options: Some(NamespaceOption { network: NamespaceMode::Node as i32, ..Default::default() }),
            ..Default::default()
        }),
        ..Default::default()
    });
    p
}

/// A busybox container running `sh -c script`, logging to `<name>/0.log`.
pub fn container(name: &str, script: &str) -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata { name: name.into(), attempt: 0 }),
        image: Some(ImageSpec { image: "busybox".into(), ..Default::default() }),
        command: vec!["sh".into(), "-c".into()],
        args: vec![script.into()],
        log_path: format!("{name}/0.log"),
        labels: HashMap::from([("container".to_string(), name.to_string())]),
        annotations: HashMap::from([("why".to_string(), "test".to_string())]),
        // A PID namespace of its own, as kubelet asks unless the pod shares one.
        linux: Some(LinuxContainerConfig {
            security_context: Some(LinuxContainerSecurityContext {
                namespace_options: Some(NamespaceOption { pid: NamespaceMode::Container as i32, ..Default::default() }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

impl Cri {
    pub async fn run_pod(&mut self, cfg: PodSandboxConfig) -> String {
        self.rt
            .run_pod_sandbox(RunPodSandboxRequest { config: Some(cfg), ..Default::default() })
            .await
            .expect("RunPodSandbox")
            .into_inner()
            .pod_sandbox_id
    }

    pub async fn create(
        &mut self,
        pod: &str,
        cfg: PodSandboxConfig,
        c: ContainerConfig,
    ) -> Result<String, tonic::Status> {
        self.rt
            .create_container(CreateContainerRequest {
                pod_sandbox_id: pod.into(),
                config: Some(c),
                sandbox_config: Some(cfg),
            })
            .await
            .map(|r| r.into_inner().container_id)
    }

    /// Creates and starts a container.
    pub async fn run(&mut self, pod: &str, cfg: &PodSandboxConfig, c: ContainerConfig) -> String {
        let id = self.create(pod, cfg.clone(), c).await.expect("CreateContainer");
        self.rt.start_container(StartContainerRequest { container_id: id.clone() }).await.expect("StartContainer");
        id
    }

    pub async fn status(&mut self, id: &str) -> ContainerStatus {
        self.rt
            .container_status(ContainerStatusRequest { container_id: id.into(), verbose: false })
            .await
            .expect("ContainerStatus")
            .into_inner()
            .status
            .unwrap()
    }

    pub async fn pod_status(&mut self, id: &str) -> PodSandboxStatus {
        self.rt
            .pod_sandbox_status(PodSandboxStatusRequest { pod_sandbox_id: id.into(), verbose: false })
            .await
            .expect("PodSandboxStatus")
            .into_inner()
            .status
            .unwrap()
    }

    /// The host PID of a pod's holder process, from its verbose status.
    pub async fn holder_pid(&mut self, pod: &str) -> u32 {
        let info = self
            .rt
            .pod_sandbox_status(PodSandboxStatusRequest { pod_sandbox_id: pod.into(), verbose: true })
            .await
            .expect("PodSandboxStatus")
            .into_inner()
            .info;
        let holder: serde_json::Value = serde_json::from_str(&info["info"]).unwrap();
        holder["pid"].as_u64().unwrap() as u32
    }

    /// Waits until the container has exited (the CRI has no wait call: its status is
    /// polled, for a minute at most).
    pub async fn wait_exited(&mut self, id: &str) -> ContainerStatus {
        for _ in 0..3000 {
            let s = self.status(id).await;
            if s.state == ContainerState::ContainerExited as i32 {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("container {id} did not exit");
    }

    pub async fn exec(&mut self, id: &str, cmd: &[&str], timeout: i64) -> Result<ExecSyncResponse, tonic::Status> {
        self.rt
            .exec_sync(ExecSyncRequest {
                container_id: id.into(),
                cmd: cmd.iter().map(|s| s.to_string()).collect(),
                timeout,
            })
            .await
            .map(|r| r.into_inner())
    }

    /// Stops and removes a pod with everything in it.
    pub async fn remove_pod(&mut self, id: &str) {
        self.rt.stop_pod_sandbox(StopPodSandboxRequest { pod_sandbox_id: id.into() }).await.expect("StopPodSandbox");
        self.rt
            .remove_pod_sandbox(RemovePodSandboxRequest { pod_sandbox_id: id.into() })
            .await
            .expect("RemovePodSandbox");
    }
}

/// The CNI config directory of tests that are not about pod networking: one network of the
/// `loopback` plugin alone, so a pod gets its own namespace and nothing outside it changes
/// (its status has no IP). Shared by every test: written once, atomically.
pub fn loopback_network() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cri-loopback-net.d");
    let file = dir.join("10-loopback.conflist");
    let body = r#"{"cniVersion":"1.0.0","name":"berth-test-loopback","plugins":[{"type":"loopback"}]}"#;
    if std::fs::read_to_string(&file).ok().as_deref() != Some(body) {
        std::fs::create_dir_all(&dir).unwrap();
        let tmp = dir.join(unique(".tmp"));
        std::fs::write(&tmp, body).unwrap();
        std::fs::rename(&tmp, &file).unwrap();
    }
    dir
}

/// A daemon with busybox, its CRI client, and a directory for pod logs inside the daemon's.
pub async fn setup() -> (Daemon, Cri, PathBuf) {
    setup_with(&[]).await
}

/// As [`setup`], the daemon started with `args` too.
pub async fn setup_with(args: &[&str]) -> (Daemon, Cri, PathBuf) {
    let net = loopback_network().display().to_string();
    let d = Daemon::start_with(&[&["--cni-conf-dir", net.as_str()], args].concat());
    d.import_busybox("busybox:latest");
    let c = connect(&d).await;
    let logs = d.dir.path().join("pod-logs");
    (d, c, logs)
}
