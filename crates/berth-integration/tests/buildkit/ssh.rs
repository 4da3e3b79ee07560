//! `--ssh` through buildx's session: a `RUN --mount=type=ssh` step reaches the agent the
//! client forwards (a real `ssh-agent` holding a key made for the test), and nothing else
//! does.

use std::path::Path;
use std::process::Command;

use berth_integration::Daemon;

use super::{docker, files};

/// An `ssh-agent` on a socket in the test's directory, holding one new key whose comment
/// is `comment`; killed when dropped.
struct Agent {
    pid: i32,
    socket: String,
}

impl Agent {
    fn start(dir: &Path, comment: &str) -> Agent {
        let key = dir.join("id_ed25519");
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
            .arg(&key)
            .output()
            .expect("ssh-keygen (openssh-client)");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let socket = dir.join("agent.sock").display().to_string();
        // ssh-agent listens, then forks; the parent prints the child's PID and exits.
        let out = Command::new("ssh-agent").args(["-s", "-a", &socket]).output().expect("ssh-agent (openssh-client)");
        let text = String::from_utf8_lossy(&out.stdout);
        let pid = text
            .split(';')
            .find_map(|w| w.trim().strip_prefix("SSH_AGENT_PID="))
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no agent PID in {text:?}"));
        let agent = Agent { pid, socket };
        let out = Command::new("ssh-add").arg(&key).env("SSH_AUTH_SOCK", &agent.socket).output().unwrap();
        assert!(out.status.success(), "ssh-add: {}", String::from_utf8_lossy(&out.stderr));
        agent
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.pid.to_string()).status();
    }
}

/// The agent lister (probes/agent_list.c), built static into `dir`.
fn agent_list(dir: &Path) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/buildkit/probes/agent_list.c");
    let out = Command::new("gcc")
        .args(["-static", "-O2", "-Wall", "-o"])
        .arg(dir.join("agent_list"))
        .arg(&src)
        .output()
        .expect("gcc");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_ssh_mount_reaches_the_forwarded_agent_and_only_that_step_does() {
    let d = Daemon::with_busybox();
    let comment = berth_integration::unique("berth-test-key-");
    let df = "FROM busybox\nCOPY agent_list /agent_list\n\
              RUN --mount=type=ssh /agent_list > /keys\n\
              RUN /agent_list > /after 2>&1; echo $? >> /after\n";
    let ctx = files(&d, &[("Dockerfile", df)]);
    agent_list(&ctx);
    let agent = Agent::start(d.dir.path(), &comment);
    let tag = berth_integration::unique("bxssh");
    let ssh = format!("default={}", agent.socket);
    docker(&d, &ctx, &["buildx", "build", "--load", "--network", "none", "--ssh", &ssh, "-t", &tag, "."]).ok();
    let keys = d.docker(&["run", "--rm", "--network", "none", &tag, "cat", "/keys", "/after"]).ok();
    // The mounted step listed the key; the next one found no agent (exit 2, no socket).
    assert_eq!(keys, format!("{comment}\nSSH_AUTH_SOCK is not set\n2\n"));
    let history = d.docker(&["history", "--no-trunc", &tag]).ok();
    assert!(!history.contains(&agent.socket), "{history}");
    d.docker(&["rmi", &tag]).ok();
}

#[test]
fn a_required_ssh_mount_without_a_forwarded_agent_fails_the_build() {
    let d = Daemon::with_busybox();
    let df = "FROM busybox\nRUN --mount=type=ssh,required=true echo never\n";
    let ctx = files(&d, &[("Dockerfile", df)]);
    let tag = berth_integration::unique("bxnossh");
    let out = docker(&d, &ctx, &["buildx", "build", "--load", "--network", "none", "-t", &tag, "."]);
    assert_ne!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("SSH agent") && out.stderr.contains("\"default\""), "{}", out.stderr);
    assert!(d.docker(&["image", "inspect", &tag]).code != 0);
}

/// `uid`, `gid` and `mode` of an SSH mount make the step's socket, as in BuildKit (0, 0,
/// 0600 by default): a step running as user 1000 reaches the agent through a mount with
/// `uid=1000` or `mode=0666`, and not through one without (the control). The id may be
/// written with a build arg, expanded as the step's other mount options are.
#[test]
fn a_ssh_mount_is_owned_as_its_uid_gid_and_mode_say() {
    let d = Daemon::with_busybox();
    let comment = berth_integration::unique("berth-test-key-");
    let df = "FROM busybox\nCOPY agent_list /agent_list\nARG SSH_ID=none\nARG UID=0\nUSER 1000\n\
              RUN --mount=type=ssh,id=$SSH_ID,uid=${UID},gid=100 /agent_list > /tmp/by-uid && stat -c '%a %u %g' $SSH_AUTH_SOCK >> /tmp/by-uid\n\
              RUN --mount=type=ssh,id=${SSH_ID},mode=0666 /agent_list > /tmp/by-mode && stat -c '%a %u %g' $SSH_AUTH_SOCK >> /tmp/by-mode\n\
              RUN --mount=type=ssh,id=$SSH_ID /agent_list > /tmp/control 2>&1; echo $? >> /tmp/control; stat -c '%a %u %g' $SSH_AUTH_SOCK >> /tmp/control\n";
    let ctx = files(&d, &[("Dockerfile", df)]);
    agent_list(&ctx);
    let agent = Agent::start(d.dir.path(), &comment);
    let tag = berth_integration::unique("bxsshuid");
    let ssh = format!("gh={}", agent.socket);
    let args = ["--ssh", &ssh, "--build-arg", "SSH_ID=gh", "--build-arg", "UID=1000", "-t", &tag, "."];
    let mut full = vec!["buildx", "build", "--load", "--network", "none"];
    full.extend(args);
    docker(&d, &ctx, &full).ok();
    let seen = d
        .docker(&["run", "--rm", "--network", "none", &tag, "cat", "/tmp/by-uid", "/tmp/by-mode", "/tmp/control"])
        .ok();
    assert_eq!(
        seen,
        format!("{comment}\n600 1000 100\n{comment}\n666 0 0\nconnect: Permission denied\n2\n600 0 0\n"),
        "the uid and mode mounts reach the agent; the default one is root's only"
    );
    d.docker(&["rmi", &tag]).ok();
}
