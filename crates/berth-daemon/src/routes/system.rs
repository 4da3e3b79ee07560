//! `/_ping`, `/version`, `/info`, `/events`, `/system/df`.

use std::collections::BTreeMap;

use ::http::Method;
use bytes::Bytes;
use serde_json::json;
use tokio::sync::mpsc;

use berth_api::models::{ComponentVersion, Info, PlatformName, PluginsInfo, RuntimeInfo, SwarmInfo, Version};

use super::{D, filters};
use crate::body::Body;
use crate::error::{ApiError, ApiResult};
use crate::http::{self, Req, Resp};

pub async fn ping(_d: D, req: Req) -> ApiResult<Resp> {
    let body = if req.method == Method::HEAD { Body::Empty } else { Body::full("OK") };
    let mut r = http::with_status(200, body);
    let h = r.headers_mut();
    h.insert("Content-Type", ::http::HeaderValue::from_static("text/plain; charset=utf-8"));
    h.insert("Cache-Control", ::http::HeaderValue::from_static("no-cache, no-store, must-revalidate"));
    // BuildKit is served (`/grpc`, `/session`): the docker CLI then builds through buildx
    // when it has the plugin, and with the classic `POST /build` when it has not.
    h.insert("Builder-Version", ::http::HeaderValue::from_static("2"));
    h.insert("Swarm", ::http::HeaderValue::from_static("inactive"));
    Ok(r)
}

fn kernel() -> String {
    rustix::system::uname().release().to_string_lossy().into_owned()
}

pub async fn version(_d: D, _req: Req) -> ApiResult<Resp> {
    let mut details = BTreeMap::new();
    details.insert("ApiVersion".to_string(), berth_api::API_VERSION.to_string());
    details.insert("MinAPIVersion".to_string(), berth_api::MIN_API_VERSION.to_string());
    details.insert("Os".to_string(), "linux".to_string());
    details.insert("Arch".to_string(), berth_image::config::host_architecture().to_string());
    details.insert("KernelVersion".to_string(), kernel());
    let v = Version {
        platform: PlatformName { name: "berth".into() },
        components: vec![
            ComponentVersion {
                name: "Engine".into(),
                version: berth_api::ENGINE_VERSION.into(),
                details: Some(details),
            },
            // What runs each container (dockerd lists containerd, runc and docker-init).
            ComponentVersion {
                name: "berth-shim".into(),
                version: berth_api::ENGINE_VERSION.into(),
                details: Some(BTreeMap::from([(
                    "GitCommit".to_string(),
                    option_env!("BERTH_GIT_COMMIT").unwrap_or("unknown").to_string(),
                )])),
            },
        ],
        version: berth_api::ENGINE_VERSION.into(),
        api_version: berth_api::API_VERSION.into(),
        min_api_version: berth_api::MIN_API_VERSION.into(),
        git_commit: option_env!("BERTH_GIT_COMMIT").unwrap_or("unknown").into(),
        go_version: "rust".into(),
        os: "linux".into(),
        arch: berth_image::config::host_architecture().into(),
        kernel_version: kernel(),
        experimental: false,
        build_time: String::new(),
    };
    Ok(http::json(200, &v))
}

/// A proxy variable of the daemon's environment, upper or lower case, as dockerd reads it.
/// The daemon's proxy setting, credentials masked as dockerd masks them: `info` is for any
/// API client to read, the proxy's password is not.
fn proxy_env(name: &str) -> String {
    mask_credentials(&std::env::var(name).or_else(|_| std::env::var(name.to_ascii_lowercase())).unwrap_or_default())
}

/// `http://user:pass@proxy:3128` → `http://xxxxx:xxxxx@proxy:3128` (with or without a scheme).
fn mask_credentials(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").map_or(("", url), |(s, r)| (s, r));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let Some(at) = authority.rfind('@') else { return url.to_string() };
    let sep = if scheme.is_empty() { "" } else { "://" };
    format!("{scheme}{sep}xxxxx:xxxxx@{}", &rest[at + 1..])
}

fn sysctl_on(path: &str) -> bool {
    std::fs::read_to_string(format!("/proc/sys/{path}")).is_ok_and(|s| s.trim() == "1")
}

fn os_release() -> (String, String) {
    let s = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let get = |k: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_default()
    };
    (get("PRETTY_NAME"), get("VERSION_ID"))
}

fn mem_total() -> i64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("MemTotal:").and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
            })
        })
        .unwrap_or(0)
        * 1024
}

