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
