//! `version`, `info`, `events`, `system df`, `system prune`.

use std::collections::BTreeMap;

use anyhow::{Result, anyhow};
use clap::Args;
use serde_json::Value;

use super::Exit;
use super::container::filter_json;
use crate::client::{Client, query};
use crate::format;

#[derive(Args, Debug)]
pub struct FormatArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
}

/// This machine's architecture as Go names it (docker's `OS/Arch: linux/amd64`).
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        a => a,
    }
}

pub fn version(c: &Client, a: &FormatArgs) -> Exit {
    let server: Result<Value> = c.get_json("/version").map_err(Into::into);
    // The docker CLI's template names: its templates see Go fields (`APIVersion`), where
    // the JSON it prints has `ApiVersion`; both are here.
    let client = serde_json::json!({
        "Platform": {"Name": "berth"},
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": berth_api::API_VERSION,
        "APIVersion": berth_api::API_VERSION,
        "DefaultAPIVersion": berth_api::API_VERSION,
        "GoVersion": "rust",
        "GitCommit": option_env!("BERTH_GIT_COMMIT").unwrap_or("unknown"),
        "BuildTime": "",
        "Os": "linux",
        "Arch": go_arch(),
        "Context": "default",
    });
    if let Some(f) = &a.format {
        let server = server.as_ref().ok().map(|s| {
            let mut s = s.clone();
            if let Some(o) = s.as_object_mut() {
                let api = o.get("ApiVersion").cloned().unwrap_or_default();
                o.insert("APIVersion".into(), api);
            }
            s
        });
        let v = serde_json::json!({"Client": client, "Server": server});
        println!("{}", format::execute(f, &v).map_err(|e| anyhow!(e))?);
        return Ok(if server.is_some() { 0 } else { 1 });
    }
    println!(
        "Client:\n Version:           {}\n API version:       {}\n OS/Arch:           linux/{}",
        env!("CARGO_PKG_VERSION"),
        berth_api::API_VERSION,
        go_arch()
    );
    match server {
        Ok(s) => {
            println!(
                "\nServer: berth\n Engine:\n  Version:          {}\n  API version:      {} (minimum version {})\n  OS/Arch:          {}/{}\n  Kernel:           {}",
                s["Version"].as_str().unwrap_or(""),
                s["ApiVersion"].as_str().unwrap_or(""),
                s["MinAPIVersion"].as_str().unwrap_or(""),
                s["Os"].as_str().unwrap_or(""),
                s["Arch"].as_str().unwrap_or(""),
                s["KernelVersion"].as_str().unwrap_or("")
            );
            Ok(0)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(1)
        }
    }
}

pub fn info(c: &Client, a: &FormatArgs) -> Exit {
    let mut v: Value = c.get_json("/info")?;
    // What the docker CLI adds for its templates.
    if let Some(o) = v.as_object_mut() {
        o.insert("ClientInfo".into(), serde_json::json!({"Debug": false, "Context": "default", "Plugins": []}));
    }
    if let Some(f) = &a.format {
        println!("{}", format::execute(f, &v).map_err(|e| anyhow!(e))?);
        return Ok(0);
    }
    let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
    let n = |k: &str| v[k].as_i64().unwrap_or(0);
    println!("Server:");
    println!(
        " Containers: {}\n  Running: {}\n  Paused: {}\n  Stopped: {}",
        n("Containers"),
        n("ContainersRunning"),
        n("ContainersPaused"),
        n("ContainersStopped")
    );
    println!(" Images: {}", n("Images"));
    println!(" Server Version: {}", s("ServerVersion"));
    println!(" Storage Driver: {}", s("Driver"));
    println!(" Logging Driver: {}", s("LoggingDriver"));
    println!(" Cgroup Driver: {}\n Cgroup Version: {}", s("CgroupDriver"), s("CgroupVersion"));
    let names = |kind: &str| {
        v["Plugins"][kind].as_array().map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" "))
    };
    println!(" Plugins:");
    for (kind, shown) in [("Volume", "Volume"), ("Network", "Network"), ("Log", "Log")] {
        println!("  {shown}: {}", names(kind).unwrap_or_default());
    }
    println!(" Swarm: {}", v["Swarm"]["LocalNodeState"].as_str().unwrap_or("inactive"));
    println!(" Default Runtime: {}", s("DefaultRuntime"));
    println!(" Init Binary: {}", s("InitBinary"));
    println!(
        " Kernel Version: {}\n Operating System: {}\n OSType: {}\n Architecture: {}",
        s("KernelVersion"),
        s("OperatingSystem"),
        s("OSType"),
        s("Architecture")
    );
    println!(" CPUs: {}\n Total Memory: {}", n("NCPU"), berth_api::units::bytes_size(n("MemTotal") as f64));
    println!(
        " Name: {}\n ID: {}\n Docker Root Dir: {}\n Debug Mode: {}",
        s("Name"),
        s("ID"),
        s("DockerRootDir"),
        v["Debug"].as_bool().unwrap_or(false)
    );
    println!(" Live Restore Enabled: {}", v["LiveRestoreEnabled"].as_bool().unwrap_or(false));
    Ok(0)
}

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Show all events created since timestamp
    #[arg(long)]
    pub since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long)]
    pub until: Option<String>,
}

