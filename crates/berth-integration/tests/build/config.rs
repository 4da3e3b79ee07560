//! Every config instruction at once, as it lands in the image and at run time (each also has its own file).

use super::*;

#[test]
fn config_instructions_reach_the_image() {
    let d = Daemon::with_busybox();
    let dockerfile = r#"FROM busybox
ARG GREETING=hello
ENV APP_HOME=/srv/app MSG="$GREETING world"
LABEL org.example.name="demo app" version=1
MAINTAINER someone@example.com
EXPOSE 8080 53/udp
WORKDIR $APP_HOME
WORKDIR sub
USER nobody
VOLUME ["/data"]
STOPSIGNAL SIGKILL
HEALTHCHECK --interval=5s --retries=2 CMD true
SHELL ["/bin/sh", "-ec"]
ONBUILD RUN echo triggered
ENTRYPOINT ["/bin/echo", "ep"]
CMD ["default"]
"#;
    let dir = context(&d, &[("Dockerfile", dockerfile)]);
    build(&d, &dir, &["-t", "cfg", "--build-arg", "GREETING=hi", "--build-arg", "UNUSED=1"]).ok();
    assert_eq!(
        inspect(&d, "cfg", "{{json .Config.Env}}"),
        r#"["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","APP_HOME=/srv/app","MSG=hi world"]"#
    );
    assert_eq!(
        inspect(&d, "cfg", "{{index .Config.Labels \"org.example.name\"}} {{.Config.Labels.version}}"),
        "demo app 1"
    );
    assert_eq!(inspect(&d, "cfg", "{{.Author}}"), "someone@example.com");
    assert_eq!(inspect(&d, "cfg", "{{json .Config.ExposedPorts}}"), r#"{"53/udp":{},"8080/tcp":{}}"#);
    assert_eq!(
        inspect(&d, "cfg", "{{.Config.WorkingDir}} {{.Config.User}} {{.Config.StopSignal}}"),
        "/srv/app/sub nobody SIGKILL"
    );
    assert_eq!(inspect(&d, "cfg", "{{json .Config.Volumes}}"), r#"{"/data":{}}"#);
    assert_eq!(
        inspect(&d, "cfg", "{{json .Config.Healthcheck.Test}} {{.Config.Healthcheck.Retries}}"),
        r#"["CMD-SHELL","true"] 2"#
    );
    assert_eq!(
        inspect(&d, "cfg", "{{json .Config.Shell}} {{json .Config.OnBuild}}"),
        r#"["/bin/sh","-ec"] ["RUN echo triggered"]"#
    );
    assert_eq!(
        inspect(&d, "cfg", "{{json .Config.Entrypoint}} {{json .Config.Cmd}}"),
        r#"["/bin/echo","ep"] ["default"]"#
    );
    // At run time arguments replace CMD and are appended to ENTRYPOINT; WORKDIR exists.
    assert_eq!(d.berth(&["run", "--rm", "--network", "none", "cfg"]).ok(), "ep default\n");
    assert_eq!(d.berth(&["run", "--rm", "--network", "none", "cfg", "given"]).ok(), "ep given\n");
    assert_eq!(d.berth(&["run", "--rm", "--network", "none", "--entrypoint", "pwd", "cfg"]).ok(), "/srv/app/sub\n");
}
