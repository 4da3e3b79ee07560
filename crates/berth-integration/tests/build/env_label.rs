//! ENV (both syntaxes, substitution, seen by RUN) and LABEL (inherited, same key overrides).

use super::*;

#[test]
fn env_reaches_run_steps_and_the_image_and_labels_inherit_and_override() {
    let d = Daemon::with_busybox();
    let dir = context(
        &d,
        &[(
            "Dockerfile",
            "FROM busybox\nENV A=1 B=\"two words\"\nENV C ${A}-legacy\nLABEL keep=yes over=parent\nRUN echo \"$A|$B|$C\" > /env.txt\n",
        )],
    );
    build(&d, &dir, &["-t", "env-parent"]).ok();
    assert_eq!(
        d.berth(&["run", "--rm", "--network", "none", "env-parent", "cat", "/env.txt"]).ok(),
        "1|two words|1-legacy\n"
    );
    assert_eq!(d.berth(&["run", "--rm", "--network", "none", "env-parent", "sh", "-c", "echo $B"]).ok(), "two words\n");
    let dir = context(&d, &[("Dockerfile", "FROM env-parent\nLABEL over=child\n")]);
    build(&d, &dir, &["-t", "env-child"]).ok();
    assert_eq!(inspect(&d, "env-child", "{{.Config.Labels.keep}} {{.Config.Labels.over}}"), "yes child");
}
