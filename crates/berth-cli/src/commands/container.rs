//! Container commands other than `run`/`create`.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use anyhow::{Result, anyhow, bail};
use clap::Args;
use serde_json::{Value, json};

use berth_api::models::{ContainerSummary, ExecCreateRequest, ExecInspect};

use super::{Exit, ago, for_each};
use crate::client::{Body, Client, enc, query};
use crate::format::{self, ellipsis};
use crate::{opts, tty};

pub use super::inspect::{InspectArgs, inspect};
pub use super::resources::{StatsArgs, TopArgs, UpdateArgs, stats, top, update};

#[derive(Args, Debug)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short = 'a', long)]
    pub attach: bool,
    /// Attach container's STDIN
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn start(c: &Client, a: &StartArgs) -> Exit {
    if !a.attach && !a.interactive {
        return for_each(&a.containers, |n| {
            c.post(&format!("/containers/{}/start", enc(n)))?;
            println!("{n}");
            Ok(())
        });
    }
    if a.containers.len() > 1 {
        bail!("you cannot start and attach multiple containers at once");
    }
    let name = &a.containers[0];
    let v: Value = c.get_json(&format!("/containers/{}/json", enc(name)))?;
    let id = v["Id"].as_str().unwrap_or(name).to_string();
    let is_tty = v["Config"]["Tty"].as_bool().unwrap_or(false);
    let open_stdin = v["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    let stdin = a.interactive && open_stdin;
    let (conn, buffered) = super::run::attach_stream(c, &id, stdin, true, true, a.detach_keys.as_deref())?;
    let waiter = super::run::wait_in_background(c, &id, "next-exit")?;
    c.post(&format!("/containers/{}/start", enc(&id)))?;
    let _raw = (is_tty && stdin && tty::stdin_is_tty()).then(tty::RawMode::enable);
    let _proxy = (!is_tty).then(|| crate::sigproxy::SigProxy::start(c, &id)).flatten();
    if stdin {
        let input = conn.try_clone()?;
        std::thread::spawn(move || tty::copy_input(input));
    }
    // However the stream ended (detached, the container's end, a cut connection), what the
    // daemon says of the container next decides the exit.
    let _ = tty::copy_output(conn, is_tty, &buffered);
    drop(_raw);
    let st: Value = c.get_json(&format!("/containers/{id}/json")).unwrap_or_default();
    if st["State"]["Running"].as_bool() == Some(true) {
        // Detached, or the process ended and the daemon has not recorded it yet (a loaded
        // machine): the wait answers at once then, with the exit code.
        let ended = waiter.recv_timeout(std::time::Duration::from_secs(1));
        return Ok(ended.ok().and_then(|r| r.ok()).unwrap_or(0) as i32);
    }
    Ok(waiter.recv().ok().and_then(|r| r.ok()).unwrap_or(0) as i32)
}

#[derive(Args, Debug)]
pub struct StopArgs {
    /// Signal to send to the container
    #[arg(short = 's', long)]
    pub signal: Option<String>,
    /// Seconds to wait before killing the container
    #[arg(short = 't', long = "time", visible_alias = "timeout", allow_hyphen_values = true)]
    pub time: Option<i64>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn stop(c: &Client, a: &StopArgs, verb: &str) -> Exit {
    let q = query(&[
        ("t", a.time.map(|t| t.to_string()).unwrap_or_default()),
        ("signal", a.signal.clone().unwrap_or_default()),
    ]);
    for_each(&a.containers, |n| {
        c.post(&format!("/containers/{}/{verb}{q}", enc(n)))?;
        println!("{n}");
        Ok(())
    })
}

#[derive(Args, Debug)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short = 's', long, default_value = "KILL")]
    pub signal: String,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn kill(c: &Client, a: &KillArgs) -> Exit {
    for_each(&a.containers, |n| {
        c.post(&format!("/containers/{}/kill?signal={}", enc(n), enc(&a.signal)))?;
        println!("{n}");
        Ok(())
    })
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short = 'v', long)]
    pub volumes: bool,
    /// Remove the specified link
    #[arg(short = 'l', long)]
    pub link: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn rm(c: &Client, a: &RmArgs) -> Exit {
    let q = query(&[
        ("force", if a.force { "1".into() } else { String::new() }),
        ("v", if a.volumes { "1".into() } else { String::new() }),
        ("link", if a.link { "1".into() } else { String::new() }),
    ]);
    for_each(&a.containers, |n| {
        c.delete(&format!("/containers/{}{q}", enc(n)))?;
        println!("{n}");
        Ok(())
    })
}

#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only display container IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Show the latest created container (includes all states)
    #[arg(short = 'l', long)]
    pub latest: bool,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long = "last", default_value_t = -1, allow_hyphen_values = true)]
    pub last: i64,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Display total file sizes
    #[arg(short = 's', long)]
    pub size: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
}

