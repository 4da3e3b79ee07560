//! Which stages a build runs, in what order, and how many steps that is.
//!
//! The target stage (`--target`, else the last) needs its base if that is an earlier
//! stage, and every stage a `COPY --from` of it names (by `AS` name or index);
//! those need theirs, and so on. Every other stage is skipped. A stage starts as soon as
//! the stages it needs ([`Plan::deps`]) are done, so independent stages build in parallel;
//! their output is still shown in file order, a stage's after the one before it.
//!
//! `FROM` lines see only the ARGs declared before the first `FROM` ([`Plan::meta_args`]),
//! with `--build-arg` values replacing their defaults, and the automatic platform ARGs
//! ([`crate::platform::args`]), which a bare `ARG TARGETARCH` brings into a stage.
//! A stage also needs the stages its `RUN --mount=…,from=` name. A `from` with a variable
//! in it is known only when its step runs, so a stage with one needs every earlier stage.
//! As in BuildKit, a `--from` may name a stage later in the file; a ring of stages that need
//! each other is refused.

use std::collections::{BTreeMap, BTreeSet};

use berth_dockerfile::Dockerfile;
use berth_dockerfile::expand::expand;
use berth_dockerfile::run_flags::{RunMount, parse_mounts};
use berth_dockerfile::words::parse_arg_raw;

use crate::{BuildError, Result};

/// What a stage starts from.
#[derive(Debug, Clone, PartialEq)]
pub enum Base {
    Scratch,
    /// An earlier stage, by index.
    Stage(usize),
    /// An image reference, as expanded.
    Image(String),
}

