//! `RUN --mount=…` and `RUN --network=…`: what the flag text says, checked as BuildKit's
//! Dockerfile frontend 1.x checks it. Nothing here touches a file or a mount; the
//! builder decides where each mount's content comes from.
//!
//! # `--mount` syntax
//!
//! Comma-separated `key=value` fields (a field may be quoted, CSV-style); `type` defaults
//! to `bind`. A boolean key may stand alone (`ro`, `required`). Keys, and what each type
//! accepts:
//!
//! | type     | keys                                                                 |
//! |----------|----------------------------------------------------------------------|
//! | `bind`   | target, source, from, rw/readwrite (ro/readonly: the default)         |
//! | `cache`  | target, id (default: target), sharing, from, source, mode, uid, gid, ro |
//! | `tmpfs`  | target, size                                                         |
//! | `secret` | id (default: target's base name), target (default `/run/secrets/<id>`), env, required, mode (0400), uid, gid |
//! | `ssh`    | id (`default`), target (`/run/buildkit/ssh_agent.<n>`), required, mode (0600), uid, gid |
//!
//! `target`, `dst` and `destination` are one key; so are `source` and `src`. A secret
//! with `env=` and no `target` is only an environment variable. Option values may name
//! build args and variables (`id=$SSH_ID`, `target=${DIR}/cache`): [`parse_mounts_with`]
//! expands each value on its own, as BuildKit does; [`parse_mounts`] takes them as written.

use std::fmt;

/// How concurrent builds share one cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// Every user sees the same directory at once.
    Shared,
    /// A user that finds the directory busy gets a fresh one of its own.
    Private,
    /// A user waits until nobody else has the directory.
    Locked,
}

impl fmt::Display for Sharing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Sharing::Shared => "shared",
            Sharing::Private => "private",
            Sharing::Locked => "locked",
        })
    }
}

/// One `--mount` of a RUN step, defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub enum RunMount {
    /// Files from the context, a stage or an image; writes (with `rw`) are discarded.
    Bind { target: String, source: String, from: Option<String>, rw: bool },
    /// A directory kept between builds, identified by `id`.
    Cache {
        target: String,
        id: String,
        sharing: Sharing,
        from: Option<String>,
        source: String,
        mode: u32,
        uid: u32,
        gid: u32,
        ro: bool,
    },
    /// An empty tmpfs; `size` in bytes (0: the kernel's default).
    Tmpfs { target: String, size: u64 },
    /// A secret the client provided: as a file at `target`, and/or in the variable `env`.
    Secret { id: String, target: Option<String>, env: Option<String>, required: bool, mode: u32, uid: u32, gid: u32 },
    /// An SSH agent socket the client forwards.
    Ssh { id: String, target: String, required: bool, mode: u32, uid: u32, gid: u32 },
}

impl RunMount {
    /// The path in the container, if the mount has one (an env-only secret has not).
    pub fn target(&self) -> Option<&str> {
        match self {
            RunMount::Bind { target, .. }
            | RunMount::Cache { target, .. }
            | RunMount::Tmpfs { target, .. }
            | RunMount::Ssh { target, .. } => Some(target),
            RunMount::Secret { target, .. } => target.as_deref(),
        }
    }

    /// The mount as the cache key and messages see it: every setting, never content.
    pub fn describe(&self) -> String {
        match self {
            RunMount::Bind { target, source, from, rw } => {
                format!("type=bind,target={target},source={source},from={},rw={rw}", from.as_deref().unwrap_or(""))
            }
            RunMount::Cache { target, id, sharing, from, source, mode, uid, gid, ro } => format!(
                "type=cache,target={target},id={id},sharing={sharing},from={},source={source},mode={mode:o},uid={uid},gid={gid},ro={ro}",
                from.as_deref().unwrap_or("")
            ),
            RunMount::Tmpfs { target, size } => format!("type=tmpfs,target={target},size={size}"),
            RunMount::Secret { id, target, env, required, mode, uid, gid } => format!(
                "type=secret,id={id},target={},env={},required={required},mode={mode:o},uid={uid},gid={gid}",
                target.as_deref().unwrap_or(""),
                env.as_deref().unwrap_or("")
            ),
            RunMount::Ssh { id, target, required, mode, uid, gid } => {
                format!("type=ssh,id={id},target={target},required={required},mode={mode:o},uid={uid},gid={gid}")
            }
        }
    }
}