/// Builds `filters` JSON from `key=value` flags.
pub fn filter_json(list: &[String]) -> Result<String> {
    let mut f = berth_api::filters::Filters::default();
    for kv in list {
        let (k, v) = kv.split_once('=').ok_or_else(|| anyhow!("bad format of filter (expected name=value)"))?;
        f.add(k, v);
    }
    Ok(if f.0.is_empty() { String::new() } else { f.to_json() })
}

fn port_string(ports: &[berth_api::models::Port]) -> String {
    let mut parts: Vec<String> = ports
        .iter()
        .map(|p| match p.public_port {
            Some(pub_) => {
                let ip = if p.ip.contains(':') { format!("[{}]", p.ip) } else { p.ip.clone() };
                format!("{ip}:{pub_}->{}/{}", p.private_port, p.kind)
            }
            None => format!("{}/{}", p.private_port, p.kind),
        })
        .collect();
    parts.dedup();
    parts.join(", ")
}

fn container_ctx(c: &ContainerSummary, no_trunc: bool) -> Value {
    let cmd = if no_trunc { c.command.clone() } else { ellipsis(&c.command, 20) };
    let names: Vec<String> = c.names.iter().map(|n| n.trim_start_matches('/').to_string()).collect();
    let size = match (c.size_rw, c.size_root_fs) {
        (Some(rw), Some(root)) => {
            format!("{} (virtual {})", berth_api::units::human_size(rw), berth_api::units::human_size(root))
        }
        _ => String::new(),
    };
    let labels: Vec<String> = c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let image = if !no_trunc && c.image.starts_with("sha256:") {
        berth_api::ids::short_id(&c.image).to_string()
    } else {
        c.image.clone()
    };
    json!({
        "ID": if no_trunc { c.id.clone() } else { berth_api::ids::short_id(&c.id).to_string() },
        "Image": image,
        "Command": format!("\"{cmd}\""),
        "CreatedAt": created_at(c.created),
        "RunningFor": ago(c.created),
        "Ports": port_string(&c.ports),
        "State": c.state,
        "Status": c.status,
        "Size": size,
        "Names": names.join(","),
        "Labels": labels.join(","),
        "LabelsMap": c.labels,
        "Mounts": c.mounts.iter().map(|m| if m.name.is_empty() { m.source.clone() } else { m.name.clone() }).collect::<Vec<_>>().join(","),
        "Networks": c.network_settings.networks.keys().cloned().collect::<Vec<_>>().join(","),
        "LocalVolumes": c.mounts.iter().filter(|m| m.driver == "local").count().to_string(),
    })
}

/// Go's default time format in UTC: `2026-11-28 18:45:53 +0000 UTC`.
pub fn created_at(unix: i64) -> String {
    let s = berth_api::time::rfc3339_nanos(unix as i128 * 1_000_000_000);
    format!("{} {} +0000 UTC", &s[..10], &s[11..19])
}

