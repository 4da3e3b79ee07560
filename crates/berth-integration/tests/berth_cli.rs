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