/// Where a `COPY --from` takes its files.
#[derive(Debug, Clone, PartialEq)]
pub enum FromSource {
    Stage(usize),
    Image(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The pre-FROM ARGs with their effective values (`None`: declared, no value).
    pub meta_args: BTreeMap<String, Option<String>>,
    /// Every stage's base, expanded (indexed like the Dockerfile's stages).
    pub bases: Vec<Base>,
    /// The stages to run, ascending.
    pub stages: Vec<usize>,
    /// Each stage to run: the stages it needs finished first (its base, `COPY --from`).
    pub deps: BTreeMap<usize, BTreeSet<usize>>,
    pub target: usize,
    /// Steps shown as `Step N/M`: pre-FROM ARGs, then each run stage's FROM and
    /// instructions, plus the `--label` step if any.
    pub total_steps: usize,
}

/// Resolves `--from` of a COPY (or of a RUN mount) in stage `current`, as BuildKit does: a
/// stage's name, earlier or later in the file (the stages it needs run first, whatever
/// their order); a stage's index; else an image reference, pulled if missing (see
/// [`not_a_stage`] for the error when that fails). A stage cannot take files from itself.
pub fn from_source(df: &Dockerfile, current: usize, from: &str) -> Result<FromSource> {
    let lower = from.to_ascii_lowercase();
    let named = |s: &berth_dockerfile::Stage| s.name.as_deref() == Some(lower.as_str());
    // An earlier stage wins over a later one of the same name.
    let by_name = df.stages[..current]
        .iter()
        .position(named)
        .or_else(|| df.stages[current..].iter().position(named).map(|i| i + current));
    let stage = match (by_name, from.parse::<usize>()) {
        (Some(i), _) => i,
        (None, Ok(i)) if i >= df.stages.len() => {
            return Err(BuildError::Invalid(format!(
                "invalid stage index {i}: the Dockerfile has {} stages",
                df.stages.len()
            )));
        }
        (None, Ok(i)) => i,
        (None, Err(_)) => {
            berth_image::Reference::parse(from).map_err(|e| {
                BuildError::Invalid(format!(
                    "failed to parse stage name {from:?}: no stage has that name, and it is not an image reference: {e}"
                ))
            })?;
            return Ok(FromSource::Image(from.to_string()));
        }
    };
    if stage == current {
        return Err(circular(df, stage));
    }
    Ok(FromSource::Stage(stage))
}

fn stage_label(df: &Dockerfile, s: usize) -> String {
    df.stages[s].name.clone().unwrap_or_else(|| s.to_string())
}

fn circular(df: &Dockerfile, s: usize) -> BuildError {
    BuildError::Invalid(format!("circular dependency detected on stage: {}", stage_label(df, s)))
}

/// The error for a `--from` that names no stage and could not be had as an image: it says
/// both, with the stage name the value is likely a typo of (as BuildKit suggests one: fewer
/// than 3 edits away).
pub fn not_a_stage(df: &Dockerfile, from: &str, image_error: &BuildError) -> BuildError {
    let close = berth_dockerfile::suggest::closest(from, df.stages.iter().filter_map(|s| s.name.as_deref()))
        .map(|n| format!(" (did you mean {n}?)"))
        .unwrap_or_default();
    BuildError::Invalid(format!(
        "invalid from flag value {from}: {image_error}; and no build stage is named {from:?}{close}"
    ))
}

/// The first stage found on a dependency cycle among `deps`, if any. A depth-first walk
/// with its own stack, not recursion: a Dockerfile's chain of stages is as long as its
/// author makes it, and a deep one must not overflow the worker's stack.
fn find_cycle(deps: &BTreeMap<usize, BTreeSet<usize>>) -> Option<usize> {
    // Absent: unvisited; 1: on the current path; 2: done.
    let mut mark: BTreeMap<usize, u8> = BTreeMap::new();
    // Each stage's dependencies still to visit, last one first (so they are taken in order).
    let pending = |s: usize| -> Vec<usize> { deps.get(&s).into_iter().flatten().rev().copied().collect() };
    for &start in deps.keys() {
        if mark.contains_key(&start) {
            continue;
        }
        mark.insert(start, 1);
        let mut path = vec![(start, pending(start))];
        while let Some((s, next)) = path.last_mut() {
            match next.pop() {
                Some(d) => match mark.get(&d) {
                    Some(1) => return Some(d),
                    Some(_) => {}
                    None => {
                        mark.insert(d, 1);
                        path.push((d, pending(d)));
                    }
                },
                None => {
                    mark.insert(*s, 2);
                    path.pop();
                }
            }
        }
    }
    None
}

impl Plan {
    pub fn new(
        df: &Dockerfile,
        target: Option<&str>,
        build_args: &BTreeMap<String, Option<String>>,
        extra_steps: usize,
    ) -> Result<Plan> {
        let escape = df.directives.escape;
        let automatic = crate::platform::args();
        let mut meta_args: BTreeMap<String, Option<String>> =
            automatic.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect();
        for line in &df.args_before_from {
            for (name, default) in parse_arg_raw(&line.instruction.shell_text(), escape)? {
                let env = |k: &str| meta_args.get(k).cloned().flatten();
                let default = default.map(|d| expand(&d, &env, escape)).transpose()?;
                let value =
                    build_args.get(&name).cloned().flatten().or(default).or_else(|| automatic.get(&name).cloned());
                meta_args.insert(name, value);
            }
        }
        let env = |k: &str| meta_args.get(k).cloned().flatten();
        let mut bases = Vec::new();
        for (i, stage) in df.stages.iter().enumerate() {
            let base = expand(&stage.base, &env, escape)?;
            if base.is_empty() {
                return Err(BuildError::Invalid(format!("base name ({}) should not be blank", stage.base)));
            }
            let lower = base.to_ascii_lowercase();
            let b = if lower == "scratch" {
                Base::Scratch
            } else if let Some(j) = df.stages[..i].iter().position(|s| s.name.as_deref() == Some(lower.as_str())) {
                Base::Stage(j)
            } else {
                Base::Image(base)
            };
            bases.push(b);
        }
        let target = match target.filter(|t| !t.is_empty()) {
            None => df.stages.len() - 1,
            Some(t) => {
                let lower = t.to_ascii_lowercase();
                df.stages
                    .iter()
                    .position(|s| s.name.as_deref() == Some(lower.as_str()))
                    .ok_or_else(|| BuildError::Invalid(format!("failed to reach build target {t} in Dockerfile")))?
            }
        };
        let mut deps: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
        let mut todo = vec![target];
        while let Some(s) = todo.pop() {
            if deps.contains_key(&s) {
                continue;
            }
            let mut mine = BTreeSet::new();
            if let Base::Stage(j) = bases[s] {
                mine.insert(j);
            }
            for line in &df.stages[s].instructions {
                let ins = &line.instruction;
                let mut froms: Vec<String> = Vec::new();
                if ins.keyword == "COPY"
                    && let Some(from) = ins.flag("from")
                {
                    froms.push(from.to_string());
                }
                if ins.keyword == "RUN" {
                    // Unexpanded: a mount the executor later refuses names no stage here.
                    let mounts = parse_mounts(ins.flag_values("mount")).unwrap_or_default();
                    froms.extend(mounts.into_iter().filter_map(|m| match m {
                        RunMount::Bind { from, .. } | RunMount::Cache { from, .. } => from,
                        _ => None,
                    }));
                }
                for from in froms {
                    if from.contains('$') {
                        // Expanded only when the step runs, with what the stage has then
                        // (its ARGs and ENV, its base image's ENV): it may name any earlier
                        // stage, so all of them are built first.
                        mine.extend(0..s);
                        continue;
                    }
                    if let FromSource::Stage(j) = from_source(df, s, &from)? {
                        mine.insert(j);
                    }
                }
            }
            todo.extend(mine.iter().copied());
            deps.insert(s, mine);
        }
        // A `--from` may name a later stage, so the stages may wait on each other in a ring.
        if let Some(s) = find_cycle(&deps) {
            return Err(circular(df, s));
        }
        let stages: Vec<usize> = deps.keys().copied().collect();
        let total_steps = df.args_before_from.len()
            + stages.iter().map(|&s| 1 + df.stages[s].instructions.len()).sum::<usize>()
            + extra_steps;
        Ok(Plan { meta_args, bases, stages, deps, target, total_steps })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(text: &str, target: Option<&str>) -> Result<Plan> {
        Plan::new(&berth_dockerfile::parse(text).unwrap(), target, &BTreeMap::new(), 0)
    }

    const MULTI: &str = "FROM busybox AS base\nRUN a\nFROM base AS build\nRUN b\nFROM busybox AS unused\nRUN c\nFROM scratch\nCOPY --from=build /x /x\nCOPY --from=0 /y /y\n";

    #[test]
    fn unneeded_stages_are_skipped() {
        let p = plan(MULTI, None).unwrap();
        assert_eq!(p.stages, vec![0, 1, 3]);
        assert_eq!(p.target, 3);
        assert_eq!(
            p.bases,
            vec![Base::Image("busybox".into()), Base::Stage(0), Base::Image("busybox".into()), Base::Scratch]
        );
        assert_eq!(p.total_steps, 2 + 2 + 3);
        assert_eq!(p.deps[&0], BTreeSet::new());
        assert_eq!(p.deps[&1], BTreeSet::from([0]));
        assert_eq!(p.deps[&3], BTreeSet::from([0, 1]));
    }

    #[test]
    fn target_stops_early() {
        let p = plan(MULTI, Some("BUILD")).unwrap();
        assert_eq!(p.stages, vec![0, 1]);
        assert_eq!(p.target, 1);
        assert_eq!(p.total_steps, 4);
        let p = plan(MULTI, Some("unused")).unwrap();
        assert_eq!(p.stages, vec![2]);
        assert!(plan(MULTI, Some("nope")).unwrap_err().to_string().contains("failed to reach build target nope"));
    }

    #[test]
    fn args_before_from_expand_bases() {
        let df = berth_dockerfile::parse("ARG IMG=busybox\nARG TAG\nFROM ${IMG}:${TAG:-latest}\n").unwrap();
        let p = Plan::new(&df, None, &BTreeMap::new(), 1).unwrap();
        assert_eq!(p.bases, vec![Base::Image("busybox:latest".into())]);
        assert_eq!(p.total_steps, 4, "two ARGs, FROM, and the extra label step");
        let mut args = BTreeMap::new();
        args.insert("TAG".to_string(), Some("1.36".to_string()));
        let p = Plan::new(&df, None, &args, 0).unwrap();
        assert_eq!(p.bases, vec![Base::Image("busybox:1.36".into())]);
    }

    #[test]
    fn run_mounts_need_their_stages_and_platform_args_are_automatic() {
        let text = "FROM busybox AS a\nFROM busybox AS b\nFROM busybox AS c\nFROM --platform=$BUILDPLATFORM busybox\nRUN --mount=type=bind,from=a,target=/a --mount=type=cache,target=/c,from=b true\n";
        let p = plan(text, None).unwrap();
        assert_eq!(p.stages, vec![0, 1, 3], "c is not needed");
        // A from= with a variable may name any earlier stage: all are built first.
        let text = "FROM busybox AS a\nFROM busybox AS b\nFROM busybox\nRUN --mount=from=${S},target=/s true\n";
        let p = plan(text, None).unwrap();
        assert_eq!((p.stages.clone(), p.deps[&2].clone()), (vec![0, 1, 2], BTreeSet::from([0, 1])));
        assert_eq!(p.meta_args["TARGETPLATFORM"], Some(crate::platform::host().to_string()));
        let df = berth_dockerfile::parse("ARG TARGETARCH\nARG BUILDOS=custom\nFROM busybox\n").unwrap();
        let p = Plan::new(&df, None, &BTreeMap::new(), 0).unwrap();
        assert_eq!(p.meta_args["TARGETARCH"], Some(crate::platform::host().arch));
        assert_eq!(p.meta_args["BUILDOS"].as_deref(), Some("custom"));
    }

    #[test]
    fn from_sources() {
        let df = berth_dockerfile::parse(MULTI).unwrap();
        assert_eq!(from_source(&df, 3, "build").unwrap(), FromSource::Stage(1));
        assert_eq!(from_source(&df, 3, "2").unwrap(), FromSource::Stage(2));
        assert_eq!(from_source(&df, 3, "busybox:1").unwrap(), FromSource::Image("busybox:1".into()));
        assert!(from_source(&df, 1, "1").unwrap_err().to_string().contains("circular dependency"));
    }

    #[test]
    fn a_from_may_name_a_later_stage_but_not_a_ring_or_a_bad_name() {
        let text = "FROM busybox AS first\nCOPY --from=later /x /x\nFROM busybox AS later\nRUN true\n";
        let p = plan(text, Some("first")).unwrap();
        assert_eq!((p.stages.clone(), p.deps[&0].clone()), (vec![0, 1], BTreeSet::from([1])));
        let df = berth_dockerfile::parse(text).unwrap();
        assert_eq!(from_source(&df, 0, "1").unwrap(), FromSource::Stage(1));
        assert!(from_source(&df, 0, "2").unwrap_err().to_string().contains("invalid stage index 2"));
        assert!(
            from_source(&df, 0, "first")
                .unwrap_err()
                .to_string()
                .contains("circular dependency detected on stage: first")
        );
        let ring = "FROM busybox AS a\nCOPY --from=b /x /x\nFROM busybox AS b\nCOPY --from=a /y /y\n";
        assert!(plan(ring, None).unwrap_err().to_string().contains("circular dependency detected on stage"));
        let bad = from_source(&df, 0, "Bad:Name:x").unwrap_err().to_string();
        assert!(bad.contains("failed to parse stage name \"Bad:Name:x\""), "{bad}");
        let e = not_a_stage(&df, "latr", &BuildError::Invalid("pull access denied".into())).to_string();
        assert_eq!(
            e,
            "invalid from flag value latr: pull access denied; and no build stage is named \"latr\" (did you mean later?)"
        );
        assert_eq!(berth_dockerfile::suggest::edit_distance("kitten", "sitting"), 3);
    }

    /// A chain of stages as long as a Dockerfile makes it is walked without recursion (the
    /// cycle search once recursed once per stage; on a worker's stack a long enough chain
    /// overflowed it, which aborts the daemon). Planned here on a 256 KiB stack, which the
    /// recursive walk of 10,000 stages overran.
    #[test]
    fn a_very_long_chain_of_stages_is_planned() {
        let mut text = String::from("FROM busybox AS s0\n");
        for i in 1..10_000 {
            text.push_str(&format!("FROM s{} AS s{i}\n", i - 1));
        }
        let stages = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(move || plan(&text, None).map(|p| p.stages.len()))
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(stages.unwrap(), 10_000);
    }
}
