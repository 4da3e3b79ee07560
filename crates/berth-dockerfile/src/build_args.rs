//! Build arguments (`--build-arg`): the predefined ones, and the "not consumed" warning.
//!
//! # Contract
//!
//! A build arg is visible to a stage only once the stage declares it with `ARG`, except
//! the [`PROXY_ARGS`]: those reach `RUN` without a declaration, and (unless declared)
//! are left out of the image history and cache key so a proxy setting does not
//! invalidate the cache or leak into the image.
//!
//! After a build, Docker warns about build args that no `ARG` consumed, ignoring the
//! predefined ones: `[Warning] One or more build-args [a b] were not consumed`
//! ([`unused`] and [`unused_warning`]). "Consumed" means declared by an `ARG` that the
//! build reached (in a stage that was built, or before the first FROM); a builder that
//! does not track that can use [`declared`] for the whole file.

use std::collections::BTreeSet;

use crate::words::parse_arg_raw;
use crate::{Dockerfile, Line};

/// The proxy variables usable without `ARG`, in both spellings.
pub const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// Whether `name` is one of the [`PROXY_ARGS`] (case matters, as in Docker).
pub fn is_predefined(name: &str) -> bool {
    PROXY_ARGS.contains(&name) || name == crate::lint::CHECK_BUILD_ARG
}

/// The names every `ARG` in the file declares (before the first FROM and in every
/// stage), as written.
pub fn declared(df: &Dockerfile) -> BTreeSet<String> {
    let stage_lines = df.stages.iter().flat_map(|s| &s.instructions);
    df.args_before_from
        .iter()
        .chain(stage_lines)
        .filter(|l| l.instruction.keyword == "ARG")
        .flat_map(|l: &Line| parse_arg_raw(&l.instruction.shell_text(), df.directives.escape).unwrap_or_default())
        .map(|(name, _)| name)
        .collect()
}

/// The provided build-arg names that were neither consumed nor predefined, sorted.
pub fn unused<'a>(provided: impl IntoIterator<Item = &'a str>, consumed: &BTreeSet<String>) -> Vec<String> {
    let set: BTreeSet<&str> = provided.into_iter().filter(|n| !is_predefined(n) && !consumed.contains(*n)).collect();
    set.into_iter().map(str::to_string).collect()
}

/// Docker's warning line for [`unused`] names, without a trailing newline; `None` if
/// there are none.
pub fn unused_warning(unused: &[String]) -> Option<String> {
    (!unused.is_empty()).then(|| format!("[Warning] One or more build-args [{}] were not consumed", unused.join(" ")))
}
