//! The harness: a real registry on 127.0.0.1 with an ephemeral port and a temp root, and a
//! tiny HTTP/1.1 client (one connection per request). Traffic never leaves loopback.

use berth_registry::names::{Algorithm, Digest};
use berth_registry::{Config, Registry};
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use tokio::net::{TcpListener, TcpStream};

pub struct Server {
    pub addr: SocketAddr,
    pub root: PathBuf,
    _dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    pub async fn start() -> Server {
        Server::start_with(|_| {}).await
    }

    /// Starts a server after `setup` adjusts the config (root and addr are filled in).
    pub async fn start_with(setup: impl FnOnce(&mut Config)) -> Server {
        Server::start_in(tempfile::tempdir().unwrap(), setup).await
    }

    /// Stops this server and starts another on the same root with a new configuration.
    pub async fn restart_with(mut self, setup: impl FnOnce(&mut Config)) -> Server {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap();
        let dir = std::mem::replace(&mut self._dir, tempfile::tempdir().unwrap());
        Server::start_in(dir, setup).await
    }

    async fn start_in(dir: tempfile::TempDir, setup: impl FnOnce(&mut Config)) -> Server {
        let root = dir.path().join("registry");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut config = Config::new(addr, &root);
        setup(&mut config);
        let registry = Registry::open(config).unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            berth_registry::serve_listener(registry, listener, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Server { addr, root, _dir: dir, stop: Some(tx), task: Some(task) }
    }

    pub fn client(&self) -> Client {
        Client { addr: self.addr, auth: None }
    }

    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// An htpasswd file with the given users, hashed at bcrypt's lowest cost to keep tests fast.
pub fn htpasswd(dir: &std::path::Path, users: &[(&str, &str)]) -> PathBuf {
    let text: String = users
        .iter()
        .map(|(u, p)| format!("{u}:{}\n", bcrypt::hash(p, 4).unwrap().replacen("$2b$", "$2y$", 1)))
        .collect();
    let path = dir.join("htpasswd");
    std::fs::write(&path, text).unwrap();
    path
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    /// The first error code of a spec error envelope.
    pub fn code(&self) -> String {
        self.json()["errors"][0]["code"].as_str().unwrap_or("").to_string()
    }
}

#[derive(Clone)]
pub struct Client {
    pub addr: SocketAddr,
    /// A full `Authorization` header value sent with every request.
    pub auth: Option<String>,
}

impl Client {
    pub fn basic(&self, user: &str, pass: &str) -> Client {
        use base64::Engine as _;
        let v = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        Client { addr: self.addr, auth: Some(format!("Basic {v}")) }
    }

    pub fn bearer(&self, token: &str) -> Client {
        Client { addr: self.addr, auth: Some(format!("Bearer {token}")) }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, &[], Bytes::new()).await
    }

    pub async fn send(&self, method: Method, path: &str, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Resp {
        self.send_body(method, path, headers, Full::new(body.into())).await
    }

    /// Sends any body (e.g. a stream, for chunked transfer).
    pub async fn send_body<B>(&self, method: Method, path: &str, headers: &[(&str, &str)], body: B) -> Resp
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        assert!(self.addr.ip().is_loopback(), "tests only talk to loopback");
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.unwrap();
        tokio::spawn(conn);
        let mut req = Request::builder().method(method).uri(path).header("host", self.addr.to_string());
        if let Some(a) = &self.auth {
            req = req.header("authorization", a);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = sender.send_request(req.body(body).unwrap()).await.unwrap();
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        Resp { status: parts.status, headers: parts.headers, body }
    }

    /// Monolithic upload; returns the digest.
    pub async fn push_blob(&self, repo: &str, bytes: &[u8]) -> String {
        let d = sha256(bytes);
        let r = self
            .send(Method::POST, &format!("/v2/{repo}/blobs/uploads/?digest={d}"), &[], Bytes::copy_from_slice(bytes))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "push blob: {:?}", r.body);
        d
    }

    pub async fn put_manifest(&self, repo: &str, reference: &str, media_type: &str, manifest: &Value) -> Resp {
        let bytes = serde_json::to_vec(manifest).unwrap();
        self.send(Method::PUT, &format!("/v2/{repo}/manifests/{reference}"), &[("content-type", media_type)], bytes)
            .await
    }

    /// Pushes a one-layer image and tags it; returns (manifest digest, config digest, layer digest).
    pub async fn push_image(&self, repo: &str, tag: &str, layer: &[u8]) -> (String, String, String) {
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
            sha256(layer)
        );
        let c = self.push_blob(repo, config.as_bytes()).await;
        let l = self.push_blob(repo, layer).await;
        let m = image_manifest(&c, config.len(), &l, layer.len());
        let r = self.put_manifest(repo, tag, OCI_MANIFEST, &m).await;
        assert_eq!(r.status, StatusCode::CREATED, "push manifest: {:?}", r.body);
        (r.header("docker-content-digest").unwrap().to_string(), c, l)
    }
}

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

pub fn sha256(bytes: &[u8]) -> String {
    Digest::of(Algorithm::Sha256, bytes).to_string()
}

pub fn image_manifest(config: &str, config_size: usize, layer: &str, layer_size: usize) -> Value {
    json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": config_size },
        "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer, "size": layer_size }]
    })
}

/// Files under `<root>/blobs` (complete blobs), to check nothing partial got there.
pub fn blob_files(root: &std::path::Path) -> Vec<PathBuf> {
    fn walk(p: &std::path::Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
            if e.file_type().unwrap().is_dir() {
                walk(&e.path(), out);
            } else {
                out.push(e.path());
            }
        }
    }
    let mut out = Vec::new();
    walk(&root.join("blobs"), &mut out);
    out
}
