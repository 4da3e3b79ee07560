//! What a failed start means for the API, decided once (as moby's
//! `translateContainerdStartErr`): the shim says why the process did not start
//! ([`StartFailure`]); this says which HTTP status that is, which exit code the container
//! records, and what dockerd would have said. The docker CLI reads the words too: it exits
//! 127 when they say `executable file not found` or `no such file or directory`, 126 when
//! they say `permission denied`.

use berth_api::ErrorKind;
use berth_shim::proto::StartFailure;

/// A start (or exec) the runtime refused, in the API's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartFailed {
    /// What the client is told.
    pub message: String,
    /// Its HTTP status: a missing or forbidden program is the caller's mistake (400), as in
    /// dockerd; the rest is the daemon's (500).
    pub kind: ErrorKind,
    /// What the container's `State.ExitCode` becomes (unchanged if `None`).
    pub exit_code: Option<i64>,
}

/// A container's first process did not start.
pub fn translate(f: &StartFailure) -> StartFailed {
    // Docker resolves `--user` and `--group-add` itself before the OCI runtime runs, so those
    // mistakes come plain; the rest carries the runtime's wrapping as with runc.
    let oci = |m: &str| format!("OCI runtime create failed: {m}: unknown");
    let (message, kind, exit_code) = match f {
        StartFailure::NotFound(m) => (oci(m), ErrorKind::InvalidArgument, Some(127)),
        StartFailure::PermissionDenied(m) => (oci(m), ErrorKind::InvalidArgument, Some(126)),
        StartFailure::User(m) => (m.clone(), ErrorKind::Internal, None),
        // dockerd's words when a log driver cannot start.
        StartFailure::LogDriver(m) => (format!("failed to create task for container: {m}"), ErrorKind::Internal, None),
        StartFailure::BadWorkdir(m) | StartFailure::Other(m) => (oci(m), ErrorKind::Internal, None),
    };
    StartFailed { message, kind, exit_code }
}

/// An exec's process did not start. Docker records 126 for any of them.
pub fn translate_exec(f: &StartFailure) -> StartFailed {
    let kind = match f {
        StartFailure::NotFound(_) | StartFailure::PermissionDenied(_) => ErrorKind::InvalidArgument,
        _ => ErrorKind::Internal,
    };
    StartFailed {
        message: format!(
            "OCI runtime exec failed: exec failed: unable to start container process: {}: unknown",
            f.message()
        ),
        kind,
        exit_code: Some(126),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reason_has_its_status_exit_code_and_dockerd_words() {
        let nf = "exec: \"nosuchcmd\": executable file not found in $PATH";
        let cases = [
            (
                StartFailure::NotFound(nf.into()),
                format!("OCI runtime create failed: {nf}: unknown"),
                ErrorKind::InvalidArgument,
                Some(127),
            ),
            (
                StartFailure::PermissionDenied("exec: \"/etc\": permission denied".into()),
                "OCI runtime create failed: exec: \"/etc\": permission denied: unknown".into(),
                ErrorKind::InvalidArgument,
                Some(126),
            ),
            (
                StartFailure::User("unable to find user ghost: no matching entries in passwd file".into()),
                "unable to find user ghost: no matching entries in passwd file".into(),
                ErrorKind::Internal,
                None,
            ),
            (
                StartFailure::LogDriver("failed to initialize logging driver: dial tcp: refused".into()),
                "failed to create task for container: failed to initialize logging driver: dial tcp: refused".into(),
                ErrorKind::Internal,
                None,
            ),
            (
                StartFailure::BadWorkdir("chdir to cwd (\"/f\") set in config.json failed: Not a directory".into()),
                "OCI runtime create failed: chdir to cwd (\"/f\") set in config.json failed: Not a directory: unknown"
                    .into(),
                ErrorKind::Internal,
                None,
            ),
            (
                StartFailure::Other("loading seccomp filter: boom".into()),
                "OCI runtime create failed: loading seccomp filter: boom: unknown".into(),
                ErrorKind::Internal,
                None,
            ),
        ];
        for (f, message, kind, exit_code) in cases {
            assert_eq!(translate(&f), StartFailed { message, kind, exit_code }, "{f:?}");
        }
    }

    #[test]
    fn an_exec_that_did_not_start_records_126() {
        let t = translate_exec(&StartFailure::NotFound("exec: \"x\": executable file not found in $PATH".into()));
        assert_eq!(
            t.message,
            "OCI runtime exec failed: exec failed: unable to start container process: exec: \"x\": executable file not \
             found in $PATH: unknown"
        );
        assert_eq!((t.kind, t.exit_code), (ErrorKind::InvalidArgument, Some(126)));
        let t = translate_exec(&StartFailure::Other("container is not running".into()));
        assert_eq!((t.kind, t.exit_code), (ErrorKind::Internal, Some(126)));
    }
}
