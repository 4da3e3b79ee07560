//! berth's built-in OCI runtime.
//!
//! It takes an OCI runtime [`spec::Spec`] and turns it into a running process inside new
//! namespaces, with the root filesystem pivoted, capabilities and seccomp applied, and the
//! process placed in its cgroup; and it starts further processes (`exec`) inside a running
//! container. It is a library, not a binary: the per-container shim calls it in process,
//! which is what makes starting a container cost a few milliseconds instead of a runtime
//! binary's tens.
//!
//! # Contract
//!
//! - **The caller is single-threaded** when it calls [`create::create`] or [`exec::exec`]:
//!   the child side runs Rust code between `clone3` and `execve` (the shim is a
//!   single-threaded process; tests run it through the shim).
//! - **The root filesystem is already mounted** at `spec.root.path` in the caller's mount
//!   namespace (the shim mounts the overlay in its own private namespace, so nothing leaks
//!   onto the host). The runtime only makes it the process's root.
//! - **Every path from the spec that lands inside the container is resolved inside the
//!   root** (`openat2(RESOLVE_IN_ROOT)`), so an image cannot point a mount, a device or the
//!   working directory outside it with a symlink.
//! - **Failure before `execve` is reported, not lost**: the child writes its error to a
//!   close-on-exec pipe; an empty pipe at EOF means the program is running. Error texts keep
//!   the phrases the docker CLI looks for (`executable file not found`, `no such file or
//!   directory`, `permission denied`) so its exit codes 126/127 work.
//! - **Order of the security steps** (as in runc): mounts and pivot; hostname and sysctls;
//!   masked and read-only paths; rlimits; then, if `noNewPrivileges` is off, seccomp is
//!   loaded while CAP_SYS_ADMIN is still held; bounding set dropped; user and groups set with
//!   capabilities kept; the final capability sets applied; seccomp loaded here instead when
//!   `noNewPrivileges` is on; `execve`.

pub mod caps;
mod child;
pub mod create;
pub mod exec;
mod joined_proc;
pub mod mounts;
pub mod paths;
pub mod propagation;
pub mod pty;
pub mod seccomp;
pub mod spec;
mod stage2;
pub mod sys;
pub mod sysctl;
pub mod user;

use berth_api::{ErrorKind, HasKind};

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("{context}: {source}")]
    Sys { context: String, source: std::io::Error },
    #[error("{0}")]
    Invalid(String),
    /// The container's process could not be started; the text is what the child reported.
    #[error("{0}")]
    Start(String),
    #[error(transparent)]
    Cgroup(#[from] berth_cgroups::CgroupError),
}

impl RuntimeError {
    pub fn sys(context: impl Into<String>, e: impl Into<std::io::Error>) -> Self {
        RuntimeError::Sys { context: context.into(), source: e.into() }
    }
}

impl HasKind for RuntimeError {
    fn kind(&self) -> ErrorKind {
        match self {
            RuntimeError::Invalid(_) => ErrorKind::InvalidArgument,
            RuntimeError::Start(m)
                if m.contains("not found") || m.contains("no such file") || m.contains("permission denied") =>
            {
                ErrorKind::InvalidArgument
            }
            _ => ErrorKind::Internal,
        }
    }
}

pub type Result<T> = std::result::Result<T, RuntimeError>;