pub fn ps(c: &Client, a: &PsArgs) -> Exit {
    let mut limit = a.last;
    if a.latest {
        limit = 1;
    }
    let q = query(&[
        ("all", if a.all { "1".into() } else { String::new() }),
        ("limit", if limit > 0 { limit.to_string() } else { String::new() }),
        ("size", if a.size { "1".into() } else { String::new() }),
        ("filters", filter_json(&a.filter)?),
    ]);
    let list: Vec<ContainerSummary> = c.get_json(&format!("/containers/json{q}"))?;
    if a.quiet {
        for x in &list {
            println!("{}", if a.no_trunc { x.id.clone() } else { berth_api::ids::short_id(&x.id).to_string() });
        }
        return Ok(0);
    }
    let rows: Vec<Value> = list.iter().map(|x| container_ctx(x, a.no_trunc)).collect();
    let mut default =
        "{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}".to_string();
    if a.size {
        default.push_str("\t{{.Size}}");
    }
    let headers: BTreeMap<&str, &str> = [
        ("ID", "CONTAINER ID"),
        ("Image", "IMAGE"),
        ("Command", "COMMAND"),
        ("CreatedAt", "CREATED AT"),
        ("RunningFor", "CREATED"),
        ("Ports", "PORTS"),
        ("State", "STATE"),
        ("Status", "STATUS"),
        ("Size", "SIZE"),
        ("Names", "NAMES"),
        ("Labels", "LABELS"),
        ("Mounts", "MOUNTS"),
        ("Networks", "NETWORKS"),
        ("LocalVolumes", "LOCAL VOLUMES"),
    ]
    .into_iter()
    .collect();
    print!(
        "{}",
        format::render(&format::parse(a.format.as_deref().unwrap_or("")), &rows, &default, &headers)
            .map_err(|e| anyhow!(e))?
    );
    Ok(0)
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Show extra details provided to logs
    #[arg(long)]
    pub details: bool,
    /// Show logs since timestamp or relative (e.g. 42m for 42 minutes)
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a timestamp or relative
    #[arg(long)]
    pub until: Option<String>,
    pub container: String,
}

