//! EXPOSE: ports (tcp by default, or /udp) in the image's config.

use super::*;

#[test]
fn exposed_ports_are_recorded_with_their_protocol() {
    let d = Daemon::with_busybox();
    let dir = context(&d, &[("Dockerfile", "FROM busybox\nARG P=8080\nEXPOSE $P 53/udp\nEXPOSE 9000/tcp\n")]);
    build(&d, &dir, &["-t", "exposed"]).ok();
    assert_eq!(inspect(&d, "exposed", "{{json .Config.ExposedPorts}}"), r#"{"53/udp":{},"8080/tcp":{},"9000/tcp":{}}"#);
}
