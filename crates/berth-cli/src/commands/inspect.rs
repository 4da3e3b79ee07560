//! `inspect`: containers, images, networks and volumes, as JSON or through a template.

use anyhow::{Result, anyhow, bail};
use clap::Args;
use serde_json::Value;

use super::Exit;
use crate::client::{Client, ClientError, enc};
use crate::format;

/// `docker inspect` of containers (`--type container`) or anything.
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    /// Display total file sizes if the type is container
    #[arg(short = 's', long)]
    pub size: bool,
    /// Return JSON for specified type
    #[arg(long = "type")]
    pub kind: Option<String>,
    #[arg(required = true)]
    pub names: Vec<String>,
}

pub fn inspect(c: &Client, a: &InspectArgs, forced: Option<&str>) -> Exit {
    let kind = forced.or(a.kind.as_deref());
    let mut out = Vec::new();
    let mut code = 0;
    for n in &a.names {
        let try_get = |path: String| -> Result<Option<Value>> {
            match c.get_json::<Value>(&path) {
                Ok(v) => Ok(Some(v)),
                Err(ClientError::Api { status: 404, .. }) => Ok(None),
                Err(e) => Err(e.into()),
            }
        };
        let size = if a.size { "?size=1" } else { "" };
        let found = match kind {
            Some("container") => try_get(format!("/containers/{}/json{size}", enc(n)))?,
            Some("image") => try_get(format!("/images/{}/json", n))?,
            Some("network") => try_get(format!("/networks/{}", enc(n)))?,
            Some("volume") => try_get(format!("/volumes/{}", enc(n)))?,
            Some(other) => bail!("\"{other}\" is not a valid value for --type"),
            None => match try_get(format!("/containers/{}/json{size}", enc(n)))? {
                Some(v) => Some(v),
                None => match try_get(format!("/images/{}/json", n))? {
                    Some(v) => Some(v),
                    None => match try_get(format!("/networks/{}", enc(n))).unwrap_or(None) {
                        Some(v) => Some(v),
                        None => try_get(format!("/volumes/{}", enc(n))).unwrap_or(None),
                    },
                },
            },
        };
        match found {
            Some(v) => out.push(v),
            None => {
                let what = match kind {
                    Some("container") => "container",
                    Some("image") => "image",
                    Some("network") => "network",
                    Some("volume") => "volume",
                    _ => "object",
                };
                eprintln!("Error: No such {what}: {n}");
                code = 1;
            }
        }
    }
    match &a.format {
        Some(f) => {
            for v in &out {
                println!("{}", format::execute(f, v).map_err(|e| anyhow!(e))?);
            }
        }
        None => {
            let mut buf = Vec::new();
            let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
            let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
            serde::Serialize::serialize(&out, &mut ser)?;
            println!("{}", String::from_utf8_lossy(&buf));
        }
    }
    Ok(code)
}
