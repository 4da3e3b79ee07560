//! The local side of `docker cp`: making and unpacking tar streams with docker's rules for
//! names (copying into an existing directory, or to a new name).

use std::io::Read;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};
use berth_archive::apply::{ApplyOptions, Whiteouts, apply};
use berth_archive::walk::{WalkOptions, write_tree};

use crate::client::{Client, ClientError, enc};

fn base(p: &str) -> String {
    Path::new(p.trim_end_matches('/'))
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "/".into())
}

/// Unpacks a tar of the container path `src` at the local `dest`.
pub fn extract_to_local(r: Box<dyn Read + Send>, src: &str, dest: &str) -> Result<()> {
    let dest_path = PathBuf::from(dest);
    let opts = ApplyOptions { whiteouts: Whiteouts::Plain, ..Default::default() };
    if dest_path.is_dir() || src.ends_with("/.") {
        std::fs::create_dir_all(&dest_path)?;
        apply(r, &dest_path, &opts)?;
        return Ok(());
    }
    if dest.ends_with('/') {
        bail!("destination directory {dest} does not exist");
    }
    let parent = dest_path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !parent.is_dir() {
        bail!("destination directory {} does not exist", parent.display());
    }
    // Unpack beside the destination, then give the copy its new name.
    let staging = parent.join(format!(".berth-cp-{}", std::process::id()));
    std::fs::create_dir_all(&staging)?;
    let res = apply(r, &staging, &opts).map_err(anyhow::Error::from).and_then(|_| {
        let got = staging.join(base(src));
        if dest_path.exists() && !dest_path.is_dir() {
            std::fs::remove_file(&dest_path)?;
        }
        std::fs::rename(&got, &dest_path).map_err(|e| anyhow!("{}: {e}", dest_path.display()))
    });
    if let Err(e) = std::fs::remove_dir_all(&staging) {
        // Left in the user's directory: worth a line, not a failed copy.
        eprintln!("berth: removing {}: {e}", staging.display());
    }
    res
}

/// Makes a tar of the local `src` to unpack at the container path `dest`. Returns the
/// stream and the directory in the container to unpack into.
pub fn tar_local(c: &Client, ctr: &str, src: &str, dest: &str, follow: bool) -> Result<(Box<dyn Read>, String)> {
    let src_path = if follow { std::fs::canonicalize(src)? } else { std::path::absolute(src)? };
    let md = std::fs::symlink_metadata(&src_path).map_err(|e| anyhow!("stat {src}: {e}"))?;
    let dest_stat = match c.request(
        "HEAD",
        &format!("/containers/{}/archive?path={}", enc(ctr), enc(dest)),
        &[],
        crate::client::Body::None,
    ) {
        Ok(r) => Some(r.header("X-Docker-Container-Path-Stat").map(String::from).unwrap_or_default()),
        Err(ClientError::Api { status: 404, .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let dest_is_dir = dest_stat.as_deref().map(decode_is_dir).unwrap_or(false);
    let contents_only = src.ends_with("/.");
    let (archive_name, dest_dir) = if dest_is_dir {
        (if contents_only { String::new() } else { base(src) }, dest.to_string())
    } else if dest_stat.is_some() {
        if md.is_dir() {
            bail!("cannot copy a directory to a file");
        }
        let parent = Path::new(dest).parent().map(|p| p.display().to_string()).unwrap_or_else(|| "/".into());
        (base(dest), parent)
    } else {
        if dest.ends_with('/') {
            bail!("destination directory {dest} does not exist");
        }
        let parent = Path::new(dest).parent().map(|p| p.display().to_string()).unwrap_or_else(|| "/".into());
        (base(dest), parent)
    };
    let root = std::fs::File::open("/")?;
    let path = src_path.display().to_string();
    // A file that cannot be read fails the copy (the upload ends with the error).
    let reader = crate::piped::spawn(move |writer| {
        let opts = WalkOptions { archive_name, ..Default::default() };
        write_tree(root.as_fd(), &path, writer, opts).map(drop).map_err(std::io::Error::other)
    })?;
    Ok((Box::new(reader), if dest_dir.is_empty() { "/".into() } else { dest_dir }))
}

fn decode_is_dir(b64: &str) -> bool {
    let bytes = decode_b64(b64);
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v["mode"].as_u64())
        .is_some_and(|m| m & (1 << 31) != 0)
}

fn decode_b64(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => continue,
        } as u32;
        buf = (buf << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes() {
        assert_eq!(decode_b64("eyJtb2RlIjogMn0="), b"{\"mode\": 2}");
    }
}
