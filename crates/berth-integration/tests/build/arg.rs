//! ARG and `--build-arg`.

use super::*;

#[test]
fn build_args_and_the_unused_warning() {
    let d = Daemon::with_busybox();
    let df = "ARG BASE=busybox\nFROM $BASE\nARG V=default\nARG BASE\nRUN echo \"v=$V base=$BASE\" > /out\nENV V=env-wins\nRUN echo \"after=$V\" >> /out\nCMD [\"cat\", \"/out\"]\n";
    let dir = context(&d, &[("Dockerfile", df)]);
    let out = build(&d, &dir, &["-t", "args", "--build-arg", "V=given", "--build-arg", "NOPE=1"]).ok();
    assert!(out.contains("[Warning] One or more build-args [NOPE] were not consumed"), "{out}");
    assert_eq!(d.berth(&["run", "--rm", "--network", "none", "args"]).ok(), "v=given base=busybox\nafter=env-wins\n");
    // Build args are not kept in the image's environment.
    assert!(!inspect(&d, "args", "{{json .Config.Env}}").contains("given"));
    // ...but they are part of RUN's cache key: a different value reruns it.
    let again = build(&d, &dir, &["-t", "args", "--build-arg", "V=other"]).ok();
    assert!(!again.contains("Step 5/8 : RUN echo \"v=$V base=$BASE\" > /out\n ---> Using cache"), "{again}");
    assert_eq!(d.berth(&["run", "--rm", "--network", "none", "args"]).ok(), "v=other base=busybox\nafter=env-wins\n");
}