pub fn logs(c: &Client, a: &LogsArgs) -> Exit {
    let v: Value = c.get_json(&format!("/containers/{}/json", enc(&a.container)))?;
    let id = v["Id"].as_str().unwrap_or(&a.container).to_string();
    let is_tty = v["Config"]["Tty"].as_bool().unwrap_or(false);
    let q = query(&[
        ("stdout", "1".into()),
        ("stderr", "1".into()),
        ("follow", if a.follow { "1".into() } else { String::new() }),
        ("tail", a.tail.clone()),
        ("timestamps", if a.timestamps { "1".into() } else { String::new() }),
        ("since", a.since.clone().unwrap_or_default()),
        ("until", a.until.clone().unwrap_or_default()),
    ]);
    let r = c.get(&format!("/containers/{id}/logs{q}"))?;
    match tty::copy_output(r.into_reader(), is_tty, &[]) {
        Ok(()) => Ok(0),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        Err(e) => Err(e.into()),
    }
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file")]
    pub env_file: Vec<String>,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Give extended privileges to the command
    #[arg(long)]
    pub privileged: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Username or UID (format: "<name|uid>[:<group|gid>]")
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    pub container: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

pub fn exec(c: &Client, a: &ExecArgs) -> Exit {
    if a.tty && a.interactive && !tty::stdin_is_tty() {
        eprintln!("the input device is not a TTY");
        return Ok(1);
    }
    let mut env = Vec::new();
    for f in &a.env_file {
        env.extend(opts::read_env_file(f)?);
    }
    env.extend(opts::env_values(&a.env));
    let size = if a.tty { tty::size().map(|(h, w)| [h as u32, w as u32]) } else { None };
    let req = ExecCreateRequest {
        attach_stdin: a.interactive && !a.detach,
        attach_stdout: !a.detach,
        attach_stderr: !a.detach,
        console_size: size,
        detach_keys: a.detach_keys.clone().unwrap_or_default(),
        tty: a.tty,
        env,
        cmd: a.command.clone(),
        privileged: a.privileged,
        user: a.user.clone().unwrap_or_default(),
        working_dir: a.workdir.clone().unwrap_or_default(),
    };
    let created: berth_api::models::IdResponse =
        c.post_json(&format!("/containers/{}/exec", enc(&a.container)), &req)?.json()?;
    let start = json!({"Detach": a.detach, "Tty": a.tty, "ConsoleSize": size});
    if a.detach {
        c.post_json(&format!("/exec/{}/start", created.id), &start)?;
        return Ok(0);
    }
    let (conn, buffered) =
        c.hijack(&format!("/exec/{}/start", created.id), Some(serde_json::to_vec(&start).unwrap_or_default()))?;
    let _raw = (a.tty && a.interactive && tty::stdin_is_tty()).then(tty::RawMode::enable);
    if a.interactive {
        let input = conn.try_clone()?;
        std::thread::spawn(move || tty::copy_input(input));
    }
    // However the stream ended, the exec's inspect below gives the exit code.
    let _ = tty::copy_output(conn, a.tty, &buffered);
    drop(_raw);
    let info: ExecInspect = c.get_json(&format!("/exec/{}/json", created.id))?;
    Ok(info.exit_code.unwrap_or(0) as i32)
}

#[derive(Args, Debug)]
pub struct AttachArgs {
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    /// Do not attach STDIN
    #[arg(long = "no-stdin")]
    pub no_stdin: bool,
    /// Proxy all received signals to the process
    #[arg(long = "sig-proxy", default_value_t = true, action = clap::ArgAction::Set)]
    pub sig_proxy: bool,
    pub container: String,
}

pub fn attach(c: &Client, a: &AttachArgs) -> Exit {
    let v: Value = c.get_json(&format!("/containers/{}/json", enc(&a.container)))?;
    let id = v["Id"].as_str().unwrap_or(&a.container).to_string();
    if v["State"]["Running"].as_bool() != Some(true) {
        bail!("You cannot attach to a stopped container, start it first");
    }
    if v["State"]["Paused"].as_bool() == Some(true) {
        bail!("You cannot attach to a paused container, unpause it first");
    }
    let is_tty = v["Config"]["Tty"].as_bool().unwrap_or(false);
    let stdin = !a.no_stdin && v["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    let waiter = super::run::wait_in_background(c, &id, "not-running")?;
    let (conn, buffered) = super::run::attach_stream(c, &id, stdin, true, true, a.detach_keys.as_deref())?;
    if is_tty && let Some((h, w)) = tty::size() {
        // Best effort, as Docker's CLI: a terminal of the wrong size is no reason to fail.
        let _ = c.post(&format!("/containers/{id}/resize?h={}&w={w}", h + 1));
        let _ = c.post(&format!("/containers/{id}/resize?h={h}&w={w}"));
    }
    let _raw = (is_tty && stdin && tty::stdin_is_tty()).then(tty::RawMode::enable);
    let _proxy = (a.sig_proxy && !is_tty).then(|| crate::sigproxy::SigProxy::start(c, &id)).flatten();
    if stdin {
        let input = conn.try_clone()?;
        std::thread::spawn(move || tty::copy_input(input));
    }
    // However the stream ended (detached, the container's end, a cut connection), what the
    // daemon says of the container next decides the exit.
    let _ = tty::copy_output(conn, is_tty, &buffered);
    drop(_raw);
    let st: Value = c.get_json(&format!("/containers/{id}/json")).unwrap_or_default();
    if st["State"]["Running"].as_bool() == Some(true) {
        // Detached, or the process ended and the daemon has not recorded it yet (a loaded
        // machine): the wait answers at once then, with the exit code.
        let ended = waiter.recv_timeout(std::time::Duration::from_secs(1));
        return Ok(ended.ok().and_then(|r| r.ok()).unwrap_or(0) as i32);
    }
    Ok(waiter.recv().ok().and_then(|r| r.ok()).unwrap_or(0) as i32)
}

#[derive(Args, Debug)]
pub struct NamesArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn wait(c: &Client, a: &NamesArgs) -> Exit {
    for_each(&a.containers, |n| {
        let r: berth_api::models::WaitResponse = c.post(&format!("/containers/{}/wait", enc(n)))?.json()?;
        println!("{}", r.status_code);
        Ok(())
    })
}

pub fn simple(c: &Client, a: &NamesArgs, verb: &str) -> Exit {
    for_each(&a.containers, |n| {
        c.post(&format!("/containers/{}/{verb}", enc(n)))?;
        println!("{n}");
        Ok(())
    })
}

#[derive(Args, Debug)]
pub struct RenameArgs {
    pub container: String,
    pub new_name: String,
}

pub fn rename(c: &Client, a: &RenameArgs) -> Exit {
    c.post(&format!("/containers/{}/rename?name={}", enc(&a.container), enc(&a.new_name)))?;
    Ok(0)
}

#[derive(Args, Debug)]
pub struct PortArgs {
    pub container: String,
    pub private_port: Option<String>,
}

pub fn port(c: &Client, a: &PortArgs) -> Exit {
    let v: Value = c.get_json(&format!("/containers/{}/json", enc(&a.container)))?;
    let ports = v["NetworkSettings"]["Ports"].as_object().cloned().unwrap_or_default();
    let want = a.private_port.as_ref().map(|p| if p.contains('/') { p.clone() } else { format!("{p}/tcp") });
    let mut found = false;
    for (k, bindings) in &ports {
        if want.as_ref().is_some_and(|w| w != k) {
            continue;
        }
        for b in bindings.as_array().into_iter().flatten() {
            let ip = b["HostIp"].as_str().unwrap_or("");
            let ip = if ip.is_empty() { "0.0.0.0" } else { ip };
            let ip = if ip.contains(':') { format!("[{ip}]") } else { ip.to_string() };
            let hp = b["HostPort"].as_str().unwrap_or("");
            found = true;
            if want.is_some() {
                println!("{ip}:{hp}");
            } else {
                println!("{k} -> {ip}:{hp}");
            }
        }
    }
    if let (Some(w), false) = (want, found) {
        bail!("Error: No public port '{w}' published for {}", a.container);
    }
    Ok(0)
}

#[derive(Args, Debug)]
pub struct OneArg {
    pub container: String,
}

pub fn diff(c: &Client, a: &OneArg) -> Exit {
    let changes: Vec<berth_api::models::FilesystemChange> =
        c.get_json(&format!("/containers/{}/changes", enc(&a.container)))?;
    for ch in changes {
        let k = match ch.kind {
            0 => "C",
            1 => "A",
            _ => "D",
        };
        println!("{k} {}", ch.path);
    }
    Ok(0)
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    pub container: String,
}

/// Writes a response body to `-o FILE` (atomically) or stdout (refusing a terminal).
pub fn write_out(mut r: Box<dyn Read + Send>, output: Option<&str>, what: &str) -> Exit {
    match output {
        Some(path) if path != "-" => {
            let tmp = format!("{path}.berth-tmp");
            let mut f = std::fs::File::create(&tmp).map_err(|e| anyhow!("failed to create file {path}: {e}"))?;
            let res = std::io::copy(&mut r, &mut f);
            if let Err(e) = res {
                // The copy's error is what is reported; a partial `.berth-tmp` that stays is
                // overwritten by the next try.
                let _ = std::fs::remove_file(&tmp);
                return Err(e.into());
            }
            f.sync_all()?;
            std::fs::rename(&tmp, path)?;
        }
        _ => {
            if tty::stdout_is_tty() {
                bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
            }
            // `what` (what the content is) appears in no message yet.
            let _ = what;
            std::io::copy(&mut r, &mut std::io::stdout().lock())?;
        }
    }
    Ok(0)
}

pub fn export(c: &Client, a: &ExportArgs) -> Exit {
    let r = c.get(&format!("/containers/{}/export", enc(&a.container)))?;
    write_out(r.into_reader(), a.output.as_deref(), "export")
}

#[derive(Args, Debug)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short = 'a', long)]
    pub author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long)]
    pub change: Vec<String>,
    /// Commit message
    #[arg(short = 'm', long)]
    pub message: Option<String>,
    /// Pause container during commit
    #[arg(short = 'p', long, default_value_t = true, action = clap::ArgAction::Set)]
    pub pause: bool,
    pub container: String,
    pub repository: Option<String>,
}

