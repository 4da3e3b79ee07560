//! Overlay networks across hosts with etcd as the cluster store.
//!
//! Each test builds a small private cluster: a "switch" namespace with a Linux bridge and
//! one etcd (Debian's etcd-server) on an address of that bridge, and three "host"
//! namespaces cabled to it by veths, each running its own berth daemon advertising its
//! cable's address. Nothing leaves these namespaces. If etcd is not installed the tests
//! say so and return.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_integration::{Daemon, TestNs, sh_in, table_for, unique};

const STORE: &str = "192.168.250.100";
/// Lease TTL of the test daemons: a silent host is forgotten this quickly.
const TTL: u64 = 4;

/// etcd running inside the switch namespace; killed on drop (its data dir is a tempdir).
struct Etcd {
    child: Option<Child>,
    dir: tempfile::TempDir,
    ns: String,
}

impl Etcd {
    fn start(ns: &TestNs) -> Etcd {
        let mut e = Etcd { child: None, dir: tempfile::tempdir().unwrap(), ns: ns.0.clone() };
        e.spawn();
        e
    }

    fn spawn(&mut self) {
        let client = format!("http://{STORE}:2379");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns, "etcd", "--name", "berth-test", "--data-dir"])
            .arg(self.dir.path().join("data"))
            .args(["--listen-client-urls", &client, "--advertise-client-urls", &client])
            .args([
                "--listen-peer-urls",
                "http://127.0.0.1:2380",
                "--initial-advertise-peer-urls",
                "http://127.0.0.1:2380",
            ])
            .args(["--initial-cluster", "berth-test=http://127.0.0.1:2380"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting etcd");
        self.child = Some(child);
        let ok = until(Duration::from_secs(30), || {
            sh_in(&self.ns, &format!("timeout 2 busybox wget -q -O - http://{STORE}:2379/health")).1.contains("true")
        });
        assert!(ok, "etcd did not become healthy");
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Polls `f` until it holds or `limit` passes.
fn until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// Three hosts on one switch, one etcd, a daemon per host. Fields drop in order: daemons
/// first, then etcd, then the namespaces.
struct Cluster {
    daemons: Vec<Daemon>,
    etcd: Etcd,
    hosts: Vec<TestNs>,
    switch: TestNs,
}

fn etcd_installed() -> bool {
    if Path::new("/usr/bin/etcd").exists()
        || Command::new("sh").args(["-c", "command -v etcd"]).stdout(Stdio::null()).status().is_ok_and(|s| s.success())
    {
        return true;
    }
    eprintln!("skipping: etcd is not installed (apt-get install etcd-server, or scripts/deps.sh)");
    false
}

impl Cluster {
    fn new(n: usize) -> Cluster {
        let switch = TestNs::new("osw");
        assert!(
            switch
                .sh(&format!("ip link add br0 type bridge && ip addr add {STORE}/24 dev br0 && ip link set br0 up"))
                .0
        );
        let mut hosts = Vec::new();
        for i in 1..=n {
            let h = TestNs::new(&format!("oh{i}"));
            let port = format!("p{i}");
            assert!(
                Command::new("ip")
                    .args([
                        "link", "add", "eth1", "netns", &h.0, "type", "veth", "peer", "name", &port, "netns", &switch.0
                    ])
                    .status()
                    .unwrap()
                    .success()
            );
            assert!(switch.sh(&format!("ip link set {port} master br0 up")).0);
            // Forwarding on, so published ports answer other hosts.
            assert!(
                h.sh(&format!(
                    "ip addr add 192.168.250.{i}/24 dev eth1 && ip link set eth1 up && sysctl -qw net.ipv4.ip_forward=1"
                ))
                .0
            );
            hosts.push(h);
        }
        let etcd = Etcd::start(&switch);
        let daemons = hosts.iter().map(|h| cluster_daemon(h, &format!("etcd://{STORE}:2379"), "eth1")).collect();
        Cluster { daemons, etcd, hosts, switch }
    }

    /// Cuts (or restores) host `i`'s cable at the switch.
    fn cable(&self, i: usize, up: bool) {
        assert!(self.switch.sh(&format!("ip link set p{} {}", i + 1, if up { "up" } else { "down" })).0);
    }
}

/// A daemon in `ns` joined to `store`, advertising `advertise` (an address or interface).
fn cluster_daemon(ns: &TestNs, store: &str, advertise: &str) -> Daemon {
    let mut d = Daemon::start_in(Some(&ns.0), &[]);
    d.set_config(&format!(r#""cluster-store": "{store}", "cluster-advertise": "{advertise}", "cluster-store-opts": {{"discovery.ttl": "{TTL}", "discovery.heartbeat": "1"}}"#));
    d.restart();
    d.import_busybox("busybox:latest");
    d
}

/// Runs a one-shot container on `net` that retries `cmd` for up to ~10 s.
fn from_container(d: &Daemon, net: &str, cmd: &str) -> berth_integration::Run {
    let script = format!("for i in $(seq 100); do {cmd} && exit 0; sleep 0.1; done; exit 1");
    d.berth(&["run", "--rm", "--network", net, "busybox", "sh", "-c", &script])
}

fn ip_on(d: &Daemon, net: &str, name: &str) -> String {
    d.berth(&["inspect", "-f", &format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}"), name])
        .ok()
        .trim()
        .to_string()
}

fn web(d: &Daemon, net: &str, name: &str, body: &str, extra: &[&str]) {
    let script = format!("mkdir -p /www && echo {body} > /www/index.html && exec httpd -f -p 80 -h /www");
    let mut args = vec!["run", "-d", "--name", name, "--network", net];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["busybox", "sh", "-c", &script]);
    d.berth(&args).ok();
}

fn sees_network(d: &Daemon, net: &str) -> bool {
    d.berth(&["network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Scope}}"])
        .stdout
        .lines()
        .any(|l| l == format!("{net} overlay global"))
}

#[test]
fn containers_on_different_hosts_reach_each_other_by_address_and_name() {
    if !etcd_installed() {
        return;
    }
    let c = Cluster::new(3);
    let (h1, h2, h3) = (&c.daemons[0], &c.daemons[1], &c.daemons[2]);
    let net = unique("ov");
    let id = h1
        .berth(&["network", "create", "-d", "overlay", "--subnet", "10.20.0.0/16", "--attachable", &net])
        .ok()
        .trim()
        .to_string();
    for d in [h2, h3] {
        assert!(until(Duration::from_secs(10), || sees_network(d, &net)), "the network reached every host");
        assert_eq!(
            d.berth(&["network", "inspect", "-f", "{{.Id}} {{.Driver}} {{.Scope}}", &net]).ok().trim(),
            format!("{id} overlay global")
        );
    }
    assert_eq!(
        h2.berth(&[
            "network",
            "inspect",
            "-f",
            "{{index .Options \"com.docker.network.driver.overlay.vxlanid_list\"}}",
            &net
        ])
        .ok()
        .trim(),
        "4096"
    );
    // Every host's firewall knows the network's bridge as soon as it knows the network (it
    // used to learn of it only when a port was published).
    for (d, h) in c.daemons.iter().zip(&c.hosts) {
        let rules = || h.sh(&format!("nft list table inet {}", table_for(&d.data_root()))).1;
        assert!(until(Duration::from_secs(10), || rules().contains("\"ovbr4096\"")), "{}", rules());
    }

    // Host 3 has the network's kernel side as berth made it before overlay containers got
    // macvlan interfaces on the VXLAN device: a bridge with the VXLAN device as a port (what
    // a kernel without macvlan still gets). Its containers get veths on that bridge and
    // reach the other hosts' all the same (a daemon upgrade keeps a network's layout).
    assert!(
        c.hosts[2]
            .sh("ip link add ovvx4096 type vxlan id 4096 dstport 4789 local 192.168.250.3 nolearning proxy noudpcsum \
        && ip link add ovbr4096 mtu 1450 type bridge && ip addr add 10.20.0.1/16 dev ovbr4096 \
        && ip link set ovvx4096 mtu 1450 master ovbr4096 up && ip link set ovbr4096 up")
            .0
    );

    let web1 = unique("web");
    web(h1, &net, &web1, "from-host-1", &["--network-alias", "front", "-p", "8080:80"]);
    let ip1 = ip_on(h1, &net, &web1);
    let started = Instant::now();
    let by_name = from_container(h2, &net, &format!("timeout 2 wget -q -O - http://{web1}/"));
    eprintln!("a name registered on host 1 answered on host 2 {:?} after `run` returned", started.elapsed());
    assert_eq!(by_name.ok().trim(), "from-host-1");
    assert_eq!(
        from_container(h3, &net, "timeout 2 wget -q -O - http://front/").ok().trim(),
        "from-host-1",
        "aliases resolve across hosts"
    );
    assert!(
        from_container(h3, &net, &format!("ping -c1 -W2 {ip1} >/dev/null")).code == 0,
        "ping by address across hosts"
    );

    // Addresses are unique cluster-wide, and containers on host 2 and 3 reach each other too.
    let b2 = unique("b");
    h2.berth(&["run", "-d", "--name", &b2, "--network", &net, "busybox", "sleep", "1000"]).ok();
    let ip2 = ip_on(h2, &net, &b2);
    assert_ne!(ip1, ip2);
    assert!(
        from_container(h3, &net, &format!("ping -c1 -W2 {b2} >/dev/null")).code == 0,
        "host 3 reaches host 2's container by name"
    );
    let mtu = h2.berth(&["run", "--rm", "--network", &net, "busybox", "cat", "/sys/class/net/eth0/mtu"]).ok();
    assert_eq!(mtu.trim(), "1450", "room for the VXLAN header");
    // Hosts 1 and 2 made the network the current way: the gateway is a macvlan interface on
    // the VXLAN device; host 3 plumbed its containers onto the bridge it found.
    let gw = c.hosts[0].sh("ip -d link show ovbr4096").1;
    assert!(gw.contains("macvlan mode bridge"), "{gw}");
    let b3 = h3.berth(&["run", "-d", "--network", &net, "busybox", "sleep", "1000"]).ok().trim().to_string();
    let ports = c.hosts[2].sh("ls /sys/class/net/ovbr4096/brif").1;
    assert!(ports.contains(&format!("veth{}", &b3[..7])), "host 3's container is on the existing bridge: {ports}");
    h3.berth(&["rm", "-f", &b3]).ok();
    // Containers on one host reach each other, and the host reaches its containers.
    assert_eq!(
        from_container(h1, &net, "timeout 2 wget -q -O - http://front/").ok().trim(),
        "from-host-1",
        "same host, by alias"
    );
    let local = c.hosts[0].sh(&format!("timeout 2 busybox wget -q -O - http://{ip1}/"));
    assert_eq!(local.1.trim(), "from-host-1", "host 1 reaches its container through the gateway");

    // A running container joins the network and leaves it again.
    let joiner = unique("j");
    h2.berth(&["run", "-d", "--name", &joiner, "busybox", "sleep", "1000"]).ok();
    h2.berth(&["network", "connect", &net, &joiner]).ok();
    let ping = format!("for i in $(seq 50); do ping -c1 -W1 {ip1} >/dev/null && exit 0; done; exit 1");
    assert_eq!(h2.berth(&["exec", &joiner, "sh", "-c", &ping]).code, 0, "a connected container reaches host 1's");
    h2.berth(&["network", "disconnect", &net, &joiner]).ok();
    assert_eq!(
        h2.berth(&["exec", &joiner, "ls", "/sys/class/net"]).ok().split_whitespace().collect::<Vec<_>>(),
        ["eth0", "lo"],
        "its overlay interface is gone"
    );
    // A MAC already used on the network is refused by name, and nothing is left behind.
    let mac2 = h2
        .berth(&["inspect", "-f", &format!("{{{{(index .NetworkSettings.Networks \"{net}\").MacAddress}}}}"), &b2])
        .ok()
        .trim()
        .to_string();
    let body = format!(r#"{{"Container":"{joiner}","EndpointConfig":{{"MacAddress":"{mac2}"}}}}"#);
    let sock = h2.host().trim_start_matches("unix://").to_string();
    let refused = c.hosts[1].sh(&format!("curl -s --unix-socket {sock} -H 'Content-Type: application/json' -d '{body}' http://x/networks/{net}/connect")).1;
    assert!(refused.contains(&format!("MAC address {mac2} is already in use")), "{refused}");
    assert_eq!(
        h2.berth(&["exec", &joiner, "ls", "/sys/class/net"]).ok().split_whitespace().collect::<Vec<_>>(),
        ["eth0", "lo"],
        "no half-made interface"
    );
    h2.berth(&["rm", "-f", &joiner]).ok();

    // A container restarted at once, while its old namespace lives on (another container
    // shares it), gets its address and MAC back and is reached by name again.
    let side = unique("side");
    h2.berth(&["run", "-d", "--name", &side, "--network", &format!("container:{b2}"), "busybox", "sleep", "1000"]).ok();
    h2.berth(&["restart", "-t", "0", &b2]).ok();
    assert_eq!(ip_on(h2, &net, &b2), ip2, "same address after the restart");
    assert!(
        from_container(h3, &net, &format!("ping -c1 -W2 {b2} >/dev/null")).code == 0,
        "the restarted container is reached"
    );
    h2.berth(&["rm", "-f", &side]).ok();

    // Host 2's VXLAN device is deleted behind the daemon's back (the gateway and the
    // container's interface go with it): the next sync makes them again.
    assert!(c.hosts[1].sh("ip link del ovvx4096").0);
    assert!(
        from_container(h3, &net, &format!("ping -c1 -W1 {b2} >/dev/null")).code == 0,
        "host 2's container is reached again"
    );
    let route = h2.berth(&["exec", &b2, "ip", "route"]).ok();
    assert!(route.contains("default via 10.20.0.1 dev eth0"), "its default route is back: {route}");

    // The published port answers on host 1's address, from host 2's namespace.
    let get = c.hosts[1].sh("for i in $(seq 50); do timeout 2 busybox wget -q -O - http://192.168.250.1:8080/ && exit 0; sleep 0.1; done; exit 1");
    assert_eq!(get.1.trim(), "from-host-1", "published port on an overlay container");

    // In use on host 1: no host may remove it; once free, any host can, and all forget it.
    let err = h3.berth(&["network", "rm", &net]).fails();
    assert!(err.contains("active endpoints"), "{err}");
    h1.berth(&["rm", "-f", &web1]).ok();
    h2.berth(&["rm", "-f", &b2]).ok();
    h3.berth(&["network", "rm", &net]).ok();
    for d in [h1, h2] {
        assert!(until(Duration::from_secs(10), || !sees_network(d, &net)), "the network is gone everywhere");
    }
    let _ = &c.etcd;
}

#[test]
fn hosts_that_stop_or_are_cut_off_are_forgotten_and_rejoin() {
    if !etcd_installed() {
        return;
    }
    let mut c = Cluster::new(3);
    let net = unique("ovr");
    c.daemons[0].berth(&["network", "create", "-d", "overlay", "--subnet", "10.30.0.0/24", &net]).ok();
    for d in &c.daemons[1..] {
        assert!(until(Duration::from_secs(10), || sees_network(d, &net)));
    }
    let names: Vec<String> = (0..3).map(|_| unique("s")).collect();
    for (d, n) in c.daemons.iter().zip(&names) {
        d.berth(&["run", "-d", "--name", n, "--network", &net, "busybox", "sleep", "1000"]).ok();
    }
    // Probes run in the long-lived containers: starting a new one needs the store.
    let reaches = |c: &Cluster, from: usize, name: &str| {
        c.daemons[from].berth(&["exec", &names[from], "ping", "-c1", "-W1", name]).code == 0
    };
    let resolves = |c: &Cluster, from: usize, name: &str| {
        c.daemons[from].berth(&["exec", &names[from], "nslookup", name, "127.0.0.11"]).code == 0
    };
    assert!(until(Duration::from_secs(10), || reaches(&c, 0, &names[2])), "host 1 reaches host 3");

    // Host 3's daemon stops (its container keeps running): after its lease expires the
    // others forget its endpoints; when it comes back it registers them again.
    c.daemons[2].stop();
    assert!(
        until(Duration::from_secs(TTL * 5), || !resolves(&c, 0, &names[2])),
        "host 3's endpoints expired with its lease"
    );
    c.daemons[2].spawn();
    assert!(until(Duration::from_secs(15), || reaches(&c, 0, &names[2])), "host 3 rejoined and is reachable again");

    // Host 2's cable is cut: the cluster forgets it; once the cable is back, it rejoins.
    c.cable(1, false);
    assert!(until(Duration::from_secs(TTL * 5), || !resolves(&c, 0, &names[1])), "cut-off host 2 expired");
    assert!(reaches(&c, 0, &names[2]), "the other hosts are not affected");
    c.cable(1, true);
    assert!(until(Duration::from_secs(20), || reaches(&c, 0, &names[1])), "host 2 is back after the partition healed");
    assert!(until(Duration::from_secs(10), || reaches(&c, 1, &names[0])), "and reaches the others");

    // etcd itself goes away and comes back (same data): running containers keep talking
    // meanwhile, and the cluster converges after.
    c.etcd.stop();
    assert!(reaches(&c, 1, &names[2]), "the data plane outlives the store");
    c.etcd.spawn();
    let late = unique("late");
    let started = until(Duration::from_secs(20), || {
        let _ = c.daemons[2].berth(&["rm", "-f", &late]);
        c.daemons[2].berth(&["run", "-d", "--name", &late, "--network", &net, "busybox", "sleep", "1000"]).code == 0
    });
    assert!(started, "overlay containers start again once the store is back");
    assert!(
        until(Duration::from_secs(15), || reaches(&c, 0, &late)),
        "a container started after the store returned is reachable"
    );
}

#[test]
fn bad_input_and_an_unreachable_store_give_clear_errors() {
    if !etcd_installed() {
        return;
    }
    let c = Cluster::new(1);
    let h = &c.daemons[0];
    let a = unique("ova");
    h.berth(&["network", "create", "-d", "overlay", "--subnet", "10.40.0.0/16", "-o", "vxlan-id=4242", &a]).ok();
    let err = h
        .berth(&[
            "network",
            "create",
            "-d",
            "overlay",
            "--subnet",
            "10.41.0.0/16",
            "-o",
            "vxlan-id=4242",
            &unique("ovb"),
        ])
        .fails();
    assert!(err.contains("VXLAN ID 4242 is already used by overlay network"), "{err}");
    let err = h.berth(&["network", "create", "-d", "overlay", "--subnet", "10.40.8.0/24", &unique("ovc")]).fails();
    assert!(err.contains("overlaps"), "{err}");
    let err = h
        .berth(&[
            "network",
            "create",
            "-d",
            "overlay",
            "-o",
            "com.docker.network.driver.overlay.vxlanid_list=0",
            &unique("ovd"),
        ])
        .fails();
    assert!(err.contains("invalid VXLAN ID"), "{err}");
    let err = h.berth(&["network", "create", "-d", "overlay", "-o", "encrypted", &unique("ove")]).fails();
    assert!(err.contains("not yet available"), "{err}");
    let err = h.berth(&["network", "create", "-d", "overlay", &a]).fails();
    assert!(err.contains("already exists"), "{err}");
    // Without a subnet one comes from 10.0.0.0/8.
    let f = unique("ovf");
    h.berth(&["network", "create", "-d", "overlay", &f]).ok();
    assert_eq!(
        h.berth(&["network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}}{{end}}", &f]).ok().trim(),
        "10.0.0.0/24"
    );

    // A daemon whose store does not answer starts, runs local networks, and refuses
    // overlay ones saying why.
    let lonely = TestNs::new("olo");
    let d = cluster_daemon(&lonely, "etcd://127.0.0.1:9", "127.0.0.1");
    let err = d.berth(&["network", "create", "-d", "overlay", &unique("ovg")]).fails();
    assert!(err.contains("cluster store etcd://127.0.0.1:9 is unreachable"), "{err}");
    let local = unique("loc");
    d.berth(&["network", "create", &local]).ok();
    let out = d.berth(&["run", "--rm", "--network", &local, "busybox", "ip", "-4", "-o", "addr", "show", "eth0"]).ok();
    assert!(out.contains("inet "), "{out}");
    // And a daemon without a store explains what overlay networks need.
    let plain = Daemon::start_in(Some(&lonely.0), &[]);
    let err = plain.berth(&["network", "create", "-d", "overlay", &unique("ovh")]).fails();
    assert!(err.contains("--cluster-store"), "{err}");
}
