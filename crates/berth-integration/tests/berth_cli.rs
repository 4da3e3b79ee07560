//! berth's own CLI where it differs from docker's by accident (issue 16, points 23–26).

use berth_integration::{Daemon, unique};

/// Point 23: what follows the image is the container's, flags included, as with docker.
#[test]
fn arguments_after_the_image_are_the_containers() {
    let d = Daemon::with_busybox();
    let out =
        d.berth(&["run", "--rm", "--network", "none", "--entrypoint", "sh", "busybox", "-c", "echo -n hi; echo $0"]);
    assert_eq!(out.ok(), "hish\n");
    // A flag of berth's own after the image is an argument too.
    let out = d.berth(&["run", "--rm", "--network", "none", "busybox", "echo", "-d", "--rm", "-e", "X=1"]);
    assert_eq!(out.ok(), "-d --rm -e X=1\n");
    let name = unique("after");
    d.berth(&["create", "--name", &name, "--network", "none", "busybox", "ls", "-l", "/"]).ok();
    let cmd = d.docker(&["inspect", "-f", "{{json .Config.Cmd}}", &name]).ok();
    assert_eq!(cmd.trim(), r#"["ls","-l","/"]"#);
    d.docker(&["rm", &name]).ok();
}

/// Point 26 (and 11): the fields docker's version and info templates use have values, through
/// berth's CLI and the docker CLI; info says `Swarm: inactive` and version lists components.
#[test]
fn version_and_info_templates_print_values() {
    let d = Daemon::start();
    let f = "{{.Client.APIVersion}} {{.Client.DefaultAPIVersion}} {{.Server.APIVersion}} {{.Server.MinAPIVersion}} {{.Server.Os}} {{.Server.Arch}}";
    let berth = d.berth(&["version", "--format", f]).ok();
    assert!(!berth.contains("no value"), "{berth}");
    let arch = std::env::consts::ARCH.replace("x86_64", "amd64");
    assert_eq!(berth.trim(), format!("1.45 1.45 1.45 1.24 linux {arch}"));
    let docker = d.docker(&["version", "--format", "{{.Server.APIVersion}} {{.Server.Os}}"]).ok();
    assert_eq!(docker.trim(), "1.45 linux");
    let comps = d.docker(&["version", "--format", "{{range .Server.Components}}{{.Name}},{{end}}"]).ok();
    assert_eq!(comps.trim(), "Engine,berth-shim,");
    for who in ["berth", "docker"] {
        let run = |args: &[&str]| if who == "berth" { d.berth(args) } else { d.docker(args) };
        assert_eq!(run(&["info", "--format", "{{.Swarm.LocalNodeState}}"]).ok().trim(), "inactive", "{who}");
        let plugins = run(&["info", "--format", "{{json .Plugins.Volume}} {{.ClientInfo.Debug}}"]).ok();
        assert_eq!(plugins.trim(), r#"["local"] false"#, "{who}");
        let text = run(&["info"]).ok();
        assert!(text.contains(" Swarm: inactive\n"), "{who}: {text}");
        assert!(text.contains("  Volume: local\n"), "{who}: {text}");
    }
}

/// Point 24: a signal to `berth run` (and `start -a`, `attach`) reaches the container
/// (`--sig-proxy`, on by default); with `--sig-proxy=false` it ends only the CLI.
#[test]
fn signals_to_the_cli_reach_the_container() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let d = Daemon::with_busybox();
    let script = "trap 'echo got TERM; exit 7' TERM; echo ready; while :; do sleep 0.1; done";
    let spawn = |args: &[&str]| {
        let mut child = Command::new(berth_integration::berth_bin())
            .arg("-H")
            .arg(d.host())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line, "ready\n");
        let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
        (child.wait().unwrap(), rest)
    };
    let name = unique("proxy");
    let (status, rest) = spawn(&["run", "--name", &name, "--network", "none", "busybox", "sh", "-c", script]);
    assert_eq!(rest, "got TERM\n");
    assert_eq!(status.code(), Some(7));
    assert_eq!(d.docker(&["inspect", "-f", "{{.State.ExitCode}}", &name]).ok().trim(), "7");
    // start -a forwards too.
    let (status, rest) = spawn(&["start", "-a", &name]);
    assert_eq!((status.code(), rest.as_str()), (Some(7), "got TERM\n"));
    d.docker(&["rm", &name]).ok();
    // Control: without the proxy the CLI dies of the signal and the container runs on.
    let name = unique("noproxy");
    let (status, _) =
        spawn(&["run", "--sig-proxy=false", "--name", &name, "--network", "none", "busybox", "sh", "-c", script]);
    assert_eq!(status.code(), None, "{status:?}");
    assert_eq!(d.docker(&["inspect", "-f", "{{.State.Running}}", &name]).ok().trim(), "true");
    d.docker(&["rm", "-f", &name]).ok();
}

