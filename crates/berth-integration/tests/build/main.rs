//! `build`: Dockerfiles built through the daemon, checked the way a user would (run the
//! image, inspect it, read the build output). One file per instruction or build feature;
//! RUN steps use `--network none`. Helpers shared by them are here.

use std::path::{Path, PathBuf};

use berth_integration::{Daemon, Run};

mod add;
mod arg;
mod cache;
mod cmd_entrypoint;
mod config;
mod contexts;
mod copy;
mod copy_flags;
mod crash_disk;
mod details;
mod docker_cli;
mod entrypoint_paths;
mod env_label;
mod expose;
mod from_stages;
mod frontend;
mod healthcheck;
mod hostile;
mod maintainer;
mod run;
mod run_mounts;
mod secrets;
mod stopsignal;
mod sync;
mod user_shell;
mod volume_onbuild;
mod workdir;

/// A build context directory with the given files.
pub(crate) fn context(d: &Daemon, files: &[(&str, &str)]) -> PathBuf {
    let dir = d.dir.path().join(berth_integration::unique("ctx"));
    for (name, content) in files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub(crate) fn build(d: &Daemon, dir: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["build", "--network", "none"];
    args.extend_from_slice(extra);
    let ctx = dir.display().to_string();
    args.push(&ctx);
    d.berth(&args)
}

pub(crate) fn inspect(d: &Daemon, image: &str, format: &str) -> String {
    d.berth(&["image", "inspect", "-f", format, image]).ok().trim().to_string()
}

pub(crate) fn steps_cached(out: &str) -> usize {
    out.matches(" ---> Using cache").count()
}

/// A tar of `files` compressed with `flag` (`""`, `-z`, `-j`, `-J`, `--zstd`).
pub(crate) fn make_tar(dir: &Path, name: &str, flag: &str, files: &[(&str, &str)]) {
    let src = dir.join(format!("{name}.src"));
    for (f, c) in files {
        let p = src.join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, c).unwrap();
    }
    let mut cmd = std::process::Command::new("tar");
    cmd.arg("-C").arg(&src).arg("-c");
    if !flag.is_empty() {
        cmd.arg(flag);
    }
    let st = cmd.arg("-f").arg(dir.join(name)).arg(".").status().unwrap();
    assert!(st.success());
    std::fs::remove_dir_all(src).unwrap();
}

/// Serves `files` (path → body) on 127.0.0.1 for `requests` requests.
pub(crate) fn serve(files: Vec<(&'static str, Vec<u8>)>, requests: usize) -> (u16, std::thread::JoinHandle<()>) {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let t = std::thread::spawn(move || {
        for _ in 0..requests {
            let (mut s, _) = l.accept().unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.ends_with(b"\r\n\r\n") {
                let n = s.read(&mut buf).unwrap();
                req.extend_from_slice(&buf[..n]);
            }
            let path = String::from_utf8_lossy(&req).split(' ').nth(1).unwrap_or("").to_string();
            match files.iter().find(|(p, _)| *p == path) {
                Some((_, body)) => {
                    write!(s, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len())
                        .unwrap();
                    s.write_all(body).unwrap();
                }
                None => {
                    s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap()
                }
            }
        }
    });
    (port, t)
}

pub(crate) use berth_integration::raw_tar_entry;
