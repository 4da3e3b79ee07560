//! Pod networking through Debian's standard CNI plugins (bridge, host-local, loopback,
//! portmap): each test has its own config directory with a bridge of a unique name on a
//! private /24 no host route covers, host-local's leases in the test's directory, and no
//! masquerade; the bridge and any rule the plugins leave are removed even when the test fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use berth_cri::proto::*;
use berth_integration::{Daemon, free_port, http_get, unique, until_serving};

use crate::{Cri, connect, container, pod, socket};

/// Where Debian puts the plugins.
const PLUGINS: &str = "/usr/lib/cni";

/// A CNI network for one test: config and plugin directories, a bridge, a subnet.
struct Net {
    dir: tempfile::TempDir,
    name: String,
    bridge: String,
    /// The /24's first three octets, e.g. `10.213.7`.
    prefix: String,
    portmap: bool,
}

impl Net {
    /// A network of `bridge` (and `extra` plugins after it) in a fresh config directory.
    fn new(extra: &[&str]) -> Net {
        Net::around(&[], extra)
    }

    /// A network of the `before` plugins, bridge, then the `after` plugins.
    fn around(before: &[&str], after: &[&str]) -> Net {
        let dir = tempfile::Builder::new().prefix("btcni").tempdir_in("/tmp").unwrap();
        let name = unique("berth-cni-test-");
        let bridge = unique("bc");
        assert!(bridge.len() <= 15, "{bridge} is too long for an interface name");
        let prefix = subnet();
        let mut plugins: Vec<String> = before.iter().map(|p| p.to_string()).collect();
        plugins.push(format!(
            r#"{{"type":"bridge","bridge":"{bridge}","isGateway":true,"ipMasq":false,"hairpinMode":true,
                "ipam":{{"type":"host-local","ranges":[[{{"subnet":"{prefix}.0/24"}}]],"dataDir":"{}"}}}}"#,
            dir.path().join("ipam").display()
        ));
        plugins.extend(after.iter().map(|p| p.to_string()));
        let portmap = plugins.iter().any(|p| p.contains(r#""type":"portmap""#));
        let net = Net { dir, name, bridge, prefix, portmap };
        std::fs::create_dir_all(net.conf_dir()).unwrap();
        std::fs::create_dir_all(net.bin_dir()).unwrap();
        net.write_config(&plugins.join(","));
        net
    }

    fn write_config(&self, plugins: &str) {
        let body = format!(r#"{{"cniVersion":"1.0.0","name":"{}","plugins":[{plugins}]}}"#, self.name);
        std::fs::write(self.conf_dir().join("10-test.conflist"), body).unwrap();
    }

    fn conf_dir(&self) -> PathBuf {
        self.dir.path().join("net.d")
    }

    /// The test's own plugins, searched before Debian's.
    fn bin_dir(&self) -> PathBuf {
        self.dir.path().join("bin")
    }

    /// A daemon with busybox whose pods use this network.
    fn daemon(&self) -> Daemon {
        let conf = self.conf_dir().display().to_string();
        let bins = format!("{}:{PLUGINS}", self.bin_dir().display());
        let d = Daemon::start_with(&["--cni-conf-dir", &conf, "--cni-bin-dir", &bins]);
        d.import_busybox("busybox:latest");
        d
    }

    /// The addresses host-local has leased.
    fn leases(&self) -> Vec<String> {
        let Ok(rd) = std::fs::read_dir(self.dir.path().join("ipam").join(&self.name)) else { return Vec::new() };
        let mut v: Vec<String> = rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.parse::<std::net::IpAddr>().is_ok())
            .collect();
        v.sort();
        v
    }

    /// The pods' veths on the bridge.
    fn ports(&self) -> usize {
        let o = Command::new("ip").args(["-o", "link", "show", "master", &self.bridge]).output().unwrap();
        String::from_utf8_lossy(&o.stdout).lines().count()
    }

    /// Rules in the nat table that name this network (portmap's carry its name).
    fn nat_rules(&self) -> Vec<String> {
        let o = Command::new("iptables-save").args(["-t", "nat"]).output().unwrap();
        let needle = format!("\\\"{}\\\"", self.name);
        String::from_utf8_lossy(&o.stdout).lines().filter(|l| l.contains(&needle)).map(String::from).collect()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // Rules portmap left for pods that were never torn down (a failed test): delete each,
        // then the per-pod chains they jumped to, once empty.
        let mut chains = Vec::new();
        for rule in self.nat_rules() {
            let Some(rest) = rule.strip_prefix("-A ") else { continue };
            let args = shell_words(rest);
            if let Some(i) = args.iter().position(|a| a == "-j") {
                chains.extend(args.get(i + 1).filter(|c| c.starts_with("CNI-")).cloned());
            }
            iptables(&["-t", "nat", "-D"], &args);
        }
        for c in chains {
            iptables(&["-t", "nat", "-F", &c], &[]);
            iptables(&["-t", "nat", "-X", &c], &[]);
        }
        let _ = Command::new("ip").args(["link", "del", &self.bridge]).status();
        // Only the test that uses portmap: another's could take the chains from under it.
        if self.portmap {
            remove_portmap_chains();
        }
    }
}

