//! Tar archives, the unit in which berth moves filesystems around.
//!
//! A layer arrives as a tar stream (from `load`, `import`, a registry, or a container's diff)
//! and is stored unpacked, as an overlayfs lower directory. Docker users expect two things of
//! that round trip, and this crate's contract is built around them:
//!
//! 1. **Nothing in an archive can touch anything outside the directory it is applied to.**
//!    [`apply::apply`] resolves every path with `openat2(RESOLVE_IN_ROOT)` relative to the
//!    target root, so `..`, absolute symlinks and symlinked parents are all confined; entries
//!    that *try* to escape (a `../` path, a relative symlink or a hard link pointing above the
//!    root) and device nodes are refused with [`ArchiveError::Unsafe`], as Docker refuses them.
//!    `docker cp` into a container unpacks from the container's root with Docker's rules for
//!    links instead ([`apply::ApplyOptions::under`]), and reads the paths it copies out as
//!    Docker does ([`scope`]).
//! 2. **A stored layer can be handed back byte for byte.** The digest of a layer (`diff_id`) is
//!    the SHA-256 of its uncompressed tar; `save` and `push` must reproduce that exact stream.
//!    While applying, berth records a [`skeleton::Skeleton`]: every byte of the archive except
//!    regular-file contents, which are read back from the unpacked files when the layer is
//!    reassembled. The layer costs its unpacked size plus a few hundred bytes per file.
//!
//! Overlay's native whiteouts (a 0:0 character device; the `trusted.overlay.opaque` xattr) and
//! the OCI ones (`.wh.name`, `.wh..wh..opq`) are converted in both directions, so an unpacked
//! layer is directly usable as a lower directory and a container's upper directory can be
//! turned into a layer tar ([`walk::write_tree`]).

pub mod apply;
pub mod compress;
pub mod hash;
pub mod header;
pub mod paths;
pub mod prefix;
pub mod reader;
pub mod scope;
pub mod skeleton;
pub mod walk;
pub mod writeback;
pub mod writer;

use berth_api::{ErrorKind, HasKind};

/// Overlayfs marks a directory that hides the lower layers with this xattr set to `y`.
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// Overlayfs's own metadata (opaque, redirect, origin, metacopy…): it says how overlayfs
/// reads the layers, so only overlayfs and berth's own whiteout handling may write it; an
/// archive's copy is never applied.
pub const OVERLAY_XATTR_PREFIX: &str = "trusted.overlay.";
/// The OCI whiteout prefix.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// The OCI opaque-directory marker file.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    /// The bytes are not a valid (or complete) tar stream.
    #[error("invalid archive: {0}")]
    Corrupt(String),
    /// An entry would reach outside the root or create something berth never creates.
    #[error("refused archive entry: {0}")]
    Unsafe(String),
    #[error("unsupported archive entry: {0}")]
    Unsupported(String),
    /// The disk filled up (ENOSPC, or EDQUOT): said as such, never as a bad archive.
    #[error("{context}: no space left on device")]
    NoSpace { context: String },
}

impl ArchiveError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        // A read that ends early is a truncated archive, which the user should hear as such.
        if source.kind() == std::io::ErrorKind::UnexpectedEof {
            return ArchiveError::Corrupt(format!("{}: unexpected end of archive (truncated?)", context.into()));
        }
        if is_no_space(&source) {
            return ArchiveError::NoSpace { context: context.into() };
        }
        ArchiveError::Io { context: context.into(), source }
    }

    /// Whether the disk being full caused this.
    pub fn is_no_space(&self) -> bool {
        match self {
            ArchiveError::NoSpace { .. } => true,
            ArchiveError::Io { source, .. } => is_no_space(source),
            _ => false,
        }
    }
}

/// ENOSPC or EDQUOT.
pub fn is_no_space(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull
        || e.kind() == std::io::ErrorKind::QuotaExceeded
        || e.raw_os_error() == Some(rustix::io::Errno::NOSPC.raw_os_error())
}

impl HasKind for ArchiveError {
    fn kind(&self) -> ErrorKind {
        match self {
            ArchiveError::Io { .. } | ArchiveError::NoSpace { .. } => ErrorKind::Internal,
            ArchiveError::Corrupt(_) | ArchiveError::Unsafe(_) | ArchiveError::Unsupported(_) => {
                ErrorKind::InvalidArgument
            }
        }
    }
}

pub type Result<T> = std::result::Result<T, ArchiveError>;

/// Maps a rustix errno into an [`ArchiveError`] with context.
pub(crate) fn errno(context: impl Into<String>, e: rustix::io::Errno) -> ArchiveError {
    ArchiveError::io(context, std::io::Error::from(e))
}
