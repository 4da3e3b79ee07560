//! Times what a kubelet asks of a CRI runtime, against any runtime's CRI socket, so that
//! scripts/bench-cri.sh can run the same workload against berth and against containerd's
//! CRI plugin side by side (issue 19's targets):
//!
//! - RunPodSandbox + CreateContainer + StartContainer of one busybox container on the
//!   node's network (median of `--rounds`; each pod is removed again, untimed);
//! - ExecSync `true` in a running container (median of `--rounds`);
//! - `--pods` pods, each with one container, started in sequence (total).
//!
//! Usage: `cri_bench --socket PATH --image REF [--rounds N] [--pods N] [--logs DIR]`.
//! Prints one `name value` line per figure, in milliseconds.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use berth_cri::proto::runtime_service_client::RuntimeServiceClient;
use berth_cri::proto::*;
use tonic::transport::{Channel, Endpoint, Uri};

struct Args {
    socket: PathBuf,
    image: String,
    rounds: usize,
    pods: usize,
    logs: PathBuf,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        socket: PathBuf::new(),
        image: String::new(),
        rounds: 20,
        pods: 50,
        logs: std::env::temp_dir().join(format!("cri-bench-{}", std::process::id())),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--socket" => a.socket = value.into(),
            "--image" => a.image = value,
            "--rounds" => a.rounds = value.parse().map_err(|_| format!("--rounds: not a number: {value}"))?,
            "--pods" => a.pods = value.parse().map_err(|_| format!("--pods: not a number: {value}"))?,
            "--logs" => a.logs = value.into(),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if a.socket.as_os_str().is_empty() || a.image.is_empty() {
        return Err("--socket and --image are required".into());
    }
    Ok(a)
}

async fn connect(path: PathBuf) -> Result<RuntimeServiceClient<Channel>, tonic::transport::Error> {
    let channel =
        Endpoint::try_from("http://[::]:50051")?
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let p = path.clone();
                async move {
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tokio::net::UnixStream::connect(p).await?))
                }
            }))
            .await?;
    Ok(RuntimeServiceClient::new(channel))
}

/// A pod on the node's network, as kubelet sends it for `hostNetwork: true`.
fn pod(name: &str, logs: &std::path::Path) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.into(),
            uid: format!("{name}-uid"),
            namespace: "bench".into(),
            attempt: 0,
        }),
        // kubelet sets no hostname for a pod on the node's network: it has the node's.
        log_directory: logs.join(name).display().to_string(),
        labels: HashMap::from([("bench".to_string(), "cri".to_string())]),
        linux: Some(LinuxPodSandboxConfig {
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(NamespaceOption { network: NamespaceMode::Node as i32, ..Default::default() }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn container(image: &str) -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata { name: "c".into(), attempt: 0 }),
        image: Some(ImageSpec { image: image.into(), ..Default::default() }),
        command: vec!["sleep".into(), "100000".into()],
        log_path: "c/0.log".into(),
        ..Default::default()
    }
}

type Rt = RuntimeServiceClient<Channel>;
type Res<T> = Result<T, tonic::Status>;

/// Runs a pod with one container; returns the pod's ID and the container's.
async fn start_pod(rt: &mut Rt, name: &str, a: &Args) -> Res<(String, String)> {
    start_pod_timed(rt, name, a, &mut [Duration::ZERO; 3]).await
}

/// [`start_pod`], adding the time each of its three calls took to `steps`.
async fn start_pod_timed(rt: &mut Rt, name: &str, a: &Args, steps: &mut [Duration; 3]) -> Res<(String, String)> {
    let cfg = pod(name, &a.logs);
    let t = Instant::now();
    let pod_id = rt
        .run_pod_sandbox(RunPodSandboxRequest { config: Some(cfg.clone()), ..Default::default() })
        .await?
        .into_inner()
        .pod_sandbox_id;
    steps[0] += t.elapsed();
    let t = Instant::now();
    let ctr = rt
        .create_container(CreateContainerRequest {
            pod_sandbox_id: pod_id.clone(),
            config: Some(container(&a.image)),
            sandbox_config: Some(cfg),
        })
        .await?
        .into_inner()
        .container_id;
    steps[1] += t.elapsed();
    let t = Instant::now();
    rt.start_container(StartContainerRequest { container_id: ctr.clone() }).await?;
    steps[2] += t.elapsed();
    Ok((pod_id, ctr))
}

async fn remove_pod(rt: &mut Rt, pod: &str) -> Res<()> {
    rt.stop_pod_sandbox(StopPodSandboxRequest { pod_sandbox_id: pod.into() }).await?;
    rt.remove_pod_sandbox(RemovePodSandboxRequest { pod_sandbox_id: pod.into() }).await?;
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn bench(rt: &mut Rt, a: &Args, made: &mut Vec<String>) -> Res<()> {
    let tag = std::process::id();
    // One untimed round first: the image's first use (unpacking, page cache) is not what
    // the figures are about.
    let (warm, _) = start_pod(rt, &format!("warm-{tag}"), a).await?;
    remove_pod(rt, &warm).await?;

    let mut t = Vec::new();
    let mut steps = [Duration::ZERO; 3];
    for i in 0..a.rounds {
        let start = Instant::now();
        let (pod, _) = start_pod_timed(rt, &format!("one-{tag}-{i}"), a, &mut steps).await?;
        t.push(ms(start.elapsed()));
        remove_pod(rt, &pod).await?;
    }
    println!("pod_start_ms {:.1}", median(t.clone()));
    println!("pod_start_best_ms {:.1}", t.iter().copied().fold(f64::INFINITY, f64::min));
    let mean = |d: Duration| ms(d) / a.rounds.max(1) as f64;
    println!(
        "pod_start_steps_mean_ms run_pod_sandbox={:.1} create_container={:.1} start_container={:.1}",
        mean(steps[0]),
        mean(steps[1]),
        mean(steps[2])
    );

    let (pod, ctr) = start_pod(rt, &format!("exec-{tag}"), a).await?;
    made.push(pod.clone());
    let mut t = Vec::new();
    for _ in 0..a.rounds + 1 {
        let start = Instant::now();
        let r = rt
            .exec_sync(ExecSyncRequest { container_id: ctr.clone(), cmd: vec!["true".into()], timeout: 10 })
            .await?
            .into_inner();
        t.push(ms(start.elapsed()));
        if r.exit_code != 0 {
            return Err(tonic::Status::internal(format!("ExecSync true exited {}", r.exit_code)));
        }
    }
    t.remove(0);
    println!("exec_sync_ms {:.1}", median(t));
    remove_pod(rt, &pod).await?;
    made.retain(|p| *p != pod);

    let start = Instant::now();
    for i in 0..a.pods {
        let (pod, _) = start_pod(rt, &format!("many-{tag}-{i}"), a).await?;
        made.push(pod);
    }
    println!("pods_in_sequence_ms {:.1}", ms(start.elapsed()));
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("cri_bench: {e}");
            std::process::exit(2);
        }
    };
    let mut rt = match connect(a.socket.clone()).await {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cri_bench: connecting to {}: {e}", a.socket.display());
            std::process::exit(1);
        }
    };
    let mut made = Vec::new();
    let result = bench(&mut rt, &a, &mut made).await;
    // Whatever happened, the pods made are removed.
    for pod in made {
        if let Err(e) = remove_pod(&mut rt, &pod).await {
            eprintln!("cri_bench: removing pod {pod}: {}", e.message());
        }
    }
    if let Err(e) = result {
        eprintln!("cri_bench: {}", e.message());
        std::process::exit(1);
    }
}