/// portmap's own chains stay after the last DEL (CNI-HOSTPORT-DNAT, -MASQ, -SETMARK and the
/// jumps to them): removed once no pod's mapping is left in them.
fn remove_portmap_chains() {
    let o = Command::new("iptables-save").args(["-t", "nat"]).output().unwrap();
    let save = String::from_utf8_lossy(&o.stdout);
    if !save.contains(":CNI-HOSTPORT-DNAT") || save.lines().any(|l| l.starts_with("-A CNI-HOSTPORT-DNAT ")) {
        return;
    }
    for rule in save.lines().filter(|l| l.contains("-j CNI-HOSTPORT-") && !l.starts_with("-A CNI-HOSTPORT-")) {
        let args = shell_words(rule.trim_start_matches("-A "));
        iptables(&["-t", "nat", "-D"], &args);
    }
    for c in ["CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-MASQ", "CNI-HOSTPORT-SETMARK"] {
        iptables(&["-t", "nat", "-F", c], &[]);
        iptables(&["-t", "nat", "-X", c], &[]);
    }
}

/// Runs iptables quietly: cleanup of what may already be gone.
fn iptables(head: &[&str], rest: &[String]) {
    let _ = Command::new("iptables").args(head).args(rest).stderr(std::process::Stdio::null()).status();
}

/// iptables-save's quoting: words, with "double quotes" (and \" inside them) kept together.
fn shell_words(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut quoted, mut chars) = (Vec::new(), String::new(), false, s.chars().peekable());
    while let Some(c) = chars.next() {
        match c {
            '\\' if quoted && chars.peek() == Some(&'"') => cur.push(chars.next().unwrap()),
            '"' => quoted = !quoted,
            ' ' if !quoted => out.extend((!cur.is_empty()).then(|| std::mem::take(&mut cur))),
            c => cur.push(c),
        }
    }
    out.extend((!cur.is_empty()).then_some(cur));
    out
}

/// A private /24 for this test that overlaps no route of the host (test daemons' bridges use
/// 10.100–10.199; these tests 10.200–10.249).
fn subnet() -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let out = Command::new("ip").args(["-4", "route", "show", "table", "all"]).output().unwrap();
    let routes: Vec<(u32, u32)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let mut dst = words.next()?;
            if [
                "local",
                "broadcast",
                "unicast",
                "multicast",
                "anycast",
                "unreachable",
                "blackhole",
                "prohibit",
                "throw",
            ]
            .contains(&dst)
            {
                dst = words.next()?;
            }
            let (addr, len) = dst.split_once('/').unwrap_or((dst, "32"));
            let (addr, len): (std::net::Ipv4Addr, u32) = (addr.parse().ok()?, len.parse().ok()?);
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            Some((u32::from(addr) & mask, mask))
        })
        .collect();
    for _ in 0..250 {
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let prefix = format!("10.{}.{}", 200 + std::process::id() % 50, (std::process::id() / 50 + n * 7) % 250);
        let ours = u32::from(format!("{prefix}.0").parse::<std::net::Ipv4Addr>().unwrap());
        // Two prefixes overlap when the shorter one's mask maps both to the same network.
        let overlaps = routes.iter().any(|&(net, mask)| {
            let m = mask & 0xffff_ff00;
            ours & m == net & m
        });
        if !overlaps {
            return prefix;
        }
    }
    panic!("no free /24 in 10.200.0.0/14");
}