pub fn events(c: &Client, a: &EventsArgs) -> Exit {
    let q = query(&[
        ("filters", filter_json(&a.filter)?),
        ("since", a.since.clone().unwrap_or_default()),
        ("until", a.until.clone().unwrap_or_default()),
    ]);
    let r = c.get(&format!("/events{q}"))?;
    let fmt = a.format.clone();
    r.each_line(|l| {
        let v: Value = serde_json::from_slice(l).unwrap_or_default();
        let line = match &fmt {
            Some(f) if f == "json" || f == "{{json .}}" => String::from_utf8_lossy(l).into_owned(),
            Some(f) => format::execute(f, &v).unwrap_or_default(),
            None => {
                let nanos = v["timeNano"].as_i64().unwrap_or(0) as i128;
                let t = berth_api::time::rfc3339_nanos_fixed(nanos).replace('Z', "+00:00");
                let attrs: BTreeMap<String, String> =
                    serde_json::from_value(v["Actor"]["Attributes"].clone()).unwrap_or_default();
                let a: Vec<String> = attrs.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!(
                    "{} {} {} {} ({})",
                    t,
                    v["Type"].as_str().unwrap_or(""),
                    v["Action"].as_str().unwrap_or(""),
                    v["Actor"]["ID"].as_str().unwrap_or(""),
                    a.join(", ")
                )
            }
        };
        println!("{line}");
        Ok(true)
    })?;
    Ok(0)
}

#[derive(Args, Debug)]
pub struct DfArgs {
    /// Show detailed information on space usage
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
}

pub fn df(c: &Client, a: &DfArgs) -> Exit {
    let v: Value = c.get_json("/system/df")?;
    let images = v["Images"].as_array().cloned().unwrap_or_default();
    let containers = v["Containers"].as_array().cloned().unwrap_or_default();
    let img_size: i64 = images.iter().map(|i| i["Size"].as_i64().unwrap_or(0)).sum();
    let active_imgs = images.iter().filter(|i| i["Containers"].as_i64().unwrap_or(0) > 0).count();
    let img_reclaim: i64 = images
        .iter()
        .filter(|i| i["Containers"].as_i64().unwrap_or(0) == 0)
        .map(|i| i["Size"].as_i64().unwrap_or(0))
        .sum();
    let ctr_size: i64 = containers.iter().map(|c| c["SizeRw"].as_i64().unwrap_or(0)).sum();
    let active_ctrs = containers.iter().filter(|c| c["State"] == "running").count();
    let ctr_reclaim: i64 =
        containers.iter().filter(|c| c["State"] != "running").map(|c| c["SizeRw"].as_i64().unwrap_or(0)).sum();
    let pct = |r: i64, t: i64| if t > 0 { format!(" ({}%)", r * 100 / t) } else { String::new() };
    let hs = berth_api::units::human_size;
    let rows = vec![
        serde_json::json!({"Type": "Images", "TotalCount": images.len().to_string(), "Active": active_imgs.to_string(), "Size": hs(img_size), "Reclaimable": format!("{}{}", hs(img_reclaim), pct(img_reclaim, img_size))}),
        serde_json::json!({"Type": "Containers", "TotalCount": containers.len().to_string(), "Active": active_ctrs.to_string(), "Size": hs(ctr_size), "Reclaimable": format!("{}{}", hs(ctr_reclaim), pct(ctr_reclaim, ctr_size))}),
        serde_json::json!({"Type": "Local Volumes", "TotalCount": v["Volumes"].as_array().map(|a| a.len()).unwrap_or(0).to_string(), "Active": "0", "Size": "0B", "Reclaimable": "0B"}),
        serde_json::json!({"Type": "Build Cache", "TotalCount": v["BuildCache"].as_array().map(|a| a.len()).unwrap_or(0).to_string(), "Active": "0", "Size": "0B", "Reclaimable": "0B"}),
    ];
    let headers: BTreeMap<&str, &str> = [
        ("Type", "TYPE"),
        ("TotalCount", "TOTAL"),
        ("Active", "ACTIVE"),
        ("Size", "SIZE"),
        ("Reclaimable", "RECLAIMABLE"),
    ]
    .into_iter()
    .collect();
    let default = "{{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}";
    print!(
        "{}",
        format::render(&format::parse(a.format.as_deref().unwrap_or("")), &rows, default, &headers)
            .map_err(|e| anyhow!(e))?
    );
    if a.verbose {
        println!("\nImages space usage:\n");
        for i in &images {
            println!("{} {}", i["Id"].as_str().unwrap_or(""), hs(i["Size"].as_i64().unwrap_or(0)));
        }
        println!("\nContainers space usage:\n");
        for c in &containers {
            println!("{} {}", c["Id"].as_str().unwrap_or(""), hs(c["SizeRw"].as_i64().unwrap_or(0)));
        }
    }
    Ok(0)
}

