//! `top`, `stats` and `update`: a container's processes, usage and limits.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::anyhow;
use clap::Args;
use serde_json::{Value, json};

use berth_api::models::{ContainerSummary, TopResponse};

use super::{Exit, for_each};
use crate::client::{Client, enc, query};
use crate::format;
use crate::{opts, tty};

#[derive(Args, Debug)]
pub struct TopArgs {
    pub container: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

pub fn top(c: &Client, a: &TopArgs) -> Exit {
    let q = query(&[("ps_args", a.ps_args.join(" "))]);
    let t: TopResponse = c.get_json(&format!("/containers/{}/top{q}", enc(&a.container)))?;
    let mut text = t.titles.join("\t");
    text.push('\n');
    for p in &t.processes {
        text.push_str(&p.join("\t"));
        text.push('\n');
    }
    // docker top uses wider columns (minimum 20).
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    let n = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let mut widths = vec![0; n];
    for r in &rows {
        for (i, cell) in r.iter().enumerate() {
            if i + 1 < r.len() {
                widths[i] = widths[i].max(cell.chars().count() + 1).max(20);
            }
        }
    }
    for r in &rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < r.len() {
                line.push_str(&" ".repeat(widths[i] - cell.chars().count()));
            }
        }
        println!("{line}");
    }
    Ok(0)
}

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Disable streaming stats and only pull the first result
    #[arg(long = "no-stream")]
    pub no_stream: bool,
    /// Do not truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    pub containers: Vec<String>,
}

fn stats_row(v: &Value, no_trunc: bool) -> Value {
    let cpu = {
        let cur = v["cpu_stats"]["cpu_usage"]["total_usage"].as_f64().unwrap_or(0.0);
        let pre = v["precpu_stats"]["cpu_usage"]["total_usage"].as_f64().unwrap_or(0.0);
        let sys = v["cpu_stats"]["system_cpu_usage"].as_f64().unwrap_or(0.0);
        let psys = v["precpu_stats"]["system_cpu_usage"].as_f64().unwrap_or(0.0);
        let n = v["cpu_stats"]["online_cpus"].as_f64().unwrap_or(1.0);
        if sys > psys && cur > pre && psys > 0.0 { (cur - pre) / (sys - psys) * n * 100.0 } else { 0.0 }
    };
    let usage = v["memory_stats"]["usage"].as_f64().unwrap_or(0.0);
    let cache = v["memory_stats"]["stats"]["total_inactive_file"]
        .as_f64()
        .or(v["memory_stats"]["stats"]["inactive_file"].as_f64())
        .unwrap_or(0.0);
    let mem = (usage - cache).max(0.0);
    let limit = v["memory_stats"]["limit"].as_f64().unwrap_or(0.0);
    let (mut rx, mut tx) = (0.0, 0.0);
    for n in v["networks"].as_object().into_iter().flat_map(|m| m.values()) {
        rx += n["rx_bytes"].as_f64().unwrap_or(0.0);
        tx += n["tx_bytes"].as_f64().unwrap_or(0.0);
    }
    let (mut br, mut bw) = (0.0, 0.0);
    for e in v["blkio_stats"]["io_service_bytes_recursive"].as_array().into_iter().flatten() {
        match e["op"].as_str().unwrap_or("").to_ascii_lowercase().as_str() {
            "read" => br += e["value"].as_f64().unwrap_or(0.0),
            "write" => bw += e["value"].as_f64().unwrap_or(0.0),
            _ => {}
        }
    }
    let id = v["id"].as_str().unwrap_or("");
    let running = v["read"].as_str().is_some_and(|r| !r.starts_with("0001"));
    let dash = |s: String| if running { s } else { "--".to_string() };
    json!({
        "Container": if no_trunc { id.to_string() } else { berth_api::ids::short_id(id).to_string() },
        "ID": if no_trunc { id.to_string() } else { berth_api::ids::short_id(id).to_string() },
        "Name": v["name"].as_str().unwrap_or("").trim_start_matches('/'),
        "CPUPerc": dash(format!("{cpu:.2}%")),
        "MemUsage": if running { format!("{} / {}", berth_api::units::bytes_size(mem), berth_api::units::bytes_size(limit)) } else { "-- / --".into() },
        "MemPerc": dash(format!("{:.2}%", if limit > 0.0 { mem / limit * 100.0 } else { 0.0 })),
        "NetIO": if running { format!("{} / {}", berth_api::units::human_size(rx as i64), berth_api::units::human_size(tx as i64)) } else { "-- / --".into() },
        "BlockIO": if running { format!("{} / {}", berth_api::units::human_size(br as i64), berth_api::units::human_size(bw as i64)) } else { "-- / --".into() },
        "PIDs": dash(v["pids_stats"]["current"].as_u64().unwrap_or(0).to_string()),
    })
}

