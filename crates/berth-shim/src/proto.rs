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
    /// A directory `path` lies in that is not berth's (a CRI pod's log directory): the file is
    /// reached from it with no symlink on the way (see [`crate::beneath`]), and never rotated
    /// by the shim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beneath: Option<PathBuf>,
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
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Reply {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// What went wrong, in words. A failed start (of the container or of an exec) carries
    /// its reason in `failure` as well; this stays for readers that know only the words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<StartFailure>,
}

impl Reply {
    pub fn ok() -> Reply {
        Reply::default()
    }

    pub fn started(pid: i32) -> Reply {
        Reply { pid: Some(pid), ..Reply::default() }
    }

    /// A request that failed (`None`: it did not).
    pub fn error(e: Option<String>) -> Reply {
        Reply { error: e, ..Reply::default() }
    }

    /// A process that did not start.
    pub fn failed(f: StartFailure) -> Reply {
        Reply { error: Some(f.message().to_string()), failure: Some(f), ..Reply::default() }
    }

    /// Why the process did not start, if it did not. A shim older than the typed reason
    /// sent only words: they are [`StartFailure::Other`].
    pub fn start_failure(&self) -> Option<StartFailure> {
        match (&self.failure, &self.error) {
            (Some(f), _) => Some(f.clone()),
            (None, Some(e)) => Some(StartFailure::Other(e.clone())),
            (None, None) => None,
        }
    }
}

/// Why a container's first process, or an exec, did not start: the shim says which kind of
/// failure it saw, the daemon decides in one place what that means for the API (its status
/// code, the exit code it records, dockerd's wording). Each carries the runtime's own words.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "reason", content = "message", rename_all = "snake_case")]
pub enum StartFailure {
    /// The program is not there (`executable file not found in $PATH`, `no such file or
    /// directory`).
    NotFound(String),
    /// The program may not be executed (`permission denied`).
    PermissionDenied(String),
    /// The process's working directory could not be entered.
    BadWorkdir(String),
    /// `--user` or `--group-add` names nobody in the image, or an id out of range.
    User(String),
    /// The log driver could not start (its collector is unreachable); nothing ran.
    LogDriver(String),
    /// Anything else.
    Other(String),
}

/// A failure of no particular kind, in words.
impl From<String> for StartFailure {
    fn from(m: String) -> StartFailure {
        StartFailure::Other(m)
    }
}

impl From<&str> for StartFailure {
    fn from(m: &str) -> StartFailure {
        StartFailure::Other(m.to_string())
    }
}

impl StartFailure {
    pub fn message(&self) -> &str {
        match self {
            StartFailure::NotFound(m)
            | StartFailure::PermissionDenied(m)
            | StartFailure::BadWorkdir(m)
            | StartFailure::User(m)
            | StartFailure::LogDriver(m)
            | StartFailure::Other(m) => m,
        }
    }

    /// The reason for a runtime error that stopped the process before its program ran. The
    /// process's own failures reach the runtime as its words over a pipe (see
    /// berth-runtime's contract, which keeps the phrases the docker CLI looks for): this is
    /// the one place they are read.
    pub fn from_runtime(e: &berth_runtime::RuntimeError) -> StartFailure {
        let m = e.to_string();
        match e {
            berth_runtime::RuntimeError::Start(_)
                if m.contains("executable file not found") || m.contains("no such file or directory") =>
            {
                StartFailure::NotFound(m)
            }
            berth_runtime::RuntimeError::Start(_) if m.contains("permission denied") => {
                StartFailure::PermissionDenied(m)
            }
            berth_runtime::RuntimeError::Start(_) if m.starts_with("chdir to cwd ") => StartFailure::BadWorkdir(m),
            _ => StartFailure::Other(m),
        }
    }
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
    fn a_start_failure_travels_typed_and_in_words() {
        let r = Reply::failed(StartFailure::NotFound("exec: \"x\": executable file not found in $PATH".into()));
        let line = serde_json::to_string(&r).unwrap();
        assert_eq!(
            line,
            concat!(
                r#"{"error":"exec: \"x\": executable file not found in $PATH","#,
                r#""failure":{"reason":"not_found","message":"exec: \"x\": executable file not found in $PATH"}}"#
            )
        );
        let back: Reply = serde_json::from_str(&line).unwrap();
        assert_eq!(back.start_failure(), r.failure);
        // An older shim's words only.
        let old: Reply = serde_json::from_str(r#"{"error":"boom"}"#).unwrap();
        assert_eq!(old.start_failure(), Some(StartFailure::Other("boom".into())));
        assert_eq!(serde_json::from_str::<Reply>(r#"{"pid":7}"#).unwrap().start_failure(), None);
    }

    #[test]
    fn runtime_errors_are_read_once_into_a_reason() {
        use berth_runtime::RuntimeError;
        let cases = [
            (RuntimeError::Start("exec: \"nosuch\": executable file not found in $PATH".into()), "not_found"),
            (RuntimeError::Start("exec: \"/x\": stat /x: no such file or directory".into()), "not_found"),
            (RuntimeError::Start("exec: \"/etc/passwd\": permission denied".into()), "permission_denied"),
            (
                RuntimeError::Start(
                    "chdir to cwd (\"/x\") set in config.json failed: Not a directory (os error 20)".into(),
                ),
                "bad_workdir",
            ),
            (RuntimeError::Start("loading seccomp filter: boom".into()), "other"),
            (RuntimeError::Invalid("no such file or directory".into()), "other"),
        ];
        for (e, want) in cases {
            let f = StartFailure::from_runtime(&e);
            assert_eq!(serde_json::to_value(&f).unwrap()["reason"], want, "{e}");
            assert_eq!(f.message(), e.to_string());
        }
    }

    #[test]
    fn requests_are_tagged_json() {
        let r: Request = serde_json::from_str(r#"{"op":"attach","stdin":true}"#).unwrap();
        assert_eq!(r, Request::Attach { stdin: true, stdout: true, stderr: true });
        let r: Request = serde_json::from_str(r#"{"op":"kill","signal":15}"#).unwrap();
        assert_eq!(r, Request::Kill { signal: 15, all: false });
    }
}