pub fn commit(c: &Client, a: &CommitArgs) -> Exit {
    let (repo, tag) = match &a.repository {
        Some(r) => {
            let last = r.rsplit('/').next().unwrap_or(r);
            match last.rsplit_once(':') {
                Some((_, t)) => (r[..r.len() - t.len() - 1].to_string(), t.to_string()),
                None => (r.clone(), String::new()),
            }
        }
        None => (String::new(), String::new()),
    };
    let mut q = query(&[
        ("container", a.container.clone()),
        ("repo", repo),
        ("tag", tag),
        ("author", a.author.clone().unwrap_or_default()),
        ("comment", a.message.clone().unwrap_or_default()),
        ("pause", if a.pause { "1".into() } else { "0".into() }),
    ]);
    for ch in &a.change {
        q.push_str(&format!("&changes={}", enc(ch)));
    }
    let r: berth_api::models::IdResponse = c.post_json(&format!("/commit{q}"), &json!({}))?.json()?;
    println!("{}", r.id);
    Ok(0)
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long)]
    pub filter: Vec<String>,
}

pub fn confirm(prompt: &str) -> bool {
    eprint!("{prompt} [y/N] ");
    // Unshown prompt or unreadable stdin: the answer is no.
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    matches!(line.trim(), "y" | "Y" | "yes")
}

