//! CMD and ENTRYPOINT: both forms, the last wins, ENTRYPOINT resets an inherited CMD, and
//! at run time arguments replace CMD and are appended to ENTRYPOINT.

use super::*;

#[test]
fn cmd_and_entrypoint_forms_and_how_run_arguments_combine_with_them() {
    let d = Daemon::with_busybox();
    let dir = context(&d, &[("Dockerfile", "FROM busybox\nCMD echo first\nCMD [\"echo\", \"exec-form\"]\n")]);
    build(&d, &dir, &["-t", "cmd-only"]).ok();
    assert_eq!(inspect(&d, "cmd-only", "{{json .Config.Cmd}}"), r#"["echo","exec-form"]"#, "the last CMD wins");
    assert_eq!(d.berth(&["run", "--rm", "--network", "none", "cmd-only"]).ok(), "exec-form\n");
    assert_eq!(d.berth(&["run", "--rm", "--network", "none", "cmd-only", "echo", "replaced"]).ok(), "replaced\n");

    // ENTRYPOINT in a child resets the inherited CMD; shell form goes through /bin/sh -c.
    let dir = context(&d, &[("Dockerfile", "FROM cmd-only\nENTRYPOINT echo shell-form $HOME\n")]);
    build(&d, &dir, &["-t", "ep-shell"]).ok();
    assert_eq!(
        inspect(&d, "ep-shell", "{{json .Config.Entrypoint}} {{json .Config.Cmd}}"),
        r#"["/bin/sh","-c","echo shell-form $HOME"] null"#
    );
    assert_eq!(d.berth(&["run", "--rm", "--network", "none", "ep-shell"]).ok(), "shell-form /root\n");

    let dir = context(&d, &[("Dockerfile", "FROM busybox\nENTRYPOINT [\"echo\", \"ep\"]\nCMD [\"default\"]\n")]);
    build(&d, &dir, &["-t", "ep-exec"]).ok();
    assert_eq!(d.berth(&["run", "--rm", "--network", "none", "ep-exec"]).ok(), "ep default\n");
    assert_eq!(d.berth(&["run", "--rm", "--network", "none", "ep-exec", "given"]).ok(), "ep given\n");
}
