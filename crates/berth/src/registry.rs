//! `berth registry …`: the OCI distribution server (berth-registry) as a command.
//!
//! - `serve` runs a registry until SIGTERM or SIGINT (what the `registry` image runs);
//! - `gc` collects unreferenced blobs in a registry root, also while it is being served;
//! - `image` makes the local image `registry:latest` from this very executable, through the
//!   daemon's API (an import), so `berth run -p 5000:5000 registry` works with no Hub.

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Where the `registry` image keeps its data, as distribution's image does.
const IMAGE_ROOT: &str = "/var/lib/registry";

#[derive(Parser, Debug)]
#[command(name = "berth registry", version, about = "berth's OCI distribution registry")]
struct RegistryArgs {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant, reason = "made once per command line")]
enum Cmd {
    /// Serve a registry (the OCI Distribution API v2)
    Serve(ServeArgs),
    /// Delete blobs no manifest references (safe while the registry serves)
    Gc(GcArgs),
    /// Make the local image `registry:latest` that serves a registry from this executable
    Image(ImageArgs),
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:5000", env = "REGISTRY_HTTP_ADDR")]
    addr: SocketAddr,
    /// Storage root
    #[arg(long, default_value = IMAGE_ROOT, env = "REGISTRY_STORAGE_ROOT")]
    root: PathBuf,
    /// htpasswd file (bcrypt entries) enabling basic auth
    #[arg(long, env = "REGISTRY_AUTH_HTPASSWD_PATH")]
    htpasswd: Option<PathBuf>,
    /// Refuse every write
    #[arg(long = "read-only")]
    read_only: bool,
    /// With auth on, let anonymous callers pull, list and search
    #[arg(long = "anonymous-pull")]
    anonymous_pull: bool,
    /// Use bearer tokens (Docker Hub's flow) issued by this server's /token endpoint
    #[arg(long, requires = "htpasswd")]
    token: bool,
    /// The token endpoint URL put in challenges (default: this server's /token)
    #[arg(long = "token-realm", requires = "token")]
    token_realm: Option<String>,
    /// The `service` of challenges and tokens
    #[arg(long = "token-service", default_value = "berth-registry", requires = "token")]
    token_service: String,
    /// The `iss` of tokens
    #[arg(long = "token-issuer", default_value = "berth-registry", requires = "token")]
    token_issuer: String,
    /// A file holding the HMAC key that signs tokens (default: random per process)
    #[arg(long = "token-key", requires = "token")]
    token_key: Option<PathBuf>,
    /// Token lifetime in seconds
    #[arg(long = "token-ttl", default_value_t = 300, requires = "token")]
    token_ttl: u64,
    /// Serve HTTPS with this certificate chain (PEM, the server's certificate first)
    #[arg(long = "tls-cert", env = "REGISTRY_HTTP_TLS_CERTIFICATE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM)
    #[arg(long = "tls-key", env = "REGISTRY_HTTP_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Be a pull-through cache of this registry (e.g. https://registry-1.docker.io)
    #[arg(long = "proxy-remote", env = "REGISTRY_PROXY_REMOTEURL")]
    proxy_remote: Option<String>,
    /// User name for --proxy-remote
    #[arg(long = "proxy-username", env = "REGISTRY_PROXY_USERNAME", requires = "proxy_remote", default_value = "")]
    proxy_username: String,
    /// Password for --proxy-remote
    #[arg(long = "proxy-password", env = "REGISTRY_PROXY_PASSWORD", requires = "proxy_remote", default_value = "")]
    proxy_password: String,
}

#[derive(Args, Debug)]
struct GcArgs {
    /// Storage root
    #[arg(long, default_value = IMAGE_ROOT)]
    root: PathBuf,
    /// Report what would be deleted, delete nothing
    #[arg(long = "dry-run")]
    dry_run: bool,
    /// Also delete manifests no tag reaches
    #[arg(long = "delete-untagged")]
    delete_untagged: bool,
    /// Keep anything younger than this many seconds (protects pushes in flight)
    #[arg(long = "grace", default_value_t = 3600)]
    grace: u64,
}

#[derive(Args, Debug)]
struct ImageArgs {
    /// Daemon socket to connect to
    #[arg(short = 'H', long = "host", env = "DOCKER_HOST")]
    host: Option<String>,
    /// Name of the image to make
    #[arg(short = 't', long = "tag", default_value = "registry:latest")]
    tag: String,
}

pub fn main(args: &[String]) -> i32 {
    let mut argv = vec!["berth registry".to_string()];
    argv.extend(args.iter().cloned());
    let a = RegistryArgs::parse_from(argv);
    crate::logging::init();
    let r = match a.cmd {
        Cmd::Serve(s) => serve(s),
        Cmd::Gc(g) => gc(g),
        Cmd::Image(i) => image(i),
    };
    match r {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("berth registry: {e}");
            1
        }
    }
}