/// `RUN --network=…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunNetwork {
    /// The build's network (`--network` of the build, a bridge by default).
    Default,
    /// No network: loopback only.
    None,
    /// The host's network stack.
    Host,
}

/// Parses `--network`'s value.
pub fn parse_network(v: &str) -> Result<RunNetwork, String> {
    match v {
        "default" => Ok(RunNetwork::Default),
        "none" => Ok(RunNetwork::None),
        "host" => Ok(RunNetwork::Host),
        other => Err(format!("unsupported network mode: {other:?} (use default, none or host)")),
    }
}

/// Splits `a=b,"c=d,e",f` into fields, CSV-style: a field that starts with `"` runs to
/// the closing quote, and `""` inside it is one quote.
fn fields(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            '"' if quoted => quoted = false,
            '"' if at_start => quoted = true,
            ',' if !quoted => {
                out.push(std::mem::take(&mut cur));
                at_start = true;
                continue;
            }
            c => cur.push(c),
        }
        at_start = false;
    }
    if quoted {
        return Err(format!("failed to parse csv mounts: unterminated quote in {s:?}"));
    }
    out.push(cur);
    Ok(out)
}

fn parse_bool(key: &str, v: Option<&str>) -> Result<bool, String> {
    match v.map(str::to_ascii_lowercase).as_deref() {
        None | Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(other) => Err(format!("invalid value for {key}: {other}")),
    }
}

fn parse_u32(key: &str, v: &str, radix: u32) -> Result<u32, String> {
    u32::from_str_radix(v, radix).map_err(|_| format!("invalid value for {key}: {v}"))
}

/// Expands variables in one `--mount` option value.
pub type Expander<'a> = &'a dyn Fn(&str) -> Result<String, String>;

/// Parses one `--mount` value as written (no variable expanded). `ssh_index` is the
/// mount's position among the step's SSH mounts, for their default target.
pub fn parse_mount(value: &str, ssh_index: usize) -> Result<RunMount, String> {
    parse_mount_with(value, ssh_index, None)
}