#[derive(Args, Debug)]
pub struct SystemPruneArgs {
    /// Remove all unused images not just dangling ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Prune anonymous volumes
    #[arg(long)]
    pub volumes: bool,
    /// Provide filter values (e.g. "label=<key>=<value>")
    #[arg(long)]
    pub filter: Vec<String>,
}

pub fn prune(c: &Client, a: &SystemPruneArgs) -> Exit {
    if a.volumes && a.filter.iter().any(|f| f.starts_with("until=")) {
        return Err(anyhow!("ERROR: The \"until\" filter is not supported with \"--volumes\""));
    }
    let mut warn = String::from(
        "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n",
    );
    if a.volumes {
        warn.push_str("  - all anonymous volumes not used by at least one container\n");
    }
    warn.push_str(if a.all {
        "  - all images without at least one container associated to them\n"
    } else {
        "  - all dangling images\n"
    });
    warn.push_str("  - unused build cache\nAre you sure you want to continue?");
    if !a.force && !super::container::confirm(&warn) {
        return Ok(0);
    }
    let filters = filter_json(&a.filter)?;
    let mut total = 0i64;
    // Docker's order: what holds references goes first.
    let section = |title: &str, items: Option<&Vec<Value>>| {
        if let Some(items) = items.filter(|i| !i.is_empty()) {
            println!("{title}:");
            for i in items {
                println!("{}", i.as_str().unwrap_or(""));
            }
            println!();
        }
    };
    let v: Value = c.post(&format!("/containers/prune{}", query(&[("filters", filters.clone())])))?.json()?;
    section("Deleted Containers", v["ContainersDeleted"].as_array());
    total += v["SpaceReclaimed"].as_i64().unwrap_or(0);
    let v: Value = c.post(&format!("/networks/prune{}", query(&[("filters", filters.clone())])))?.json()?;
    section("Deleted Networks", v["NetworksDeleted"].as_array());
    if a.volumes {
        let v: Value = c.post(&format!("/volumes/prune{}", query(&[("filters", filters.clone())])))?.json()?;
        section("Deleted Volumes", v["VolumesDeleted"].as_array());
        total += v["SpaceReclaimed"].as_i64().unwrap_or(0);
    }
    total += super::image::prune_images(c, a.all, &a.filter)?;
    if let Ok(resp) =
        c.post(&format!("/build/prune{}", query(&[("all", if a.all { "1".to_string() } else { String::new() })])))
        && let Ok(v) = resp.json::<Value>()
    {
        section("Deleted build cache objects", v["CachesDeleted"].as_array());
        total += v["SpaceReclaimed"].as_i64().unwrap_or(0);
    }
    println!("Total reclaimed space: {}", berth_api::units::human_size(total));
    Ok(0)
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Remove damaged blobs, layers and the images that need them
    #[arg(long)]
    pub repair: bool,
}

/// `berth system check [--repair]`: exits 1 while problems remain.
pub fn check(c: &Client, a: &CheckArgs) -> Exit {
    let v: Value = c.post(&format!("/system/check{}", if a.repair { "?repair=1" } else { "" }))?.json()?;
    println!("checked {} images, {} layers, {} blobs", v["Images"], v["Layers"], v["Blobs"]);
    for r in v["Repaired"].as_array().into_iter().flatten() {
        println!("repaired: {}", r.as_str().unwrap_or(""));
    }
    let problems: Vec<&str> = v["Problems"].as_array().into_iter().flatten().filter_map(|p| p.as_str()).collect();
    for p in &problems {
        println!("problem: {p}");
    }
    if problems.is_empty() {
        println!("no problems found");
        Ok(0)
    } else {
        Ok(1)
    }
}