fn serve(a: ServeArgs) -> anyhow::Result<()> {
    let mut config = berth_registry::Config::new(a.addr, a.root);
    config.htpasswd = a.htpasswd;
    config.read_only = a.read_only;
    config.anonymous_pull = a.anonymous_pull;
    if let (Some(cert), Some(key)) = (a.tls_cert, a.tls_key) {
        config.tls = Some(berth_registry::TlsFiles { cert, key });
    }
    if let Some(remote) = a.proxy_remote {
        if !(remote.starts_with("http://") || remote.starts_with("https://")) {
            anyhow::bail!("--proxy-remote {remote:?}: want an http:// or https:// URL");
        }
        let remote = remote.trim_end_matches('/').to_string();
        config.proxy =
            Some(berth_registry::proxy::ProxyConfig { remote, username: a.proxy_username, password: a.proxy_password });
    }
    if a.token {
        let mut t = berth_registry::TokenConfig::new(a.token_service);
        t.realm = a.token_realm;
        t.issuer = a.token_issuer;
        t.ttl = Duration::from_secs(a.token_ttl);
        if let Some(p) = a.token_key {
            t.key = Some(std::fs::read(&p).map_err(|e| anyhow::anyhow!("reading {}: {e}", p.display()))?);
        }
        config.token = Some(t);
    }
    berth_distribution::heap::tune();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(async move {
        let addr = config.addr;
        let listener =
            tokio::net::TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("listen on {addr}: {e}"))?;
        let registry = berth_registry::Registry::open(config)?;
        // Subscribed before the line below (see shutdown_signal). Tests and scripts wait for
        // the line (with the real port when asked for port 0): it stays in these words, not
        // in the log's form.
        let shutdown = crate::shutdown_signal();
        eprintln!("berth registry: listening on {}", listener.local_addr()?);
        berth_registry::serve_listener(registry, listener, shutdown).await?;
        Ok(())
    })
}

fn gc(a: GcArgs) -> anyhow::Result<()> {
    let opts = berth_registry::GcOptions {
        dry_run: a.dry_run,
        delete_untagged: a.delete_untagged,
        grace_period: Duration::from_secs(a.grace),
        ..Default::default()
    };
    let r = berth_registry::gc::garbage_collect_with(&a.root, &opts)?;
    let verb = if r.dry_run { "would delete" } else { "deleted" };
    for d in &r.blobs_deleted {
        println!("{verb} blob {d}");
    }
    for (repo, d) in &r.manifests_deleted {
        println!("{verb} manifest {repo}@{d}");
    }
    println!(
        "{} blobs marked, {} blobs {verb} ({} bytes), {} kept within the grace period, {} manifests {verb}, {} uploads purged",
        r.blobs_marked,
        r.blobs_deleted.len(),
        r.bytes_freed,
        r.blobs_in_grace.len(),
        r.manifests_deleted.len(),
        r.uploads_purged.len()
    );
    for e in &r.errors {
        eprintln!("berth registry gc: {e}");
    }
    if r.errors.is_empty() { Ok(()) } else { anyhow::bail!("{} errors", r.errors.len()) }
}

/// Builds the image's root filesystem as a tar in memory-light streaming fashion: the
/// executable is the only large file, read straight from disk.
fn image(a: ImageArgs) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let mut tar = tempfile::tempfile()?;
    {
        use berth_archive::header::{EntryType, Header};
        let mut w = berth_archive::writer::TarWriter::new(&mut tar);
        for d in ["bin/", "etc/", "tmp/", "var/", "var/lib/", "var/lib/registry/"] {
            let mut h = Header::new(d, EntryType::Directory);
            h.mode = if d == "tmp/" { 0o1777 } else { 0o755 };
            w.append(&h, &mut std::io::empty())?;
        }
        for (path, data) in [("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"), ("etc/group", "root:x:0:\n")] {
            let mut h = Header::new(path, EntryType::Regular);
            h.size = data.len() as u64;
            h.mode = 0o644;
            w.append(&h, &mut data.as_bytes())?;
        }
        let mut f = std::fs::File::open(&exe)?;
        let mut h = Header::new("bin/berth", EntryType::Regular);
        h.size = f.metadata()?.len();
        h.mode = 0o755;
        w.append(&h, &mut f)?;
        w.finish()?;
    }
    use std::io::Seek;
    tar.seek(std::io::SeekFrom::Start(0))?;
    let mut host = a.host.filter(|h| !h.is_empty()).unwrap_or_else(|| berth_cli::DEFAULT_HOST.to_string());
    if host.starts_with('/') {
        host = format!("unix://{host}");
    }
    let c = berth_cli::client::Client::new(&host);
    let changes = [
        format!(
            "ENTRYPOINT [\"/bin/berth\", \"registry\", \"serve\", \"--addr\", \"0.0.0.0:5000\", \"--root\", \"{IMAGE_ROOT}\"]"
        ),
        "EXPOSE 5000".to_string(),
        format!("VOLUME {IMAGE_ROOT}"),
    ];
    let mut q = berth_cli::client::query(&[
        ("fromSrc", "-".into()),
        ("repo", a.tag.clone()),
        ("message", "berth registry image".into()),
    ]);
    for ch in &changes {
        q.push_str(&format!("&changes={}", berth_cli::client::enc(ch)));
    }
    let mut input: Box<dyn Read> = Box::new(tar);
    let r = c.request(
        "POST",
        &format!("/images/create{q}"),
        &[],
        berth_cli::client::Body::Stream(&mut input, "application/x-tar"),
    )?;
    let body = r.bytes()?;
    let mut id = String::new();
    for line in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let m: berth_api::progress::JsonMessage = serde_json::from_slice(line)?;
        if let Some(e) = m.error {
            anyhow::bail!("{e}");
        }
        if let Some(s) = m.status {
            id = s;
        }
    }
    println!("{id}");
    Ok(())
}
