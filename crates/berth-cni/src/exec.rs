//! Running one plugin: environment, config on stdin, result or error on stdout, a deadline.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::{CniError, Result};

/// One invocation of a plugin.
pub struct Call<'a> {
    pub plugin: &'a str,
    pub network: &'a str,
    pub command: &'static str,
    pub container_id: &'a str,
    pub netns: &'a Path,
    pub ifname: &'a str,
    pub args: &'a str,
    pub bin_dirs: &'a [PathBuf],
    pub timeout: Duration,
}

/// The PATH a plugin gets when the daemon has none (plugins run iptables, ip and the like).
const FALLBACK_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Runs the plugin; its stdout on success.
pub async fn run(call: &Call<'_>, conf: &Value) -> Result<Vec<u8>> {
    let fail = |code: Option<u64>, message: String| CniError::Plugin {
        plugin: call.plugin.to_string(),
        network: call.network.to_string(),
        command: call.command,
        code,
        message,
    };
    let exe = find(call.plugin, call.bin_dirs).ok_or_else(|| {
        let dirs: Vec<String> = call.bin_dirs.iter().map(|d| d.display().to_string()).collect();
        fail(None, format!("no plugin executable {:?} in {}", call.plugin, dirs.join(", ")))
    })?;
    let cni_path = std::env::join_paths(call.bin_dirs).map_err(|e| fail(None, e.to_string()))?;
    let mut cmd = tokio::process::Command::new(&exe);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("CNI_") {
            cmd.env_remove(k);
        }
    }
    if std::env::var_os("PATH").is_none() {
        cmd.env("PATH", FALLBACK_PATH);
    }
    cmd.env("CNI_COMMAND", call.command)
        .env("CNI_CONTAINERID", call.container_id)
        .env("CNI_NETNS", call.netns)
        .env("CNI_IFNAME", call.ifname)
        .env("CNI_ARGS", call.args)
        .env("CNI_PATH", cni_path)
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Past the deadline the future is dropped, and the plugin with it.
        .kill_on_drop(true);
    let stdin = serde_json::to_vec(conf).unwrap_or_default();
    let mut child = cmd.spawn().map_err(|e| fail(None, format!("running {}: {e}", exe.display())))?;
    let mut pipe = child.stdin.take();
    let work = async move {
        if let Some(p) = pipe.as_mut() {
            // A plugin may exit without reading all of it; what it says then is what counts.
            let _ = p.write_all(&stdin).await;
        }
        drop(pipe);
        child.wait_with_output().await
    };
    let out = match tokio::time::timeout(call.timeout, work).await {
        Err(_) => return Err(fail(None, format!("no answer within {} s; killed", call.timeout.as_secs()))),
        Ok(Err(e)) => return Err(fail(None, format!("waiting for {}: {e}", exe.display()))),
        Ok(Ok(out)) => out,
    };
    if out.status.success() {
        return Ok(out.stdout);
    }
    Err(match serde_json::from_slice::<PluginError>(&out.stdout) {
        Ok(e) if !e.msg.is_empty() => {
            let message = if e.details.is_empty() { e.msg } else { format!("{}: {}", e.msg, e.details) };
            fail(e.code, message)
        }
        _ => {
            let said = [out.stdout, out.stderr].map(|b| String::from_utf8_lossy(&b).trim().to_string());
            let said = said.into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join("; ");
            fail(None, format!("{} ({said})", out.status))
        }
    })
}

/// The error object a failing plugin prints.
#[derive(serde::Deserialize)]
struct PluginError {
    #[serde(default)]
    code: Option<u64>,
    #[serde(default)]
    msg: String,
    #[serde(default)]
    details: String,
}

/// The plugin's executable: the first directory that has it.
fn find(plugin: &str, dirs: &[PathBuf]) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    dirs.iter()
        .map(|d| d.join(plugin))
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn plugin(dir: &Path, name: &str, script: &str) {
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn call<'a>(plugin: &'a str, dirs: &'a [PathBuf], timeout: Duration) -> Call<'a> {
        Call {
            plugin,
            network: "net",
            command: "ADD",
            container_id: "c1",
            netns: Path::new("/proc/self/ns/net"),
            ifname: "eth0",
            args: "IgnoreUnknown=1;K8S_POD_NAME=p",
            bin_dirs: dirs,
            timeout,
        }
    }

    #[tokio::test]
    async fn a_plugin_gets_the_protocol_environment_and_its_config_on_stdin() {
        let d = tempfile::tempdir().unwrap();
        let dirs = vec![d.path().join("missing"), d.path().to_path_buf()];
        plugin(
            d.path(),
            "echo",
            r#"printf '{"env":"%s|%s|%s|%s|%s|%s","stdin":%s}' "$CNI_COMMAND" "$CNI_CONTAINERID" "$CNI_NETNS" "$CNI_IFNAME" "$CNI_ARGS" "$CNI_PATH" "$(cat)""#,
        );
        let out = run(&call("echo", &dirs, Duration::from_secs(10)), &serde_json::json!({"a": 1})).await.unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        let path = format!("{}:{}", dirs[0].display(), dirs[1].display());
        assert_eq!(v["env"], format!("ADD|c1|/proc/self/ns/net|eth0|IgnoreUnknown=1;K8S_POD_NAME=p|{path}"));
        assert_eq!(v["stdin"], serde_json::json!({"a": 1}));
    }

    #[tokio::test]
    async fn a_plugins_error_object_is_reported_with_its_code() {
        let d = tempfile::tempdir().unwrap();
        let dirs = vec![d.path().to_path_buf()];
        plugin(
            d.path(),
            "bad",
            r#"echo '{"cniVersion":"1.0.0","code":11,"msg":"busy","details":"try later"}'; exit 1"#,
        );
        let e = run(&call("bad", &dirs, Duration::from_secs(10)), &Value::Null).await.unwrap_err();
        assert!(matches!(e, CniError::Plugin { code: Some(11), .. }), "{e:?}");
        assert_eq!(e.to_string(), r#"plugin type="bad" name="net" failed (ADD): busy: try later"#);
        plugin(d.path(), "crash", "echo oops >&2; exit 3");
        let e = run(&call("crash", &dirs, Duration::from_secs(10)), &Value::Null).await.unwrap_err().to_string();
        assert!(e.contains("exit status: 3") && e.contains("oops"), "{e}");
        let e = run(&call("absent", &dirs, Duration::from_secs(10)), &Value::Null).await.unwrap_err().to_string();
        assert!(e.contains(r#"no plugin executable "absent""#), "{e}");
    }

    #[tokio::test]
    async fn a_plugin_past_its_deadline_is_killed() {
        let d = tempfile::tempdir().unwrap();
        let dirs = vec![d.path().to_path_buf()];
        let pidfile = d.path().join("pid");
        plugin(d.path(), "slow", &format!("echo $$ > {}; exec sleep 100", pidfile.display()));
        let e = run(&call("slow", &dirs, Duration::from_millis(500)), &Value::Null).await.unwrap_err().to_string();
        assert!(e.contains("no answer within"), "{e}");
        let pid = std::fs::read_to_string(&pidfile).unwrap();
        // Killed and reaped: no such process any more, or a zombie about to go.
        let gone = (0..500).any(|_| {
            let st = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
            let done = st.is_empty() || st.contains(") Z");
            if !done {
                std::thread::sleep(Duration::from_millis(10));
            }
            done
        });
        assert!(gone, "the plugin still runs");
    }
}
