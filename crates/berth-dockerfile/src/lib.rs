//! Dockerfile syntax.
//!
//! [`instruction`] parses one logical line (`CMD ["sh"]`, `ENV A=1 B="two words"`) into an
//! [`Instruction`]: the keyword, its `--flags`, and its argument either in exec (JSON array)
//! or shell form. [`changes`] applies the instructions that only change an image's config,
//! which is what `docker import -c` and `docker commit -c` accept.

pub mod changes;
pub mod instruction;
pub mod words;

pub use instruction::{Args, Instruction};

use berth_api::{ErrorKind, HasKind};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DockerfileError {
    #[error("{0}")]
    Syntax(String),
    #[error("{0}")]
    Unsupported(String),
}

impl HasKind for DockerfileError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

pub type Result<T> = std::result::Result<T, DockerfileError>;