pub fn prune(c: &Client, a: &PruneArgs) -> Exit {
    if !a.force && !confirm("WARNING! This will remove all stopped containers.\nAre you sure you want to continue?") {
        return Ok(0);
    }
    let q = query(&[("filters", filter_json(&a.filter)?)]);
    let v: Value = c.post(&format!("/containers/prune{q}"))?.json()?;
    if let Some(ids) = v["ContainersDeleted"].as_array()
        && !ids.is_empty()
    {
        println!("Deleted Containers:");
        for id in ids {
            println!("{}", id.as_str().unwrap_or(""));
        }
        println!();
    }
    println!("Total reclaimed space: {}", berth_api::units::human_size(v["SpaceReclaimed"].as_i64().unwrap_or(0)));
    Ok(0)
}

#[derive(Args, Debug)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short = 'a', long)]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long = "follow-link")]
    pub follow_link: bool,
    /// Suppress progress output during copy
    #[arg(short = 'q', long)]
    pub quiet: bool,
    pub src: String,
    pub dest: String,
}

fn split_container_path(s: &str) -> Option<(&str, &str)> {
    if s.starts_with('/') || s.starts_with('.') {
        return None;
    }
    s.split_once(':')
}

pub fn cp(c: &Client, a: &CpArgs) -> Exit {
    match (split_container_path(&a.src), split_container_path(&a.dest)) {
        (Some((ctr, path)), None) => {
            let r = c.get(&format!("/containers/{}/archive?path={}", enc(ctr), enc(path)))?;
            if a.dest == "-" {
                std::io::copy(&mut r.into_reader(), &mut std::io::stdout().lock())?;
                return Ok(0);
            }
            crate::copy::extract_to_local(r.into_reader(), path, &a.dest)?;
            Ok(0)
        }
        (None, Some((ctr, path))) => {
            let (mut tar, dest_dir) = if a.src == "-" {
                (Box::new(std::io::stdin()) as Box<dyn Read>, path.to_string())
            } else {
                crate::copy::tar_local(c, ctr, &a.src, path, a.follow_link)?
            };
            let q = query(&[("path", dest_dir), ("copyUIDGID", if a.archive { "1".into() } else { String::new() })]);
            c.request(
                "PUT",
                &format!("/containers/{}/archive{q}", enc(ctr)),
                &[],
                Body::Stream(&mut tar, "application/x-tar"),
            )?;
            Ok(0)
        }
        (Some(_), Some(_)) => bail!("copying between containers is not supported"),
        (None, None) => bail!("must specify at least one container source"),
    }
}