async fn ip_of(c: &mut Cri, pod: &str) -> String {
    c.pod_status(pod).await.network.unwrap_or_default().ip
}

/// A pod running busybox's httpd on port 80, answering `body`.
async fn web_pod(c: &mut Cri, name: &str, logs: &Path, body: &str, ports: Vec<PortMapping>) -> String {
    let mut cfg = pod(name, logs);
    cfg.port_mappings = ports;
    let p = c.run_pod(cfg.clone()).await;
    let script = format!("mkdir -p /www && echo {body} > /www/index.html && exec httpd -f -p 80 -h /www");
    c.run(&p, &cfg, container("web", &script)).await;
    p
}

/// A pod with a container that idles, for execs; returns (pod, container).
async fn client_pod(c: &mut Cri, name: &str, logs: &Path) -> (String, String) {
    let cfg = pod(name, logs);
    let p = c.run_pod(cfg.clone()).await;
    let id = c.run(&p, &cfg, container("client", "exec sleep 1000")).await;
    (p, id)
}

/// What `wget` inside container `id` gets from `http://ip/`, once the server is up.
async fn fetch(c: &mut Cri, id: &str, ip: &str) -> String {
    let url = format!("http://{ip}/");
    let mut last = String::new();
    for _ in 0..100 {
        let r = c.exec(id, &["wget", "-O", "-", &url], 10).await.unwrap();
        if r.exit_code == 0 {
            return String::from_utf8_lossy(&r.stdout).trim().to_string();
        }
        last = String::from_utf8_lossy(&r.stderr).into_owned();
        // The server may still be starting: connection refused comes back at once.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mut seen = String::new();
    for cmd in [&["ip", "addr"][..], &["ip", "route"], &["ping", "-c", "1", "-W", "2", ip], &["wget", "-O", "-", &url]]
    {
        let r = c.exec(id, cmd, 10).await.unwrap();
        seen += &format!("\n$ {cmd:?}: {} {}", String::from_utf8_lossy(&r.stdout), String::from_utf8_lossy(&r.stderr));
    }
    panic!("{url} never answered from {id}: {last}{seen}");
}

fn in_subnet(ip: &str, net: &Net) -> bool {
    ip.starts_with(&format!("{}.", net.prefix))
}

#[tokio::test]
async fn a_pod_reaches_another_pod_by_ip_through_the_cni_bridge_and_stopping_releases_its_address() {
    let net = Net::new(&[]);
    let d = net.daemon();
    let mut c = connect(&d).await;
    let logs = d.dir.path().join("pod-logs");
    let b = web_pod(&mut c, "server", &logs, "hello-from-b", Vec::new()).await;
    let (a, client) = client_pod(&mut c, "client", &logs).await;
    let (ip_a, ip_b) = (ip_of(&mut c, &a).await, ip_of(&mut c, &b).await);
    assert!(in_subnet(&ip_a, &net) && in_subnet(&ip_b, &net) && ip_a != ip_b, "{ip_a} {ip_b}");
    let mut both = vec![ip_a.clone(), ip_b.clone()];
    both.sort();
    assert_eq!(net.leases(), both);
    assert_eq!(net.ports(), 2);
    // The pod's own eth0 has the address the status reports.
    let r = c.exec(&client, &["ip", "-4", "-o", "addr", "show", "eth0"], 10).await.unwrap();
    assert!(String::from_utf8_lossy(&r.stdout).contains(&format!(" {ip_a}/24 ")), "{r:?}");

    assert_eq!(fetch(&mut c, &client, &ip_b).await, "hello-from-b");

    c.rt.stop_pod_sandbox(StopPodSandboxRequest { pod_sandbox_id: b.clone() }).await.unwrap();
    assert_eq!(net.leases(), vec![ip_a.clone()], "B's address is released");
    assert_eq!(net.ports(), 1, "B's veth is gone");
    assert_eq!(ip_of(&mut c, &b).await, "", "a stopped pod has no address");
    assert_eq!(ip_of(&mut c, &a).await, ip_a);
    // Stopping again is fine (nothing left to tear down).
    c.rt.stop_pod_sandbox(StopPodSandboxRequest { pod_sandbox_id: b.clone() }).await.unwrap();
    c.rt.remove_pod_sandbox(RemovePodSandboxRequest { pod_sandbox_id: b }).await.unwrap();
    // Removing a running pod tears its network down too.
    c.rt.remove_pod_sandbox(RemovePodSandboxRequest { pod_sandbox_id: a }).await.unwrap();
    assert_eq!(net.leases(), Vec::<String>::new());
    assert_eq!(net.ports(), 0);
}

#[tokio::test]
async fn a_host_port_on_127_0_0_1_reaches_the_pod_through_portmap() {
    let net = Net::new(&[r#"{"type":"portmap","capabilities":{"portMappings":true}}"#]);
    let d = net.daemon();
    let mut c = connect(&d).await;
    let logs = d.dir.path().join("pod-logs");
    let port = free_port();
    let map = PortMapping {
        protocol: Protocol::Tcp as i32,
        container_port: 80,
        host_port: port as i32,
        host_ip: "127.0.0.1".into(),
    };
    let p = web_pod(&mut c, "published", &logs, "hello-through-portmap", vec![map]).await;
    assert!(!net.nat_rules().is_empty(), "portmap's rules name the network");
    let r = until_serving(([127, 0, 0, 1], port));
    assert!(r.ends_with("hello-through-portmap\n"), "{r}");
    c.rt.stop_pod_sandbox(StopPodSandboxRequest { pod_sandbox_id: p.clone() }).await.unwrap();
    assert_eq!(net.nat_rules(), Vec::<String>::new(), "DEL removes the pod's rules");
    assert!(http_get(([127, 0, 0, 1], port)).is_err(), "nothing answers on the host port any more");
    c.remove_pod(&p).await;
}

/// A pod with a host port, whose address, veth, rules and pinned namespace are all there.
async fn published_pod(c: &mut Cri, d: &Daemon, net: &Net, name: &str) -> String {
    let logs = d.dir.path().join("pod-logs");
    let map = PortMapping {
        protocol: Protocol::Tcp as i32,
        container_port: 80,
        host_port: free_port() as i32,
        host_ip: "127.0.0.1".into(),
    };
    let mut cfg = pod(name, &logs);
    cfg.port_mappings = vec![map];
    let p = c.run_pod(cfg).await;
    assert_eq!(net.leases().len(), 1, "the pod's address is leased");
    assert_eq!(net.ports(), 1);
    assert!(!net.nat_rules().is_empty(), "portmap's rules name the network");
    assert!(pin(d, &p).exists(), "the pod's namespace is pinned");
    p
}

fn pin(d: &Daemon, pod: &str) -> PathBuf {
    d.data_root().join("cri-netns").join(pod)
}

/// Nothing of pod `p`'s network is left: address, veth, rules, pin, record.
fn assert_torn_down(d: &Daemon, net: &Net, p: &str) {
    assert_eq!(net.leases(), Vec::<String>::new(), "the address is released");
    assert_eq!(net.ports(), 0, "the veth is gone");
    assert_eq!(net.nat_rules(), Vec::<String>::new(), "the host port is unmapped");
    assert!(!pin(d, p).exists(), "the namespace is unpinned");
    assert!(!d.data_root().join("cni").join(format!("{p}.json")).exists(), "the attachment record is gone");
}

#[tokio::test]
async fn removing_a_pods_holder_through_the_docker_api_tears_its_network_down() {
    let net = Net::new(&[r#"{"type":"portmap","capabilities":{"portMappings":true}}"#]);
    let d = net.daemon();
    let mut c = connect(&d).await;
    let p = published_pod(&mut c, &d, &net, "removed-by-docker").await;
    // What a user cleaning up a node by hand does: the holder goes through the Docker API.
    d.berth(&["rm", "-f", &p]).ok();
    assert_torn_down(&d, &net, &p);
    let e = c.rt.pod_sandbox_status(PodSandboxStatusRequest { pod_sandbox_id: p.clone(), verbose: false }).await;
    assert_eq!(e.unwrap_err().code(), tonic::Code::NotFound);
    // kubelet's own removal afterwards finds nothing left to do.
    c.remove_pod(&p).await;
}

#[tokio::test]
async fn a_holder_removed_while_the_cri_was_off_has_its_network_torn_down_at_the_next_start() {
    let net = Net::new(&[r#"{"type":"portmap","capabilities":{"portMappings":true}}"#]);
    let mut d = net.daemon();
    let mut c = connect(&d).await;
    let p = published_pod(&mut c, &d, &net, "removed-without-cri").await;
    drop(c);
    d.set_config(r#""cri-socket": """#);
    d.restart();
    d.berth(&["rm", "-f", &p]).ok();
    // Without the CRI nobody knew to DEL (the control: the pod's network is all still there).
    assert_eq!(net.leases().len(), 1);
    assert!(!net.nat_rules().is_empty() && pin(&d, &p).exists());
    let socket = socket(&d).display().to_string();
    d.set_config(&format!(r#""cri-socket": {socket:?}"#));
    d.restart();
    // The daemon tears such pods down before its CRI answers.
    let mut c = connect(&d).await;
    c.rt.version(VersionRequest::default()).await.unwrap();
    assert_torn_down(&d, &net, &p);
}

#[tokio::test]
async fn without_a_network_config_the_network_is_not_ready_and_pods_are_refused_until_one_is_written() {
    let net = Net::new(&[]);
    let conflist = std::fs::read(net.conf_dir().join("10-test.conflist")).unwrap();
    std::fs::remove_file(net.conf_dir().join("10-test.conflist")).unwrap();
    let d = net.daemon();
    let mut c = connect(&d).await;
    let logs = d.dir.path().join("pod-logs");
    let ready = |s: StatusResponse| {
        s.status.unwrap().conditions.into_iter().find(|c| c.r#type == "NetworkReady").expect("a NetworkReady condition")
    };
    let cond = ready(c.rt.status(StatusRequest::default()).await.unwrap().into_inner());
    assert!(!cond.status && cond.reason == "NetworkPluginNotReady", "{cond:?}");
    assert!(cond.message.contains("cni config uninitialized"), "{cond:?}");

    let e =
        c.rt.run_pod_sandbox(RunPodSandboxRequest { config: Some(pod("early", &logs)), ..Default::default() })
            .await
            .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");
    assert!(e.message().contains("cni config uninitialized") && e.message().contains("net.d"), "{e:?}");
    let pods = c.rt.list_pod_sandbox(ListPodSandboxRequest::default()).await.unwrap().into_inner().items;
    assert!(pods.is_empty(), "nothing was made: {pods:?}");
    let left = d.berth(&["ps", "-aq", "--filter", "label=io.berth.namespace"]).ok();
    assert_eq!(left.trim(), "", "no holder container was left");
    // A pod on the node's network needs no CNI.
    let host = c.run_pod(crate::host_network(pod("on-the-node", &logs))).await;
    assert_eq!(ip_of(&mut c, &host).await, "");

    // A config written now is used without a restart.
    std::fs::write(net.conf_dir().join("10-test.conflist"), conflist).unwrap();
    assert!(ready(c.rt.status(StatusRequest::default()).await.unwrap().into_inner()).status);
    let p = c.run_pod(pod("later", &logs)).await;
    assert!(in_subnet(&ip_of(&mut c, &p).await, &net));
    c.remove_pod(&p).await;
    c.remove_pod(&host).await;
}

/// A plugin of the test's own: `script` after `#!/bin/sh`.
fn own_plugin(net: &Net, name: &str, script: &str) {
    let p = net.bin_dir().join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{script}\n")).unwrap();
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

#[tokio::test]
async fn a_failing_plugin_is_reported_and_what_the_plugins_before_it_made_is_undone() {
    let net = Net::new(&[r#"{"type":"refuser"}"#]);
    let asked = net.dir.path().join("refuser.log");
    let script = format!(
        "echo \"$CNI_COMMAND\" >> {}\n[ \"$CNI_COMMAND\" = DEL ] && exit 0\n\
         echo '{{\"cniVersion\":\"1.0.0\",\"code\":100,\"msg\":\"refused by policy\",\"details\":\"pod is not welcome\"}}'\nexit 1",
        asked.display()
    );
    own_plugin(&net, "refuser", &script);
    let d = net.daemon();
    let mut c = connect(&d).await;
    let logs = d.dir.path().join("pod-logs");
    let e =
        c.rt.run_pod_sandbox(RunPodSandboxRequest { config: Some(pod("refused", &logs)), ..Default::default() })
            .await
            .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Internal, "{e:?}");
    assert!(
        e.message().contains(r#"plugin type="refuser""#)
            && e.message().contains("refused by policy: pod is not welcome"),
        "{e:?}"
    );
    assert_eq!(std::fs::read_to_string(&asked).unwrap(), "ADD\nDEL\n", "the chain was deleted again");
    assert_eq!(net.leases(), Vec::<String>::new(), "the bridge plugin's address was released");
    assert_eq!(net.ports(), 0, "no veth is left on the bridge");
    let pods = c.rt.list_pod_sandbox(ListPodSandboxRequest::default()).await.unwrap().into_inner().items;
    assert!(pods.is_empty(), "{pods:?}");
    assert_eq!(d.berth(&["ps", "-aq", "--filter", "label=io.berth.namespace"]).ok().trim(), "");
    let cache = d.data_root().join("cni");
    let records = std::fs::read_dir(&cache).map(|r| r.count()).unwrap_or(0);
    assert_eq!(records, 0, "no attachment record is left in {}", cache.display());
}

#[tokio::test]
async fn pod_networking_survives_a_daemon_restart_and_is_torn_down_after_it() {
    let net = Net::new(&[]);
    let mut d = net.daemon();
    let mut c = connect(&d).await;
    let logs = d.dir.path().join("pod-logs");
    let b = web_pod(&mut c, "server", &logs, "still-here", Vec::new()).await;
    let (a, client) = client_pod(&mut c, "client", &logs).await;
    let ip_b = ip_of(&mut c, &b).await;
    assert_eq!(fetch(&mut c, &client, &ip_b).await, "still-here");
    let ip_a = ip_of(&mut c, &a).await;
    drop(c);

    d.restart();
    let mut c = connect(&d).await;
    assert_eq!((ip_of(&mut c, &a).await, ip_of(&mut c, &b).await), (ip_a.clone(), ip_b.clone()));
    assert_eq!(fetch(&mut c, &client, &ip_b).await, "still-here");
    c.rt.stop_pod_sandbox(StopPodSandboxRequest { pod_sandbox_id: b.clone() }).await.unwrap();
    assert_eq!(net.leases(), vec![ip_a], "DEL after the restart released B's address");
    assert_eq!(net.ports(), 1);
    c.remove_pod(&b).await;
    c.remove_pod(&a).await;
    assert_eq!(net.leases(), Vec::<String>::new());
}

#[tokio::test]
async fn a_plugin_failing_del_fails_the_stop_and_the_remove_deletes_again() {
    // A plugin before the bridge that cannot let go while a flag file exists.
    let net = Net::around(&[r#"{"type":"clingy"}"#], &[]);
    let flag = net.dir.path().join("cling");
    own_plugin(
        &net,
        "clingy",
        &format!(
            "[ \"$CNI_COMMAND\" = ADD ] && {{ echo '{{\"cniVersion\":\"1.0.0\"}}'; exit 0; }}\n\
             [ -e {} ] && {{ echo '{{\"code\":999,\"msg\":\"cannot let go\"}}'; exit 1; }}\nexit 0",
            flag.display()
        ),
    );
    let d = net.daemon();
    let mut c = connect(&d).await;
    let logs = d.dir.path().join("pod-logs");
    let p = c.run_pod(pod("clung", &logs)).await;
    assert!(in_subnet(&ip_of(&mut c, &p).await, &net));
    std::fs::write(&flag, "").unwrap();
    let e = c.rt.stop_pod_sandbox(StopPodSandboxRequest { pod_sandbox_id: p.clone() }).await.unwrap_err();
    assert!(e.message().contains("cannot let go") && e.message().contains("tear down"), "{e:?}");
    // The pod is stopped all the same, and the bridge (DELeted first) let its address go.
    assert_eq!(c.pod_status(&p).await.state, PodSandboxState::SandboxNotready as i32);
    assert_eq!(net.leases(), Vec::<String>::new());
    let e = c.rt.remove_pod_sandbox(RemovePodSandboxRequest { pod_sandbox_id: p.clone() }).await.unwrap_err();
    assert!(e.message().contains("cannot let go"), "the record is kept until DEL succeeds: {e:?}");
    assert_eq!(c.pod_status(&p).await.id, p, "and the pod with it");
    std::fs::remove_file(&flag).unwrap();
    c.rt.remove_pod_sandbox(RemovePodSandboxRequest { pod_sandbox_id: p.clone() }).await.unwrap();
    let pods = c.rt.list_pod_sandbox(ListPodSandboxRequest::default()).await.unwrap().into_inner().items;
    assert!(pods.is_empty(), "{pods:?}");
    assert_eq!(std::fs::read_dir(d.data_root().join("cni")).unwrap().count(), 0, "no record is left");
}

/// The pod's namespace is pinned while it is attached, so DEL reaches it even after the
/// holder died, and never by the holder's PID (another process may have it by then, and the
/// plugins would delete `eth0` in that process's namespace).
#[tokio::test]
async fn del_reaches_the_pods_own_namespace_after_its_holder_died() {
    // A plugin before the bridge that notes which namespace each command was given.
    let net = Net::around(&[r#"{"type":"recorder"}"#], &[]);
    let seen = net.dir.path().join("recorder.log");
    own_plugin(
        &net,
        "recorder",
        &format!(
            "ns=$(stat -L -c %i \"$CNI_NETNS\" 2>/dev/null || echo none)\necho \"$CNI_COMMAND $ns\" >> {}\n\
             [ \"$CNI_COMMAND\" = ADD ] && echo '{{\"cniVersion\":\"1.0.0\"}}'\nexit 0",
            seen.display()
        ),
    );
    let d = net.daemon();
    let mut c = connect(&d).await;
    let logs = d.dir.path().join("pod-logs");
    let p = c.run_pod(pod("pinned", &logs)).await;
    let pid = c.holder_pid(&p).await;
    let ns = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(format!("/proc/{pid}/ns/net")).unwrap());
    let pin = d.data_root().join("cri-netns").join(&p);
    assert_eq!(std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&pin).unwrap()), ns, "the pin is the pod's");
    assert_eq!(std::fs::read_to_string(&seen).unwrap(), format!("ADD {ns}\n"));

    // The holder dies; the pod is not ready, its network still attached.
    Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
    for _ in 0..3000 {
        if c.pod_status(&p).await.state == PodSandboxState::SandboxNotready as i32 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(c.pod_status(&p).await.state, PodSandboxState::SandboxNotready as i32);
    c.rt.stop_pod_sandbox(StopPodSandboxRequest { pod_sandbox_id: p.clone() }).await.unwrap();
    assert_eq!(std::fs::read_to_string(&seen).unwrap(), format!("ADD {ns}\nDEL {ns}\n"), "DEL in the pod's namespace");
    assert!(!pin.exists(), "the pin goes with the attachment");
    assert_eq!(net.leases(), Vec::<String>::new());
    assert_eq!(net.ports(), 0);
    c.remove_pod(&p).await;
}
