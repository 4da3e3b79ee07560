//! USER and SHELL: how later RUN steps (and the image) execute.

use super::*;

#[test]
fn user_and_shell_change_how_later_runs_execute() {
    let d = Daemon::with_busybox();
    let df = "FROM busybox\nUSER nobody\nRUN echo \"uid=$(id -u)\"\nUSER root\nSHELL [\"/bin/echo\", \"through-shell\"]\nRUN hello\nUSER 65534:65534\n";
    let dir = context(&d, &[("Dockerfile", df)]);
    let out = build(&d, &dir, &["-t", "user-shell"]).ok();
    assert!(out.contains("uid=65534\n"), "RUN runs as the USER: {out}");
    assert!(out.contains("through-shell hello\n"), "RUN's shell form goes through SHELL: {out}");
    assert_eq!(
        d.berth(&["run", "--rm", "--network", "none", "user-shell", "id", "-u"]).ok(),
        "65534\n",
        "the image runs as its last USER"
    );
}
