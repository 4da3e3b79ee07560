//! What the daemon and the shim say to each other.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Output from the process's stdout.
pub const FRAME_STDOUT: u8 = 1;
/// Output from the process's stderr.
pub const FRAME_STDERR: u8 = 2;
/// Input for the process's stdin (client → shim).
pub const FRAME_STDIN: u8 = 0;
/// The client has no more input: close the process's stdin (client → shim).
pub const FRAME_STDIN_CLOSE: u8 = 0x20;
/// New terminal size: rows and columns as two u16 BE (client → shim).
pub const FRAME_RESIZE: u8 = 0x21;
/// The process ended: its exit code as i32 BE (shim → client). Last frame on the connection.
pub const FRAME_EXIT: u8 = 0x10;

/// The overlay mount of the container's root.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RootfsMount {
    pub lower: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
}

impl RootfsMount {
    pub fn data(&self) -> String {
        let lower: Vec<String> = self.lower.iter().map(|p| p.display().to_string()).collect();
        format!(
            "lowerdir={},upperdir={},workdir={},index=off,redirect_dir=off",
            lower.join(":"),
            self.upper.display(),
            self.work.display()
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct LogOptions {
    /// `json-file`, `local` (berth writes json-file for both), `none`, `cri` (the CRI's
    /// line format at the path kubelet chose; set only by the CRI service), or a remote
    /// driver (`syslog`, `journald`, `gelf`, `fluentd`; see `remote`).
    pub driver: String,
    pub path: PathBuf,
    /// Rotate after this many bytes (0: never).
    pub max_size: u64,
    /// Keep this many files in all, the current one included.
    pub max_files: u32,
    /// Gzip rotated files.
    #[serde(default)]
    pub compress: bool,
    /// Keep no file at `path`: a remote driver whose cache is disabled
    /// (`--log-opt cache-disabled=true`); `docker logs` has nothing to read then.
    #[serde(default)]
    pub no_file: bool,
    /// For `syslog`, `journald`, `gelf` and `fluentd`: what the driver needs besides the
    /// options (see [`crate::sinks`]). The file at `path` is then Docker's "dual logging"
    /// cache, which `docker logs` reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<crate::sinks::RemoteLog>,
}

/// Everything the shim needs to start a container; written by the daemon as `shim.json` in
/// the bundle directory, next to the OCI `config.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ShimConfig {
    pub id: String,
    pub bundle: PathBuf,
    /// The unix socket the shim serves.
    pub socket: PathBuf,
    pub rootfs: RootfsMount,
    pub log: LogOptions,
    /// Keep stdin open for attach (`-i`).
    pub open_stdin: bool,
    /// Close stdin after the first attached client leaves (`docker run -i` does this).
    pub stdin_once: bool,
    pub tty: bool,
    /// `--user` as given, resolved inside the container's root.
    pub user: String,
    #[serde(default)]
    pub group_add: Vec<String>,
    /// Where the final status is written (survives the shim).
    pub exit_file: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    State,
    Wait,
    Attach {
        #[serde(default)]
        stdin: bool,
        #[serde(default = "yes")]
        stdout: bool,
        #[serde(default = "yes")]
        stderr: bool,
    },
    Kill {
        signal: i32,
        /// Every process in the container, not just the first.
        #[serde(default)]
        all: bool,
    },
    Resize {
        #[serde(default)]
        exec: Option<String>,
        rows: u16,
        cols: u16,
    },
    CloseStdin,
    /// Opens the log file again at its path: kubelet renamed it to rotate it (CRI
    /// `ReopenContainerLog`).
    ReopenLog,
    Exec {
        id: String,
        /// Boxed: a process is far larger than every other request.
        process: Box<berth_runtime::spec::Process>,
        #[serde(default)]
        user: String,
        #[serde(default)]
        group_add: Vec<String>,
        #[serde(default)]
        stdin: bool,
    },
}

fn yes() -> bool {
    true
}

/// The reply to `state`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct State {
    pub pid: i32,
    pub running: bool,
    #[serde(default)]
    pub exit: Option<ExitStatus>,
}

/// How the container's first process ended. Written to the exit file as well.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExitStatus {
    /// The exit code, or 128 + the signal that killed it.
    pub exit_code: i32,
    pub finished_at: String,
    #[serde(default)]
    pub oom_killed: bool,
}

/// A reply that carries either a value or an error.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Reply {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Encodes one frame.
pub fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(5 + payload.len());
    v.push(kind);
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// Splits complete frames off the front of `buf`.
pub fn take_frames(buf: &mut Vec<u8>) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while buf.len() - pos >= 5 {
        let len = u32::from_be_bytes([buf[pos + 1], buf[pos + 2], buf[pos + 3], buf[pos + 4]]) as usize;
        if buf.len() - pos - 5 < len {
            break;
        }
        out.push((buf[pos], buf[pos + 5..pos + 5 + len].to_vec()));
        pos += 5 + len;
    }
    buf.drain(..pos);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_across_reads() {
        let mut all = frame(FRAME_STDOUT, b"hello");
        all.extend(frame(FRAME_EXIT, &7i32.to_be_bytes()));
        let mut buf = all[..7].to_vec();
        assert!(take_frames(&mut buf).is_empty());
        buf.extend_from_slice(&all[7..]);
        let f = take_frames(&mut buf);
        assert_eq!(f, vec![(FRAME_STDOUT, b"hello".to_vec()), (FRAME_EXIT, 7i32.to_be_bytes().to_vec())]);
        assert!(buf.is_empty());
    }

    #[test]
    fn requests_are_tagged_json() {
        let r: Request = serde_json::from_str(r#"{"op":"attach","stdin":true}"#).unwrap();
        assert_eq!(r, Request::Attach { stdin: true, stdout: true, stderr: true });
        let r: Request = serde_json::from_str(r#"{"op":"kill","signal":15}"#).unwrap();
        assert_eq!(r, Request::Kill { signal: 15, all: false });
    }
}