/// Parses one `--mount` value, expanding build args and variables in each option's value
/// with `expand`, as BuildKit's frontend does: value by value, after the text is split into
/// fields, so a value that expands to `a,b` stays one value. Keys and bare flags are not
/// expanded.
pub fn parse_mount_with(value: &str, ssh_index: usize, expand: Option<Expander>) -> Result<RunMount, String> {
    let mut kind = "bind".to_string();
    let (mut target, mut source, mut from, mut id, mut env) = (None, None, None, None, None);
    let (mut ro, mut rw, mut required) = (None, None, false);
    let (mut sharing, mut mode, mut uid, mut gid, mut size) = (None, None, None, None, None);
    for field in fields(value)? {
        let field = field.trim();
        if field.is_empty() {
            continue;
        }
        let (key, val) = match field.split_once('=') {
            Some((k, v)) => {
                let v = v.trim();
                let v = match expand {
                    Some(x) => x(v)?,
                    None => v.to_string(),
                };
                (k.trim().to_ascii_lowercase(), Some(v))
            }
            None => (field.to_ascii_lowercase(), None),
        };
        let need =
            |v: &Option<String>| v.clone().ok_or_else(|| format!("invalid field '{field}' must be a key=value pair"));
        match key.as_str() {
            "type" => kind = need(&val)?.to_ascii_lowercase(),
            "target" | "dst" | "destination" => target = Some(need(&val)?),
            "source" | "src" => source = Some(need(&val)?),
            "from" => from = Some(need(&val)?),
            "id" => id = Some(need(&val)?),
            "env" => env = Some(need(&val)?),
            "ro" | "readonly" => ro = Some(parse_bool(&key, val.as_deref())?),
            "rw" | "readwrite" => rw = Some(parse_bool(&key, val.as_deref())?),
            "required" => required = parse_bool(&key, val.as_deref())?,
            "sharing" => {
                sharing = Some(match need(&val)?.to_ascii_lowercase().as_str() {
                    "shared" => Sharing::Shared,
                    "private" => Sharing::Private,
                    "locked" => Sharing::Locked,
                    other => return Err(format!("unsupported sharing value \"{other}\"")),
                })
            }
            "mode" => mode = Some(parse_u32(&key, &need(&val)?, 8)?),
            "uid" => uid = Some(parse_u32(&key, &need(&val)?, 10)?),
            "gid" => gid = Some(parse_u32(&key, &need(&val)?, 10)?),
            "size" => size = Some(parse_size(&need(&val)?)?),
            // SELinux relabeling: nothing to do without SELinux.
            "relabel" => {}
            _ => return Err(format!("unexpected key '{key}' in '{field}'")),
        }
    }
    let writable = match (ro, rw) {
        (Some(r), _) => !r,
        (None, Some(w)) => w,
        (None, None) => kind != "bind",
    };
    let only = |allowed: &[&str]| -> Result<(), String> {
        let given = [
            ("source", source.is_some()),
            ("from", from.is_some()),
            ("id", id.is_some()),
            ("env", env.is_some()),
            ("sharing", sharing.is_some()),
            ("mode", mode.is_some()),
            ("uid", uid.is_some()),
            ("gid", gid.is_some()),
            ("size", size.is_some()),
            ("required", required),
        ];
        match given.iter().find(|(k, set)| *set && !allowed.contains(k)) {
            Some((k, _)) => Err(format!("{k} is not supported for {kind} mounts")),
            None => Ok(()),
        }
    };
    let abs = |t: String| -> Result<String, String> {
        Ok(if t.starts_with('/') { crate::changes::clean_abs(&t) } else { crate::changes::clean_abs(&format!("/{t}")) })
    };
    let need_target = || target.clone().ok_or_else(|| format!("mount type {kind} requires a target"));
    Ok(match kind.as_str() {
        "bind" => {
            only(&["source", "from"])?;
            RunMount::Bind { target: abs(need_target()?)?, source: source.unwrap_or_default(), from, rw: writable }
        }
        "cache" => {
            only(&["source", "from", "id", "sharing", "mode", "uid", "gid"])?;
            let target = abs(need_target()?)?;
            RunMount::Cache {
                id: id.filter(|i| !i.is_empty()).unwrap_or_else(|| target.clone()),
                target,
                sharing: sharing.unwrap_or(Sharing::Shared),
                from,
                source: source.unwrap_or_default(),
                mode: mode.unwrap_or(0o755),
                uid: uid.unwrap_or(0),
                gid: gid.unwrap_or(0),
                ro: !writable,
            }
        }
        "tmpfs" => {
            only(&["size"])?;
            RunMount::Tmpfs { target: abs(need_target()?)?, size: size.unwrap_or(0) }
        }
        "secret" => {
            only(&["id", "env", "required", "mode", "uid", "gid"])?;
            let id = match (id.filter(|i| !i.is_empty()), &target) {
                (Some(i), _) => i,
                (None, Some(t)) => t.trim_end_matches('/').rsplit('/').next().unwrap_or_default().to_string(),
                (None, None) => return Err("one of source, target required".into()),
            };
            if id.is_empty() {
                return Err("secret ID must not be empty".into());
            }
            let target = match (target, &env) {
                (Some(t), _) => Some(abs(t)?),
                (None, Some(_)) => None,
                (None, None) => Some(format!("/run/secrets/{id}")),
            };
            RunMount::Secret {
                id,
                target,
                env,
                required,
                mode: mode.unwrap_or(0o400),
                uid: uid.unwrap_or(0),
                gid: gid.unwrap_or(0),
            }
        }
        "ssh" => {
            only(&["id", "required", "mode", "uid", "gid"])?;
            RunMount::Ssh {
                id: id.filter(|i| !i.is_empty()).unwrap_or_else(|| "default".into()),
                target: match target {
                    Some(t) => abs(t)?,
                    None => format!("/run/buildkit/ssh_agent.{ssh_index}"),
                },
                required,
                mode: mode.unwrap_or(0o600),
                uid: uid.unwrap_or(0),
                gid: gid.unwrap_or(0),
            }
        }
        other => return Err(format!("unsupported mount type \"{other}\"")),
    })
}