pub async fn info(d: D, _req: Req) -> ApiResult<Resp> {
    let recs: Vec<_> = d.containers.all().into_iter().map(|e| e.record()).collect();
    let running = recs.iter().filter(|r| r.state.is_running() && !r.state.is_paused()).count() as i64;
    let paused = recs.iter().filter(|r| r.state.is_paused()).count() as i64;
    let mode = berth_cgroups::detect(std::path::Path::new("/sys/fs/cgroup"));
    let (os, os_version) = os_release();
    let mut runtimes = BTreeMap::new();
    runtimes.insert("berth".to_string(), RuntimeInfo { path: d.config.shim.display().to_string(), runtime_args: None });
    let nfd = std::fs::read_dir("/proc/self/fd").map(|r| r.count() as i64).unwrap_or(0);
    let info = Info {
        id: d.id.clone(),
        containers: recs.len() as i64,
        containers_running: running,
        containers_paused: paused,
        containers_stopped: recs.len() as i64 - running - paused,
        images: d.images.all().len() as i64,
        driver: "overlay2".into(),
        driver_status: vec![["Backing Filesystem".into(), "extfs".into()], ["Supports d_type".into(), "true".into()]],
        memory_limit: true,
        swap_limit: mode == berth_cgroups::Mode::V2
            || std::path::Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists(),
        cpu_cfs_period: true,
        cpu_cfs_quota: true,
        cpu_shares: true,
        cpu_set: true,
        pids_limit: true,
        ipv4_forwarding: std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
            .map(|s| s.trim() == "1")
            .unwrap_or(false),
        debug: d.config.debug,
        n_fd: nfd,
        n_goroutines: 0,
        system_time: berth_api::time::rfc3339_now(),
        logging_driver: d.config.log_driver.clone(),
        cgroup_driver: "cgroupfs".into(),
        cgroup_version: if mode == berth_cgroups::Mode::V2 { "2".into() } else { "1".into() },
        n_events_listener: d.events.listeners() as i64,
        kernel_version: kernel(),
        operating_system: os,
        os_version,
        os_type: "linux".into(),
        architecture: std::env::consts::ARCH.into(),
        index_server_address: "https://index.docker.io/v1/".into(),
        registry_config: Some(d.distribution.options.service_config()),
        ncpu: std::thread::available_parallelism().map(|n| n.get() as i64).unwrap_or(1),
        mem_total: mem_total(),
        docker_root_dir: d.config.data_root.display().to_string(),
        name: rustix::system::uname().nodename().to_string_lossy().into_owned(),
        labels: d.config.labels.clone(),
        experimental_build: false,
        server_version: berth_api::ENGINE_VERSION.into(),
        runtimes,
        default_runtime: "berth".into(),
        live_restore_enabled: d.config.live_restore,
        isolation: String::new(),
        init_binary: d.config.shim.display().to_string(),
        security_options: vec!["name=seccomp,profile=builtin".into(), format!("name=cgroupns")],
        plugins: PluginsInfo {
            volume: vec!["local".into()],
            network: ["bridge", "host", "ipvlan", "macvlan", "null", "overlay"].map(String::from).to_vec(),
            authorization: None,
            log: ["json-file", "local"].map(String::from).to_vec(),
        },
        swarm: SwarmInfo::default(),
        http_proxy: proxy_env("HTTP_PROXY"),
        https_proxy: proxy_env("HTTPS_PROXY"),
        no_proxy: proxy_env("NO_PROXY"),
        oom_kill_disable: mode != berth_cgroups::Mode::V2,
        bridge_nf_iptables: sysctl_on("net/bridge/bridge-nf-call-iptables"),
        bridge_nf_ip6tables: sysctl_on("net/bridge/bridge-nf-call-ip6tables"),
        ..Default::default()
    };
    Ok(http::json(200, &info))
}

