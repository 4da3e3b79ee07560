//! Setup and teardown through fake plugins that record what they were asked.

use std::os::unix::fs::PermissionsExt;

use super::*;

struct Node {
    dir: tempfile::TempDir,
    cni: Cni,
}

impl Node {
    fn new(conflist: &str) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let (conf, bin) = (dir.path().join("net.d"), dir.path().join("bin"));
        std::fs::create_dir_all(&conf).unwrap();
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(conf.join("10-test.conflist"), conflist).unwrap();
        let log = dir.path().join("log");
        // Each call appends "COMMAND NAME IFNAME NETNS" and keeps its stdin; ADD answers a
        // result naming the plugin, with an address on eth0.
        let ok = format!(
            r#"n=$(basename "$0"); echo "$CNI_COMMAND $n $CNI_IFNAME $CNI_NETNS" >> {log}; cat > {log}.$n.$CNI_COMMAND.$CNI_IFNAME
[ "$CNI_COMMAND" = ADD ] && echo '{{"cniVersion":"1.0.0","from":"'$n'","interfaces":[{{"name":"eth0","sandbox":"/x"}}],"ips":[{{"address":"10.9.0.2/24","interface":0}}]}}'
exit 0"#,
            log = log.display()
        );
        for name in ["loopback", "a", "b"] {
            plugin(&bin, name, &ok);
        }
        plugin(
            &bin,
            "fail",
            &format!(
                r#"echo "$CNI_COMMAND fail $CNI_IFNAME $CNI_NETNS" >> {}
[ "$CNI_COMMAND" = DEL ] && exit 0
echo '{{"cniVersion":"1.0.0","code":7,"msg":"no addresses left"}}'; exit 1"#,
                log.display()
            ),
        );
        let cni = Cni::new(Options {
            conf_dir: conf,
            bin_dirs: vec![bin],
            cache_dir: dir.path().join("cache"),
            timeout: Duration::from_secs(20),
        });
        Node { dir, cni }
    }

    fn log(&self) -> Vec<String> {
        let l = std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default();
        l.lines().map(String::from).collect()
    }

    fn stdin(&self, name: &str) -> Value {
        serde_json::from_slice(&std::fs::read(self.dir.path().join(format!("log.{name}"))).unwrap()).unwrap()
    }
}

fn plugin(dir: &Path, name: &str, script: &str) {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{script}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn pod() -> PodRequest {
    PodRequest {
        id: "pod1".into(),
        netns: "/proc/self/ns/net".into(),
        args: vec![("K8S_POD_NAME".into(), "web".into())],
        capabilities: serde_json::from_str(r#"{"portMappings":[{"hostPort":8080,"containerPort":80}]}"#).unwrap(),
    }
}

#[tokio::test]
async fn setup_chains_results_and_teardown_undoes_it_in_reverse_from_the_record() {
    let n = Node::new(
        r#"{"cniVersion":"1.0.0","name":"net","plugins":[{"type":"a"},{"type":"b","capabilities":{"portMappings":true}}]}"#,
    );
    let att = n.cni.setup(&n.cni.network().unwrap(), &pod()).await.unwrap();
    assert_eq!(att.addresses(), vec!["10.9.0.2".parse::<std::net::IpAddr>().unwrap()]);
    assert_eq!(
        n.log(),
        ["ADD loopback lo /proc/self/ns/net", "ADD a eth0 /proc/self/ns/net", "ADD b eth0 /proc/self/ns/net"]
    );
    assert!(n.stdin("a.ADD.eth0").get("prevResult").is_none());
    let b = n.stdin("b.ADD.eth0");
    assert_eq!(b["prevResult"]["from"], "a", "b gets a's result");
    assert_eq!(b["runtimeConfig"]["portMappings"][0]["hostPort"], 8080);
    assert!(n.stdin("a.ADD.eth0").get("runtimeConfig").is_none(), "a declares no capability");
    assert_eq!(n.cni.attachment("pod1").unwrap(), Some(att));

    // The directory changes; teardown uses what was recorded, and the namespace is gone.
    std::fs::remove_dir_all(&n.cni.options().conf_dir).unwrap();
    n.cni.teardown("pod1", Some(Path::new("/proc/no-such/ns/net"))).await.unwrap();
    assert_eq!(&n.log()[3..], ["DEL b eth0 ", "DEL a eth0 ", "DEL loopback lo "]);
    assert_eq!(n.stdin("b.DEL.eth0")["prevResult"]["from"], "b", "DEL gets the cached result (1.0.0)");
    assert!(n.stdin("loopback.DEL.lo").get("prevResult").is_none(), "not before spec 0.4.0");
    assert_eq!(n.cni.attachment("pod1").unwrap(), None);
    // Again: nothing to do.
    n.cni.teardown("pod1", None).await.unwrap();
    assert_eq!(n.log().len(), 6);
}

#[tokio::test]
async fn a_failing_plugin_undoes_what_was_added_and_leaves_no_record() {
    let n = Node::new(r#"{"cniVersion":"1.0.0","name":"net","plugins":[{"type":"a"},{"type":"fail"}]}"#);
    let e = n.cni.setup(&n.cni.network().unwrap(), &pod()).await.unwrap_err();
    assert_eq!(e.to_string(), r#"plugin type="fail" name="net" failed (ADD): no addresses left"#);
    assert_eq!(
        n.log()[1..],
        [
            "ADD a eth0 /proc/self/ns/net",
            "ADD fail eth0 /proc/self/ns/net",
            "DEL fail eth0 /proc/self/ns/net",
            "DEL a eth0 /proc/self/ns/net",
            "DEL loopback lo /proc/self/ns/net",
        ]
    );
    assert!(n.stdin("a.DEL.eth0").get("prevResult").is_none(), "the network never had a result");
    assert_eq!(n.cni.attachment("pod1").unwrap(), None);
}

#[tokio::test]
async fn teardown_asks_every_plugin_and_keeps_the_record_when_one_fails() {
    let n = Node::new(r#"{"cniVersion":"0.4.0","name":"net","plugins":[{"type":"a"},{"type":"b"}]}"#);
    n.cni.setup(&n.cni.network().unwrap(), &pod()).await.unwrap();
    let bin = n.cni.options().bin_dirs[0].clone();
    plugin(&bin, "b", r#"echo '{"code":999,"msg":"b is stuck"}'; exit 1"#);
    let e = n.cni.teardown("pod1", None).await.unwrap_err().to_string();
    assert!(e.contains("b is stuck"), "{e}");
    assert_eq!(&n.log()[3..], ["DEL a eth0 ", "DEL loopback lo "], "a and loopback were asked all the same");
    assert!(n.cni.attachment("pod1").unwrap().is_some(), "kept for the next try");
    plugin(&bin, "b", "exit 0");
    n.cni.teardown("pod1", None).await.unwrap();
    assert_eq!(n.cni.attachment("pod1").unwrap(), None);
}