pub fn stats(c: &Client, a: &StatsArgs) -> Exit {
    let names: Vec<String> = if a.containers.is_empty() {
        let list: Vec<ContainerSummary> =
            c.get_json(&format!("/containers/json{}", if a.all { "?all=1" } else { "" }))?;
        list.into_iter().map(|x| x.id).collect()
    } else {
        a.containers.clone()
    };
    let headers: BTreeMap<&str, &str> = [
        ("Container", "CONTAINER"),
        ("ID", "CONTAINER ID"),
        ("Name", "NAME"),
        ("CPUPerc", "CPU %"),
        ("MemUsage", "MEM USAGE / LIMIT"),
        ("MemPerc", "MEM %"),
        ("NetIO", "NET I/O"),
        ("BlockIO", "BLOCK I/O"),
        ("PIDs", "PIDS"),
    ]
    .into_iter()
    .collect();
    let default = "{{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";
    let fmt = format::parse(a.format.as_deref().unwrap_or(""));
    loop {
        let mut rows = Vec::new();
        for n in &names {
            match c.get_json::<Value>(&format!("/containers/{}/stats?stream=0", enc(n))) {
                Ok(v) => rows.push(stats_row(&v, a.no_trunc)),
                Err(e) => {
                    if !a.containers.is_empty() {
                        eprintln!("{e}");
                        return Ok(1);
                    }
                }
            }
        }
        let out = format::render(&fmt, &rows, default, &headers).map_err(|e| anyhow!(e))?;
        if !a.no_stream && tty::stdout_is_tty() {
            print!("\x1b[2J\x1b[H");
        }
        print!("{out}");
        // `print!` has written it (it panics if it cannot); a flush error only delays it.
        let _ = std::io::stdout().flush();
        if a.no_stream {
            return Ok(0);
        }
    }
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    /// Limit CPU CFS period
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<i64>,
    /// Limit the CPU real-time period in microseconds
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<i64>,
    /// Limit the CPU real-time runtime in microseconds
    #[arg(long = "cpu-rt-runtime")]
    pub cpu_rt_runtime: Option<i64>,
    /// Limit CPU CFS quota
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<i64>,
    /// Number of CPUs
    #[arg(long)]
    pub cpus: Option<String>,
    /// CPUs in which to allow execution
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Memory limit
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Restart policy to apply when a container exits
    #[arg(long)]
    pub restart: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn update(c: &Client, a: &UpdateArgs) -> Exit {
    let mut u = berth_api::models::UpdateRequest {
        blkio_weight: a.blkio_weight,
        cpu_period: a.cpu_period,
        cpu_quota: a.cpu_quota,
        cpu_realtime_period: a.cpu_rt_period,
        cpu_realtime_runtime: a.cpu_rt_runtime,
        cpu_shares: a.cpu_shares,
        nano_cpus: a.cpus.as_deref().map(opts::nano_cpus).transpose()?,
        cpuset_cpus: a.cpuset_cpus.clone(),
        cpuset_mems: a.cpuset_mems.clone(),
        memory: a.memory.as_deref().map(|s| opts::size(s, "--memory")).transpose()?,
        memory_reservation: a
            .memory_reservation
            .as_deref()
            .map(|s| opts::size(s, "--memory-reservation"))
            .transpose()?,
        pids_limit: a.pids_limit,
        restart_policy: a.restart.as_deref().map(opts::restart_policy).transpose()?,
        ..Default::default()
    };
    u.memory_swap = match a.memory_swap.as_deref() {
        None => None,
        Some("-1") => Some(-1),
        Some(s) => Some(opts::size(s, "--memory-swap")?),
    };
    for_each(&a.containers, |n| {
        c.post_json(&format!("/containers/{}/update", enc(n)), &u)?;
        println!("{n}");
        Ok(())
    })
}
