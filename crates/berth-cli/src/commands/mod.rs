//! The commands, grouped as `docker` groups them.

pub mod build;
mod build_progress;
pub mod container;
pub mod distribution;
pub mod image;
pub mod inspect;
pub mod network;
pub mod resources;
pub mod run;
pub mod system;
pub mod volume;

use anyhow::Result;

/// The outcome of a command: an exit code (errors are printed by the caller).
pub type Exit = Result<i32>;

/// Runs `f` for each name, printing errors like docker does (`Error response from daemon:
/// …`) and returning 1 if any failed.
pub fn for_each(names: &[String], mut f: impl FnMut(&str) -> Result<()>) -> Exit {
    let mut failed = false;
    for n in names {
        if let Err(e) = f(n) {
            eprintln!("{e}");
            failed = true;
        }
    }
    Ok(if failed { 1 } else { 0 })
}

pub fn now_secs() -> i64 {
    (berth_api::time::now_nanos() / 1_000_000_000) as i64
}

/// `5 seconds ago`.
pub fn ago(unix: i64) -> String {
    let d = (now_secs() - unix).max(0) as u64;
    format!("{} ago", berth_api::time::human_duration(std::time::Duration::from_secs(d)))
}