/// `info` shows the daemon's proxies without their credentials, as dockerd does: any API
/// client may read `info`, the proxy's password is not theirs.
#[test]
fn info_masks_proxy_credentials() {
    let mut d = Daemon::start();
    d.stop();
    d.env.push(("HTTP_PROXY".into(), "http://user:s3cret@127.0.0.1:3128".into()));
    d.env.push(("NO_PROXY".into(), "localhost".into()));
    d.spawn();
    let shown = d.docker(&["info", "--format", "{{.HTTPProxy}} {{.NoProxy}}"]).ok();
    assert_eq!(shown.trim(), "http://xxxxx:xxxxx@127.0.0.1:3128 localhost");
}

fn berth(args: &[&str]) -> berth_integration::Run {
    std::process::Command::new(berth_integration::berth_bin()).args(args).output().unwrap().into()
}

/// Point 25: `berth help CMD`, a help laid out as docker's that lists the servers too, and
/// shell completions and man pages made from the CLI's own definition.
#[test]
fn help_completions_and_man_pages_come_from_the_cli() {
    let top = berth(&["--help"]).ok();
    for heading in ["Common Commands:", "Management Commands:", "Commands:", "Server Commands:", "Global Options:"] {
        assert!(top.contains(&format!("\n{heading}\n")), "{heading}: {top}");
    }
    assert!(top.contains("\n  daemon ") && top.contains("\n  registry "), "{top}");
    assert!(berth(&["help", "run"]).ok().contains("Usage: berth run [OPTIONS] <IMAGE> [COMMAND]..."));
    assert!(berth(&["help", "container", "ls"]).ok().contains("Usage: berth container ls"));
    // The servers' own options, not a placeholder's.
    assert!(berth(&["help", "daemon"]).ok().contains("--data-root"));

    let bash = berth(&["completion", "bash"]).ok();
    assert!(bash.contains("complete -F _berth"), "{}", &bash[..200.min(bash.len())]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("berth.bash"), &bash).unwrap();
    let check = std::process::Command::new("bash").arg("-n").arg(dir.path().join("berth.bash")).status().unwrap();
    assert!(check.success(), "bash parses the script");
    assert!(berth(&["completion", "zsh"]).ok().starts_with("#compdef berth"));
    assert!(berth(&["completion", "fish"]).ok().contains("complete -c berth"));
    let err = berth(&["completion", "tcsh"]).fails();
    assert!(err.contains("invalid value 'tcsh'"), "{err}");

    let man = dir.path().join("man1");
    berth(&["__man", &man.display().to_string()]).ok();
    for page in ["berth.1", "berth-run.1", "berth-container-ls.1", "berth-network-create.1"] {
        let text = std::fs::read_to_string(man.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains(&format!(".TH {} 1", page.trim_end_matches(".1"))), "{page}: {}", &text[..80]);
    }
    assert!(std::fs::read_to_string(man.join("berth-run.1")).unwrap().contains("\\-\\-publish"));
}
