//! BuildKit's named contexts (`--build-context NAME=docker-image://REF|dir`), applied to
//! the parsed Dockerfile before it is planned: a stage named NAME is replaced by the image
//! (its own steps do not run), `FROM NAME` starts from it, and `COPY --from=NAME` copies
//! from it. A directory can only be copied from; `FROM` a directory is refused.

use berth_dockerfile::Dockerfile;

use crate::{BuildError, BuildOptions, NamedContext, Result};

/// Rewrites `df` for the named contexts of `opts`.
pub(crate) fn apply(df: &mut Dockerfile, opts: &BuildOptions) -> Result<()> {
    if opts.named_contexts.is_empty() {
        return Ok(());
    }
    let image = |name: &str| -> Result<Option<String>> {
        match opts.named_contexts.get(&name.to_ascii_lowercase()) {
            Some(NamedContext::Image(r)) => Ok(Some(r.clone())),
            Some(NamedContext::Dir(_)) => Err(BuildError::Invalid(format!(
                "build context {name} is a local directory: FROM cannot start from it (COPY --from={name} can copy from it)"
            ))),
            None => Ok(None),
        }
    };
    for stage in &mut df.stages {
        if let Some(r) = stage.name.as_deref().map(image).transpose()?.flatten() {
            stage.base = r;
            stage.instructions.clear();
        } else if let Some(r) = image(&stage.base)? {
            stage.base = r;
        }
        for line in &mut stage.instructions {
            let ins = &mut line.instruction;
            if ins.keyword != "COPY" && ins.keyword != "ADD" {
                continue;
            }
            for (k, v) in ins.flags.iter_mut() {
                if k == "from"
                    && let Some(NamedContext::Image(r)) = opts.named_contexts.get(&v.to_ascii_lowercase())
                {
                    *v = r.clone();
                }
            }
        }
    }
    Ok(())
}
