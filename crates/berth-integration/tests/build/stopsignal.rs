//! STOPSIGNAL: stored, and what a container made from the image gets by default.

use super::*;

#[test]
fn stopsignal_reaches_the_image_and_its_containers() {
    let d = Daemon::with_busybox();
    let dir = context(&d, &[("Dockerfile", "FROM busybox\nSTOPSIGNAL SIGUSR1\n")]);
    build(&d, &dir, &["-t", "stopsig"]).ok();
    assert_eq!(inspect(&d, "stopsig", "{{.Config.StopSignal}}"), "SIGUSR1");
    let name = berth_integration::unique("stopsig");
    d.berth(&["create", "--name", &name, "--network", "none", "stopsig", "true"]).ok();
    assert_eq!(d.berth(&["inspect", "-f", "{{.Config.StopSignal}}", &name]).ok().trim(), "SIGUSR1");
    d.berth(&["rm", &name]).ok();
}