/// A tmpfs size: bytes, or with a unit (`64m`, `1g`, `512k`, `10mb`), as `--memory` takes it.
fn parse_size(v: &str) -> Result<u64, String> {
    berth_api::units::parse_ram_bytes(v).map(|n| n as u64).map_err(|_| format!("invalid size: {v}"))
}

/// Every `--mount` of a RUN, in order, as written (no variable expanded).
pub fn parse_mounts<'a>(values: impl IntoIterator<Item = &'a str>) -> Result<Vec<RunMount>, String> {
    parse_mounts_with(values, None)
}

/// Every `--mount` of a RUN, in order, each option value expanded with `expand` (see
/// [`parse_mount_with`]).
pub fn parse_mounts_with<'a>(
    values: impl IntoIterator<Item = &'a str>,
    expand: Option<Expander>,
) -> Result<Vec<RunMount>, String> {
    let mut ssh = 0;
    let mut out = Vec::new();
    for v in values {
        let m = parse_mount_with(v, ssh, expand)?;
        if matches!(m, RunMount::Ssh { .. }) {
            ssh += 1;
        }
        if let Some(t) = m.target()
            && out.iter().any(|o: &RunMount| o.target() == Some(t))
        {
            return Err(format!("duplicate mount target {t}"));
        }
        out.push(m);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> RunMount {
        parse_mount(s, 0).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn err(s: &str) -> String {
        parse_mount(s, 0).unwrap_err()
    }

    #[test]
    fn cache_defaults_and_options() {
        assert_eq!(
            m("type=cache,target=/root/.cache"),
            RunMount::Cache {
                target: "/root/.cache".into(),
                id: "/root/.cache".into(),
                sharing: Sharing::Shared,
                from: None,
                source: String::new(),
                mode: 0o755,
                uid: 0,
                gid: 0,
                ro: false,
            }
        );
        let RunMount::Cache { id, sharing, mode, uid, gid, ro, .. } =
            m("type=cache,id=go,dst=/go,sharing=locked,mode=0700,uid=1000,gid=100,ro")
        else {
            panic!()
        };
        assert_eq!((id.as_str(), sharing, mode, uid, gid, ro), ("go", Sharing::Locked, 0o700, 1000, 100, true));
        assert!(err("type=cache,target=/c,sharing=maybe").contains("unsupported sharing value"));
        assert!(err("type=cache").contains("requires a target"));
        assert!(err("type=cache,target=/c,size=1").contains("size is not supported for cache mounts"));
    }

    #[test]
    fn bind_is_the_default_type_and_read_only() {
        assert_eq!(
            m("target=/src"),
            RunMount::Bind { target: "/src".into(), source: String::new(), from: None, rw: false }
        );
        assert_eq!(
            m("type=bind,source=a,target=b,from=build,rw"),
            RunMount::Bind { target: "/b".into(), source: "a".into(), from: Some("build".into()), rw: true }
        );
        assert!(err("type=bind,target=/x,id=1").contains("id is not supported for bind mounts"));
    }

    #[test]
    fn secrets_and_ssh() {
        assert_eq!(
            m("type=secret,id=tok"),
            RunMount::Secret {
                id: "tok".into(),
                target: Some("/run/secrets/tok".into()),
                env: None,
                required: false,
                mode: 0o400,
                uid: 0,
                gid: 0,
            }
        );
        let RunMount::Secret { id, target, env, required, .. } = m("type=secret,id=tok,env=TOKEN,required") else {
            panic!()
        };
        assert_eq!((id.as_str(), target, env.as_deref(), required), ("tok", None, Some("TOKEN"), true));
        let RunMount::Secret { id, .. } = m("type=secret,target=/etc/key.pem") else { panic!() };
        assert_eq!(id, "key.pem");
        assert!(err("type=secret,id=a,from=x").contains("from is not supported for secret mounts"));
        assert_eq!(
            parse_mounts(["type=ssh", "type=ssh,id=gh,required=true"]).unwrap()[1],
            RunMount::Ssh {
                id: "gh".into(),
                target: "/run/buildkit/ssh_agent.1".into(),
                required: true,
                mode: 0o600,
                uid: 0,
                gid: 0,
            }
        );
    }

    #[test]
    fn option_values_are_expanded_one_by_one() {
        let vars = |v: &str| -> Result<String, String> {
            Ok(v.replace("${SSH_ID}", "gh").replace("$SSH_ID", "gh").replace("$LIST", "a,b").replace("$U", "1000"))
        };
        let got =
            parse_mounts_with(["type=ssh,id=$SSH_ID,uid=$U", "type=secret,id=${SSH_ID},target=/s/$LIST"], Some(&vars))
                .unwrap();
        let RunMount::Ssh { id, uid, .. } = &got[0] else { panic!("{got:?}") };
        assert_eq!((id.as_str(), *uid), ("gh", 1000));
        // A value that expands to a comma stays one value.
        let RunMount::Secret { id, target, .. } = &got[1] else { panic!("{got:?}") };
        assert_eq!((id.as_str(), target.as_deref()), ("gh", Some("/s/a,b")));
        // Unexpanded, the text stays as written.
        let RunMount::Ssh { id, .. } = m("type=ssh,id=$SSH_ID") else { panic!() };
        assert_eq!(id, "$SSH_ID");
    }

    #[test]
    fn tmpfs_sizes_quotes_and_errors() {
        assert_eq!(m("type=tmpfs,target=/t,size=64m"), RunMount::Tmpfs { target: "/t".into(), size: 64 << 20 });
        assert_eq!(m("type=tmpfs,target=/t,size=4096"), RunMount::Tmpfs { target: "/t".into(), size: 4096 });
        assert_eq!(m("type=tmpfs,target=/t,size=1.5k"), RunMount::Tmpfs { target: "/t".into(), size: 1536 });
        // No unbounded or absurd sizes sneak in through float parsing.
        for bad in ["inf", "nan", "1e15", "-1", "99999999999999999999g", ""] {
            assert!(err(&format!("type=tmpfs,target=/t,size={bad}")).contains("invalid size"), "{bad}");
        }
        assert_eq!(
            m(r#"type=bind,"source=a,b",target=/x"#),
            RunMount::Bind { target: "/x".into(), source: "a,b".into(), from: None, rw: false }
        );
        assert!(err("type=nfs,target=/x").contains("unsupported mount type \"nfs\""));
        assert!(err("type=cache,target=/x,bogus=1").contains("unexpected key 'bogus'"));
        assert!(parse_mounts(["type=tmpfs,target=/a", "type=cache,target=/a/"]).unwrap_err().contains("duplicate"));
        assert_eq!(parse_network("none"), Ok(RunNetwork::None));
        assert!(parse_network("bridge").is_err());
    }
}