pub async fn events(d: D, req: Req) -> ApiResult<Resp> {
    let f = filters(&req)?;
    f.check_names(&[
        "container",
        "daemon",
        "event",
        "image",
        "label",
        "network",
        "node",
        "plugin",
        "scope",
        "secret",
        "service",
        "type",
        "volume",
        "config",
    ])
    .map_err(ApiError::bad_request)?;
    let now = berth_api::time::now_nanos();
    let since = req
        .q("since")
        .filter(|s| !s.is_empty())
        .map(|s| {
            berth_api::time::parse_time_arg(s, now)
                .ok_or_else(|| ApiError::bad_request(format!("invalid value for since: {s}")))
        })
        .transpose()?;
    let until = req
        .q("until")
        .filter(|s| !s.is_empty())
        .map(|s| {
            berth_api::time::parse_time_arg(s, now)
                .ok_or_else(|| ApiError::bad_request(format!("invalid value for until: {s}")))
        })
        .transpose()?;
    if let (Some(s), Some(u)) = (since, until)
        && u < s
    {
        return Err(ApiError::bad_request(format!(
            "`since` time ({}) cannot be after `until` time ({})",
            req.q("since").unwrap_or(""),
            req.q("until").unwrap_or("")
        )));
    }
    let mut rx = d.events.subscribe();
    let backlog = if since.is_some() { d.events.backlog() } else { Vec::new() };
    let matches = move |e: &berth_api::models::EventMessage| -> bool {
        let name = e.actor.attributes.get("name").cloned().unwrap_or_default();
        f.any_or_absent("type", |v| v == e.kind)
            && f.any_or_absent("event", |v| e.action == v || e.action.split(':').next() == Some(v))
            && f.any_or_absent("container", |v| e.kind == "container" && (e.actor.id.starts_with(v) || name == v))
            && f.any_or_absent("image", |v| {
                e.actor.attributes.get("image").map(String::as_str) == Some(v)
                    || (e.kind == "image" && (e.actor.id == v || name == v))
            })
            && f.any_or_absent("volume", |v| e.kind == "volume" && e.actor.id == v)
            && f.any_or_absent("network", |v| e.kind == "network" && (e.actor.id.starts_with(v) || name == v))
            && f.labels_match("label", &e.actor.attributes)
    };
    let (tx, out) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let line = |e: &berth_api::models::EventMessage| {
            let mut v = serde_json::to_vec(e).unwrap_or_default();
            v.push(b'\n');
            Bytes::from(v)
        };
        for e in backlog {
            if since.is_some_and(|s| (e.time_nano as i128) < s) || until.is_some_and(|u| (e.time_nano as i128) > u) {
                continue;
            }
            if matches(&e) && tx.send(line(&e)).await.is_err() {
                return;
            }
        }
        if until.is_some_and(|u| u <= berth_api::time::now_nanos()) {
            return;
        }
        loop {
            let next = async {
                match until {
                    Some(u) => {
                        let wait = (u - berth_api::time::now_nanos()).max(0) as u64;
                        tokio::time::timeout(std::time::Duration::from_nanos(wait), rx.recv()).await.ok()
                    }
                    None => Some(rx.recv().await),
                }
            };
            tokio::select! {
                e = next => match e {
                    Some(Ok(e)) => {
                        if matches(&e) && tx.send(line(&e)).await.is_err() {
                            return;
                        }
                    }
                    Some(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => continue,
                    _ => return,
                },
                _ = tx.closed() => return,
            }
        }
    });
    Ok(http::stream("application/json", out))
}

pub async fn df(d: D, _req: Req) -> ApiResult<Resp> {
    let containers: Vec<serde_json::Value> = d
        .containers
        .list(berth_container::inspect::ListOptions { all: true, size: true, ..Default::default() })
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|c| serde_json::to_value(c).unwrap_or_default())
        .collect();
    let d2 = d.clone();
    // The image and volume stores are synchronous: sizing their trees runs here, off the
    // async workers.
    let v = super::blocking(move || {
        let counts = d2.containers.image_use_counts();
        let users = |id: &str| counts.get(id).copied().unwrap_or(0);
        let images: Vec<serde_json::Value> = d2
            .images
            .all()
            .iter()
            .map(|i| {
                let mut s = serde_json::to_value(d2.images.summary(i, users(&i.id))).unwrap_or_default();
                s["SharedSize"] = json!(0);
                s
            })
            .collect();
        let layers_size: u64 = d2.images.snapshots().layers().map(|l| l.iter().map(|x| x.size).sum()).unwrap_or(0);
        json!({
            "LayersSize": layers_size,
            "Images": images,
            "Containers": containers,
            "Volumes": d2.volumes.usage(),
            "BuildCache": super::build::df_entries(&d2),
        })
    })
    .await?;
    Ok(http::json(200, &v))
}

/// `POST /system/check?repair=1` (berth's own): verifies the image store's digests and
/// references; with `repair`, removes what is damaged.
pub async fn check(d: D, req: Req) -> ApiResult<Resp> {
    let repair = req.q_bool("repair");
    let d2 = d.clone();
    let report = super::blocking(move || {
        let users = |id: &str| d2.containers.users_of_image(id);
        d2.images.check(repair, &users)
    })
    .await??;
    Ok(http::json(200, &report))
}

#[cfg(test)]
mod tests {
    use super::mask_credentials;

    #[test]
    fn proxy_credentials_are_masked() {
        assert_eq!(mask_credentials("http://u:secret@proxy:3128/x"), "http://xxxxx:xxxxx@proxy:3128/x");
        assert_eq!(mask_credentials("http://u@proxy"), "http://xxxxx:xxxxx@proxy");
        assert_eq!(mask_credentials("u:p@w@proxy:1"), "xxxxx:xxxxx@proxy:1");
        assert_eq!(mask_credentials("http://proxy:3128/a@b"), "http://proxy:3128/a@b");
        assert_eq!(mask_credentials(""), "");
    }
}
