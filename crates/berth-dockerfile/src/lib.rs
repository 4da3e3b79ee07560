//! Dockerfile syntax, and the pieces of Docker's build semantics that need no filesystem.
//!
//! The layers, from text to what a builder executes:
//!
//! - [`parser::parse`] turns a whole Dockerfile into a [`Dockerfile`]: parser directives,
//!   the `ARG`s before the first `FROM`, and one [`Stage`] per `FROM`, each a list of
//!   [`Line`]s (an [`Instruction`] with its line number and any [`Heredoc`] bodies). Every
//!   instruction's arguments are checked as Docker checks them, so a file that parses
//!   is one Docker would accept; errors name the line.
//! - [`instruction`] parses one logical line: keyword, `--flags` (checked against what
//!   each instruction accepts, see [`flags`]), and the argument in exec (JSON) or shell
//!   form. [`words`] splits arguments into words and `key=value` pairs.
//! - [`expand`] is the builder's `$VAR` substitution, for the instructions Docker expands.
//! - [`changes`] applies the instructions that only change an image's config; that is
//!   what `docker import -c` / `docker commit -c` accept, and the builder reuses it.
//! - [`run_flags`] reads `RUN --mount` and `RUN --network`.
//! - [`ignore`] is `.dockerignore` matching; [`build_args`] the predefined proxy ARGs and
//!   the "build-args were not consumed" warning.
//! - [`lint`] is the build checks (`docker build --check`, `# check=`), read off the file.
//!
//! Nothing here touches the filesystem or runs anything: the executor (elsewhere)
//! decides what a step does, and this crate tells it what the Dockerfile says.

pub mod build_args;
pub mod changes;
mod directives;
pub mod expand;
pub mod flags;
pub mod heredoc;
pub mod ignore;
pub mod instruction;
pub mod lint;
pub mod parser;
pub mod run_flags;
pub mod suggest;
mod validate;
pub mod words;

pub use directives::{Directives, check_syntax};
pub use heredoc::Heredoc;
pub use ignore::Ignore;
pub use instruction::{Args, Instruction};
pub use parser::{Dockerfile, Line, Stage, parse};

use berth_api::{ErrorKind, HasKind};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DockerfileError {
    #[error("{0}")]
    Syntax(String),
    #[error("{0}")]
    Unsupported(String),
    /// A Dockerfile that does not parse; `line` is 1-based, of the instruction's first
    /// physical line. The text is Docker's, so scripts matching on it keep working.
    #[error("dockerfile parse error on line {line}: {message}")]
    Parse { line: usize, message: String },
}

impl HasKind for DockerfileError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

pub type Result<T> = std::result::Result<T, DockerfileError>;
