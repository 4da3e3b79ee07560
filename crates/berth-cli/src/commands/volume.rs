//! `volume …` commands.

use std::collections::BTreeMap;

use anyhow::anyhow;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::container::{InspectArgs, confirm, filter_json};
use super::{Exit, for_each};
use crate::client::{Client, enc, query};
use crate::format;

#[derive(Subcommand, Debug)]
pub enum VolumeCmd {
    /// Create a volume
    Create(CreateArgs),
    /// List volumes
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more volumes
    Inspect(InspectVolArgs),
    /// Remove one or more volumes
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Remove unused local volumes
    Prune(PruneArgs),
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Specify volume driver name
    #[arg(short = 'd', long, default_value = "local")]
    pub driver: String,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt")]
    pub opt: Vec<String>,
    /// Set metadata for a volume
    #[arg(long)]
    pub label: Vec<String>,
    /// Specify volume name
    #[arg(long = "name")]
    pub name_flag: Option<String>,
    pub name: Option<String>,
}

fn kv(list: &[String], what: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for s in list {
        match s.split_once('=') {
            Some((k, v)) => out.insert(k.to_string(), v.to_string()),
            None if what == "label" => out.insert(s.clone(), String::new()),
            None => {
                return Err(anyhow!(
                    "invalid argument \"{s}\" for \"-o, --opt\" flag: invalid key value pair format in driver options"
                ));
            }
        };
    }
    Ok(out)
}

fn create(c: &Client, a: &CreateArgs) -> Exit {
    if let (Some(f), Some(p)) = (&a.name_flag, &a.name)
        && f != p
    {
        return Err(anyhow!("conflicting options: either specify --name or provide positional arg, not both"));
    }
    let name = a.name.clone().or(a.name_flag.clone()).unwrap_or_default();
    let body =
        json!({"Name": name, "Driver": a.driver, "DriverOpts": kv(&a.opt, "opt")?, "Labels": kv(&a.label, "label")?});
    let v: Value = c.post_json("/volumes/create", &body)?.json()?;
    println!("{}", v["Name"].as_str().unwrap_or(""));
    Ok(0)
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Provide filter values (e.g. "dangling=true")
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Only display volume names
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

fn ls(c: &Client, a: &LsArgs) -> Exit {
    let v: Value = c.get_json(&format!("/volumes{}", query(&[("filters", filter_json(&a.filter)?)])))?;
    let mut list: Vec<Value> = v["Volumes"].as_array().cloned().unwrap_or_default();
    list.sort_by(|x, y| x["Name"].as_str().cmp(&y["Name"].as_str()));
    if a.quiet {
        for n in &list {
            println!("{}", n["Name"].as_str().unwrap_or(""));
        }
        return Ok(0);
    }
    let rows: Vec<Value> = list
        .iter()
        .map(|n| {
            json!({
                "Name": n["Name"],
                "Driver": n["Driver"],
                "Scope": n["Scope"],
                "Mountpoint": n["Mountpoint"],
                "CreatedAt": n["CreatedAt"],
                "Labels": n["Labels"].as_object().map(|m| m.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect::<Vec<_>>().join(",")).unwrap_or_default(),
                "LabelsMap": n["Labels"],
            })
        })
        .collect();
    let headers: BTreeMap<&str, &str> = [
        ("Name", "VOLUME NAME"),
        ("Driver", "DRIVER"),
        ("Scope", "SCOPE"),
        ("Mountpoint", "MOUNTPOINT"),
        ("CreatedAt", "CREATED"),
        ("Labels", "LABELS"),
    ]
    .into_iter()
    .collect();
    print!(
        "{}",
        format::render(&format::parse(a.format.as_deref().unwrap_or("")), &rows, "{{.Driver}}\t{{.Name}}", &headers)
            .map_err(|e| anyhow!(e))?
    );
    Ok(0)
}

#[derive(Args, Debug)]
pub struct InspectVolArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Force the removal of one or more volumes
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(required = true)]
    pub volumes: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Provide filter values (e.g. "label=<label>")
    #[arg(long)]
    pub filter: Vec<String>,
}

pub fn run(c: &Client, cmd: VolumeCmd) -> Exit {
    match cmd {
        VolumeCmd::Create(a) => create(c, &a),
        VolumeCmd::Ls(a) => ls(c, &a),
        VolumeCmd::Inspect(a) => super::container::inspect(
            c,
            &InspectArgs { format: a.format, size: false, kind: None, names: a.names },
            Some("volume"),
        ),
        VolumeCmd::Rm(a) => for_each(&a.volumes, |n| {
            c.delete(&format!("/volumes/{}{}", enc(n), if a.force { "?force=1" } else { "" }))?;
            println!("{n}");
            Ok(())
        }),
        VolumeCmd::Prune(a) => {
            let what = if a.all {
                "all local volumes not used by at least one container"
            } else {
                "all anonymous local volumes not used by at least one container"
            };
            if !a.force && !confirm(&format!("WARNING! This will remove {what}.\nAre you sure you want to continue?")) {
                return Ok(0);
            }
            let mut filters = a.filter.clone();
            if a.all {
                filters.push("all=true".into());
            }
            let v: Value =
                c.post(&format!("/volumes/prune{}", query(&[("filters", filter_json(&filters)?)])))?.json()?;
            if let Some(n) = v["VolumesDeleted"].as_array().filter(|a| !a.is_empty()) {
                println!("Deleted Volumes:");
                for x in n {
                    println!("{}", x.as_str().unwrap_or(""));
                }
                println!();
            }
            println!(
                "Total reclaimed space: {}",
                berth_api::units::human_size(v["SpaceReclaimed"].as_i64().unwrap_or(0))
            );
            Ok(0)
        }
    }
}
