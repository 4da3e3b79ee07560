//! Networking as Docker 28 does it where users meet the differences (issue 16, points 9 and
//! 20): `--dns` with the embedded resolver, `container:` hostnames, `--link` on user-defined
//! networks, `host-gateway`, IPv6 off without an IPv6 network, published ports on `[::]`,
//! berth beside dockerd's iptables FORWARD policy, `--add-host` with host networking, FQDN
//! hostnames and the public resolvers fallback. Traffic goes only to 127.0.0.0/8 and to
//! addresses on the bridges of the test's own daemon.

use std::net::{Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use berth_integration::{Daemon, free_port, iptables_chain_for, unique, until_serving, web};

/// A tiny DNS server on `addr`: answers A queries for names under `zone` with `answer`,
/// other queries there with an empty NOERROR, and names elsewhere with NXDOMAIN; records
/// the names asked. Stops when dropped.
struct Responder {
    names: Arc<std::sync::Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Responder {
    fn start(addr: SocketAddr, zone: &'static str, answer: [u8; 4]) -> Responder {
        let sock = UdpSocket::bind(addr).expect("binding the test's DNS responder");
        sock.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let names = Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (n2, s2) = (names.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !s2.load(Ordering::Relaxed) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else { continue };
                let q = &buf[..n];
                let Some((name, qtype, end)) = question(q) else { continue };
                let ours = name.ends_with(zone);
                n2.lock().unwrap().push(name);
                let a = qtype == 1 && ours;
                let mut r = Vec::new();
                r.extend_from_slice(&q[0..2]);
                r.extend_from_slice(&[0x81, if ours { 0x80 } else { 0x83 }, 0, 1, 0, a as u8, 0, 0, 0, 0]);
                r.extend_from_slice(&q[12..end]);
                if a {
                    r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
                    r.extend_from_slice(&answer);
                }
                let _ = sock.send_to(&r, from);
            }
        });
        Responder { names, stop, thread: Some(thread) }
    }

    fn asked(&self) -> Vec<String> {
        self.names.lock().unwrap().clone()
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A loopback address of this process for a DNS responder on port 53 (lo holds all of
/// 127.0.0.0/8; nothing is configured).
fn loopback_for_dns() -> std::net::Ipv4Addr {
    let pid = std::process::id();
    std::net::Ipv4Addr::new(127, 53, (pid >> 8) as u8, pid as u8)
}

/// Point 9a: `--dns` on a user-defined network keeps 127.0.0.11 and makes the given server
/// its upstream: container names still resolve, other names are asked of that server.
#[test]
fn dns_servers_on_a_user_defined_network_are_upstreams_of_the_embedded_resolver() {
    let d = Daemon::with_busybox();
    let net = unique("dnsn");
    d.docker(&["network", "create", &net]).ok();
    let peer = unique("peer");
    d.docker(&["run", "-d", "--name", &peer, "--network", &net, "busybox", "sleep", "300"]).ok();
    let peer_ip = d
        .docker(&["inspect", "-f", &format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}"), &peer])
        .ok();
    let dns = loopback_for_dns();
    let upstream = Responder::start(SocketAddr::from((dns, 53)), ".outside.test", [192, 0, 2, 77]);
    let outside = format!("{}.outside.test", unique("q"));
    let out = d
        .docker(&[
            "run",
            "--rm",
            "--network",
            &net,
            "--dns",
            &dns.to_string(),
            "busybox",
            "sh",
            "-c",
            &format!("cat /etc/resolv.conf; echo ---; nslookup {peer}; echo ---; nslookup {outside}"),
        ])
        .ok();
    let (resolv, rest) = out.split_once("---").unwrap();
    assert!(resolv.contains("nameserver 127.0.0.11"), "{out}");
    assert!(!resolv.contains(&dns.to_string()), "the --dns server is the resolver's upstream, not listed: {out}");
    assert!(resolv.contains("options ndots:0"), "{out}");
    let (names, forwarded) = rest.split_once("---").unwrap();
    assert!(names.contains(peer_ip.trim()), "the other container's name still resolves: {out}");
    assert!(forwarded.contains("192.0.2.77"), "the outside name is answered by the --dns server: {out}");
    assert!(upstream.asked().iter().any(|n| n.eq_ignore_ascii_case(&outside)), "{:?}", upstream.asked());
    assert!(!upstream.asked().contains(&peer), "container names stay local: {:?}", upstream.asked());
    d.docker(&["rm", "-f", &peer]).ok();
    d.docker(&["network", "rm", &net]).ok();
}

/// Point 9b: `--network container:X` takes X's hostname (and its /etc files), as Docker.
#[test]
fn a_container_sharing_another_ones_network_shares_its_hostname() {
    let d = Daemon::with_busybox();
    let x = unique("netx");
    d.docker(&["run", "-d", "--name", &x, "--hostname", "sharedhost", "busybox", "sleep", "300"]).ok();
    let j = unique("joiner");
    let out = d
        .docker(&[
            "run",
            "--name",
            &j,
            "--network",
            &format!("container:{x}"),
            "busybox",
            "sh",
            "-c",
            "hostname; cat /etc/hosts",
        ])
        .ok();
    assert_eq!(out.lines().next(), Some("sharedhost"), "{out}");
    assert!(out.lines().any(|l| l.ends_with("sharedhost")), "X's /etc/hosts: {out}");
    assert_eq!(d.docker(&["inspect", "-f", "{{.Config.Hostname}}", &j]).ok().trim(), "sharedhost");
    d.docker(&["rm", "-f", &j, &x]).ok();
}

/// Point 9c: `--link` on a user-defined network is accepted and its alias resolves, through
/// the docker CLI and as compose 1.29's `run` sends it (HostConfig.Links only).
#[test]
fn links_on_a_user_defined_network_resolve_their_alias() {
    let d = Daemon::with_busybox();
    let net = unique("lnet");
    d.docker(&["network", "create", &net]).ok();
    let srv = unique("lsrv");
    web(&d, &srv, &["--network", &net], "linked-web");
    let get = "for i in $(seq 50); do wget -q -O - http://db/ && exit 0; sleep 0.1; done; exit 1";
    let out =
        d.docker(&["run", "--rm", "--network", &net, "--link", &format!("{srv}:db"), "busybox", "sh", "-c", get]).ok();
    assert_eq!(out.trim(), "linked-web");

    let script = r#"
import sys, docker
c = docker.from_env()
api = c.api
hc = api.create_host_config(network_mode=sys.argv[1], links={sys.argv[2]: "db"})
ct = api.create_container("busybox", ["sh", "-c", sys.argv[3]], host_config=hc)
api.start(ct)
code = api.wait(ct)["StatusCode"]
print(api.logs(ct).decode().strip())
api.remove_container(ct, force=True)
sys.exit(code)
"#;
    let out = d.docker_py(script, &[&net, &srv, get]).ok();
    assert_eq!(out.trim(), "linked-web");
    d.docker(&["rm", "-f", &srv]).ok();
    d.docker(&["network", "rm", &net]).ok();
}

/// Point 9d: `host-gateway` is the default bridge's gateway, reachable from the container;
/// daemon.json's `host-gateway-ip` replaces it.
#[test]
fn host_gateway_is_the_default_bridges_gateway_or_the_configured_address() {
    let mut d = Daemon::with_busybox();
    let gw = format!("{}.1", d.bridge_net);
    // The test listens on its daemon's bridge (not the host's loopback).
    let c = unique("hgw");
    d.docker(&["run", "-d", "--name", &c, "--add-host", "hgw:host-gateway", "busybox", "sleep", "300"]).ok();
    let hosts = d.docker(&["exec", &c, "cat", "/etc/hosts"]).ok();
    assert!(hosts.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == [gw.as_str(), "hgw"]), "{hosts}");
    let l = TcpListener::bind((gw.as_str(), 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    // The line is read as it comes, then the connection closed, which ends nc.
    let got = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut line = String::new();
        let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(s), &mut line);
        line
    });
    let sent = d.docker(&["exec", &c, "sh", "-c", &format!("echo via-gateway | nc hgw {port}")]);
    assert_eq!(got.join().unwrap().trim(), "via-gateway", "{}", sent.stderr);
    d.docker(&["rm", "-f", &c]).ok();

    d.stop();
    d.set_config(r#""host-gateway-ip": "192.0.2.10""#);
    d.spawn();
    let hosts = d.docker(&["run", "--rm", "--add-host", "hgw:host-gateway", "busybox", "cat", "/etc/hosts"]).ok();
    assert!(hosts.contains("192.0.2.10\thgw"), "{hosts}");
    d.stop();
    d.set_config(r#""host-gateway-ip": "not-an-ip""#);
    let err = d.try_spawn().unwrap_err();
    assert!(err.contains("host-gateway-ip"), "{err}");
}

/// Point 9e: without an IPv6 network IPv6 is off inside (not even `::1`), as Docker leaves
/// it; an IPv6 network or the user's `--sysctl` turns it on.
#[test]
fn ipv6_is_off_in_containers_without_an_ipv6_network() {
    let d = Daemon::with_busybox();
    let show =
        "cat /proc/sys/net/ipv6/conf/all/disable_ipv6; ip -6 -o addr | wc -l; grep -c ip6-localhost /etc/hosts || true";
    let out = d.docker(&["run", "--rm", "busybox", "sh", "-c", show]).ok();
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["1", "0", "0"], "default bridge: {out}");
    let out =
        d.docker(&["run", "--rm", "--sysctl", "net.ipv6.conf.all.disable_ipv6=0", "busybox", "sh", "-c", show]).ok();
    assert_eq!(out.split_whitespace().next(), Some("0"), "the user's sysctl wins: {out}");
    let net = unique("v6on");
    let p = format!("fd42:{:x}:9e", std::process::id() & 0xffff);
    d.docker(&["network", "create", "--ipv6", "--subnet", &format!("{p}::/64"), &net]).ok();
    let out = d.docker(&["run", "--rm", "--network", &net, "busybox", "sh", "-c", show]).ok();
    let v: Vec<&str> = out.split_whitespace().collect();
    assert_eq!((v[0], v[2]), ("0", "1"), "an IPv6 network: {out}");
    assert!(v[1].parse::<u32>().unwrap() >= 2, "::1 and the network's address: {out}");
    d.docker(&["network", "rm", &net]).ok();
}

/// Point 9f: a port published without an address is bound on `[::]` too when the host has
/// IPv6 (relayed to an IPv4-only container), as `docker ps` and `docker port` show.
#[test]
fn ports_published_without_an_address_are_on_ipv6_too() {
    let d = Daemon::with_busybox();
    let has_v6 = std::fs::read_to_string("/proc/sys/net/ipv6/conf/all/disable_ipv6").is_ok_and(|v| v.trim() == "0");
    if !has_v6 {
        eprintln!("the host has no IPv6: nothing to check");
        return;
    }
    let port = free_port();
    let srv = unique("p6");
    web(&d, &srv, &["-p", &format!("{port}:80")], "on-both");
    assert!(until_serving(SocketAddr::from((Ipv6Addr::LOCALHOST, port))).contains("on-both"));
    assert!(until_serving(SocketAddr::from(([127, 0, 0, 1], port))).contains("on-both"));
    let ports = d.docker(&["port", &srv, "80"]).ok();
    assert!(ports.contains(&format!("0.0.0.0:{port}")) && ports.contains(&format!("[::]:{port}")), "{ports}");
    let ps = d.docker(&["ps", "--filter", &format!("name={srv}"), "--format", "{{.Ports}}"]).ok();
    assert!(ps.contains(&format!("[::]:{port}->80/tcp")), "{ps}");
    d.docker(&["rm", "-f", &srv]).ok();
    assert!(TcpListener::bind((Ipv6Addr::UNSPECIFIED, port)).is_ok(), "the IPv6 port is given back");
}

/// iptables rules of a test, deleted when dropped (also when the test fails).
struct IptRules(Vec<Vec<String>>);

impl IptRules {
    fn append(&mut self, rule: &[&str]) {
        let r: Vec<String> = rule.iter().map(|s| s.to_string()).collect();
        let ok = Command::new("iptables").args(["-w", "-A"]).args(&r).status().unwrap().success();
        assert!(ok, "iptables -A {rule:?}");
        self.0.push(r);
    }
}

impl Drop for IptRules {
    fn drop(&mut self) {
        for r in &self.0 {
            let _ = Command::new("iptables").args(["-w", "-D"]).args(r).status();
        }
    }
}

/// Point 9g: berth beside dockerd. dockerd turns the iptables FORWARD policy to DROP, and
/// with br_netfilter even frames between two containers of one bridge pass that chain. The
/// test puts that verdict on its own daemon's bridges only (DROP rules at the end of FORWARD,
/// where the policy acts), so other daemons on this host are not disturbed: containers on a
/// user-defined network and on the default bridge still reach each other, published ports
/// answer; without berth's rules the same traffic is dropped.
#[test]
fn berth_traffic_passes_an_iptables_forward_chain_that_drops_the_rest() {
    if Command::new("iptables").args(["-w", "-S", "FORWARD"]).output().map(|o| !o.status.success()).unwrap_or(true) {
        eprintln!("no iptables here: nothing to check");
        return;
    }
    let d = Daemon::with_busybox();
    let net = unique("fwd");
    let id = d.docker(&["network", "create", &net]).ok();
    let br = format!("br-{}", &id.trim()[..12]);
    let mut drops = IptRules(Vec::new());
    for b in [br.as_str(), d.bridge.as_str()] {
        drops.append(&["FORWARD", "-i", b, "-j", "DROP"]);
        drops.append(&["FORWARD", "-o", b, "-j", "DROP"]);
    }
    let srv = unique("fsrv");
    let port = free_port();
    web(&d, &srv, &["--network", &net, "-p", &format!("127.0.0.1:{port}:80")], "through-forward");
    let srv2 = unique("fsrv2");
    web(&d, &srv2, &[], "on-the-default-bridge");
    let ip2 = d.docker(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", &srv2]).ok();
    // (busybox's own timeout: its wget -T crashes in the static build.)
    let get = |url: &str, tries: u32| {
        format!("for i in $(seq {tries}); do timeout 5 wget -q -O - {url} && exit 0; sleep 0.1; done; exit 1")
    };
    let out =
        d.docker(&["run", "--rm", "--network", &net, "busybox", "sh", "-c", &get(&format!("http://{srv}/"), 50)]).ok();
    assert_eq!(out.trim(), "through-forward");
    let out = d.docker(&["run", "--rm", "busybox", "sh", "-c", &get(&format!("http://{}/", ip2.trim()), 50)]).ok();
    assert_eq!(out.trim(), "on-the-default-bridge");
    assert!(until_serving(SocketAddr::from(([127, 0, 0, 1], port))).contains("through-forward"));

    // The control: without berth's jump the DROP applies to the same traffic.
    let chain = iptables_chain_for(&d.data_root());
    assert!(Command::new("iptables").args(["-w", "-D", "FORWARD", "-j", &chain]).status().unwrap().success());
    let r = d.docker(&["run", "--rm", "--network", &net, "busybox", "sh", "-c", &get(&format!("http://{srv}/"), 1)]);
    assert!(r.code != 0, "the test's DROP rules are in force: {}", r.stdout);
    d.docker(&["rm", "-f", &srv, &srv2]).ok();
    d.docker(&["network", "rm", &net]).ok();
    drop(drops);
}

/// Point 20: `--add-host` with `--net=host` is in the container's /etc/hosts. As Docker
/// (>= 27.4) does, the file is then the container's own (so an entry can override one of the
/// host's); without `--add-host` it is the host's.
#[test]
fn add_host_works_with_host_networking() {
    let d = Daemon::with_busybox();
    let out = d
        .docker(&["run", "--rm", "--net", "host", "--add-host", "extra.test:192.0.2.5", "busybox", "cat", "/etc/hosts"])
        .ok();
    assert!(out.contains("192.0.2.5\textra.test"), "{out}");
    assert!(out.contains("127.0.0.1\tlocalhost"), "{out}");
    let plain = d.docker(&["run", "--rm", "--net", "host", "busybox", "cat", "/etc/hosts"]).ok();
    assert_eq!(plain, std::fs::read_to_string("/etc/hosts").unwrap());
}

/// Point 20: an FQDN hostname. As Docker 28 (the docker CLI sends it whole, dockerd keeps
/// it), `--hostname a.b.c` is the kernel's hostname and /etc/hosts names the container
/// `a.b.c a`, so `hostname -s`/`-d`-style lookups find both parts; `--hostname a
/// --domainname b.c` sets the domain name too, with the same /etc/hosts line.
#[test]
fn an_fqdn_hostname_is_named_in_full_and_by_its_first_label() {
    let d = Daemon::with_busybox();
    let show = "cat /proc/sys/kernel/hostname /proc/sys/kernel/domainname; grep -c 'fqdn.example.test fqdn$' /etc/hosts || true";
    for cli in ["docker", "berth"] {
        for (args, want) in [
            (&["--hostname", "fqdn.example.test"][..], ["fqdn.example.test", "(none)", "1"]),
            (&["--hostname", "fqdn", "--domainname", "example.test"][..], ["fqdn", "example.test", "1"]),
        ] {
            let mut a = vec!["run", "--rm"];
            a.extend_from_slice(args);
            a.extend_from_slice(&["busybox", "sh", "-c", show]);
            let out = if cli == "docker" { d.docker(&a).ok() } else { d.berth(&a).ok() };
            assert_eq!(out.split_whitespace().collect::<Vec<_>>(), want, "{cli} {args:?}: {out}");
        }
    }
}

/// Point 20: a host whose resolv.conf names only loopback resolvers gives containers off
/// user-defined networks Docker's public defaults (the IPv6 ones with IPv6); the host network
/// keeps the host's file, user-defined networks the embedded resolver. Only the files are
/// checked: no query leaves.
#[test]
fn resolv_conf_falls_back_to_public_resolvers_when_the_host_has_only_loopback_ones() {
    let mut d = Daemon::with_busybox();
    let host_resolv = d.dir.path().join("host-resolv.conf");
    std::fs::write(&host_resolv, "nameserver 127.0.0.53\nsearch corp.test\n").unwrap();
    d.stop();
    d.env.push(("BERTH_HOST_RESOLV_CONF".into(), host_resolv.display().to_string()));
    d.spawn();
    let servers = |d: &Daemon, args: &[&str]| -> Vec<String> {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["busybox", "cat", "/etc/resolv.conf"]);
        let out = d.docker(&a).ok();
        out.lines().filter_map(|l| l.strip_prefix("nameserver ")).map(String::from).collect()
    };
    assert_eq!(servers(&d, &[]), ["8.8.8.8", "8.8.4.4"]);
    assert_eq!(servers(&d, &["--net", "host"]), ["127.0.0.53"]);
    let net = unique("rnet");
    d.docker(&["network", "create", &net]).ok();
    assert_eq!(servers(&d, &["--network", &net]), ["127.0.0.11"]);
    d.docker(&["network", "rm", &net]).ok();
    // With IPv6 on the default bridge, the IPv6 defaults follow.
    d.stop();
    let p = format!("fd42:{:x}:20", std::process::id() & 0xffff);
    d.set_config(&format!(r#""ipv6": true, "fixed-cidr-v6": "{p}::/64""#));
    d.spawn();
    assert_eq!(servers(&d, &[]), ["8.8.8.8", "8.8.4.4", "2001:4860:4860::8888", "2001:4860:4860::8844"]);
}

/// A bridge name is an interface name and nothing more: `+` and `*` are wildcards in the
/// firewall rules the name lands in (`-i +` would accept all forwarded traffic), so such a
/// name is refused and nothing is made.
#[test]
fn bridge_names_with_firewall_wildcards_are_refused() {
    let d = Daemon::start();
    for bad in ["+", "br*", "a b"] {
        let name = unique("wild");
        let opt = format!("com.docker.network.bridge.name={bad}");
        let err = d.docker(&["network", "create", "-o", &opt, &name]).fails();
        assert!(err.contains("may hold only letters, digits"), "{bad}: {err}");
        assert!(d.docker(&["network", "ls", "-q", "--filter", &format!("name=^{name}$")]).ok().trim().is_empty());
    }
}

/// An upstream DNS server on `addr` with one large record: over UDP it answers every query
/// truncated (TC set, no records), as a server does when the answer does not fit; over TCP
/// it answers with a TXT record of about 3 KiB. Stops when dropped.
struct LargeRecordUpstream {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// The TXT data the upstream holds: twelve 255-byte strings.
const LARGE_TXT: [u8; 255 * 12 + 12] = {
    let mut d = [b'x'; 255 * 12 + 12];
    let mut i = 0;
    while i < 12 {
        d[i * 256] = 255;
        i += 1;
    }
    d
};

impl LargeRecordUpstream {
    fn start(addr: SocketAddr) -> LargeRecordUpstream {
        let stop = Arc::new(AtomicBool::new(false));
        let udp = UdpSocket::bind(addr).expect("binding the test's UDP upstream");
        udp.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let tcp = TcpListener::bind(addr).expect("binding the test's TCP upstream");
        tcp.set_nonblocking(true).unwrap();
        let s = stop.clone();
        let udp_thread = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !s.load(Ordering::Relaxed) {
                let Ok((n, from)) = udp.recv_from(&mut buf) else { continue };
                let Some((_, _, end)) = question(&buf[..n]) else { continue };
                let mut r = buf[..end].to_vec();
                r[2] = 0x80 | 0x02 | (r[2] & 0x01);
                r[3] = 0x80;
                r[6..12].fill(0);
                let _ = udp.send_to(&r, from);
            }
        });
        let s = stop.clone();
        let tcp_thread = std::thread::spawn(move || {
            use std::io::{Read, Write};
            while !s.load(Ordering::Relaxed) {
                let Ok((mut c, _)) = tcp.accept() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                c.set_nonblocking(false).unwrap();
                c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut len = [0u8; 2];
                if c.read_exact(&mut len).is_err() {
                    continue;
                }
                let mut q = vec![0u8; u16::from_be_bytes(len) as usize];
                if c.read_exact(&mut q).is_err() {
                    continue;
                }
                let Some((_, _, end)) = question(&q) else { continue };
                let mut r = q[..end].to_vec();
                r[2] = 0x80 | (r[2] & 0x01);
                r[3] = 0x80;
                r[6..12].copy_from_slice(&[0, 1, 0, 0, 0, 0]);
                r.extend_from_slice(&[0xc0, 0x0c, 0, 16, 0, 1, 0, 0, 0, 60]);
                r.extend_from_slice(&(LARGE_TXT.len() as u16).to_be_bytes());
                r.extend_from_slice(&LARGE_TXT);
                let _ = c.write_all(&[&(r.len() as u16).to_be_bytes()[..], &r].concat());
            }
        });
        LargeRecordUpstream { stop, threads: vec![udp_thread, tcp_thread] }
    }
}

impl Drop for LargeRecordUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// A DNS message's question: its name (lowercased), its type, and where it ends (after the
/// header, the labels, type and class).
fn question(m: &[u8]) -> Option<(String, u16, usize)> {
    let mut pos = 12;
    let mut labels = Vec::new();
    while *m.get(pos)? != 0 {
        let l = m[pos] as usize;
        labels.push(String::from_utf8_lossy(m.get(pos + 1..pos + 1 + l)?).into_owned());
        pos += 1 + l;
    }
    let qtype = u16::from_be_bytes([*m.get(pos + 1)?, *m.get(pos + 2)?]);
    (pos + 5 <= m.len()).then(|| (labels.join(".").to_ascii_lowercase(), qtype, pos + 5))
}

fn dns_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&[0, 1]);
    q
}

/// Issue 18 point 5: the embedded resolver answers over TCP as well as UDP, as Docker's and
/// aardvark-dns do. A large record the upstream can only send truncated over UDP arrives
/// whole when the client asks again over TCP (the resolver asks upstream over TCP too), and
/// container names resolve over TCP. The queries are sent from inside the asking
/// container's network namespace, to 127.0.0.11:53, as its libc would send them.
#[test]
fn the_embedded_resolver_answers_over_tcp_and_large_answers_arrive_whole() {
    use std::io::{Read, Write};
    let d = Daemon::with_busybox();
    let net = unique("dnstcp");
    d.docker(&["network", "create", &net]).ok();
    let peer = unique("peer");
    d.docker(&["run", "-d", "--name", &peer, "--network", &net, "busybox", "sleep", "300"]).ok();
    let peer_ip: std::net::Ipv4Addr = d
        .docker(&["inspect", "-f", &format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}"), &peer])
        .ok()
        .trim()
        .parse()
        .unwrap();
    let pid = std::process::id();
    let dns = std::net::Ipv4Addr::new(127, 54, (pid >> 8) as u8, pid as u8);
    let _upstream = LargeRecordUpstream::start(SocketAddr::from((dns, 53)));
    let asker = unique("asker");
    d.docker(&["run", "-d", "--name", &asker, "--network", &net, "--dns", &dns.to_string(), "busybox", "sleep", "300"])
        .ok();
    let asker_pid = d.docker(&["inspect", "-f", "{{.State.Pid}}", &asker]).ok().trim().to_string();
    let netns = std::fs::File::open(format!("/proc/{asker_pid}/ns/net")).unwrap();
    let big = format!("{}.outside.test", unique("big"));
    let (udp_reply, tcp_replies) = std::thread::scope(|s| {
        s.spawn(|| {
            rustix::thread::move_into_link_name_space(
                std::os::fd::AsFd::as_fd(&netns),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .expect("entering the container's network namespace");
            let resolver = SocketAddr::from(([127, 0, 0, 11], 53));
            let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
            udp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            udp.send_to(&dns_query(1, &big, 16), resolver).unwrap();
            let mut buf = [0u8; 4096];
            let n = udp.recv(&mut buf).expect("a UDP answer");
            let udp_reply = buf[..n].to_vec();
            let mut tcp = std::net::TcpStream::connect(resolver).expect("the resolver listens on TCP");
            tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut replies = Vec::new();
            for (id, q) in [(2, dns_query(2, &peer, 1)), (3, dns_query(3, &big, 16))] {
                tcp.write_all(&[&(q.len() as u16).to_be_bytes()[..], &q].concat()).unwrap();
                let mut len = [0u8; 2];
                tcp.read_exact(&mut len).expect("a TCP answer");
                let mut r = vec![0u8; u16::from_be_bytes(len) as usize];
                tcp.read_exact(&mut r).unwrap();
                assert_eq!(u16::from_be_bytes([r[0], r[1]]), id);
                replies.push(r);
            }
            (udp_reply, replies)
        })
        .join()
        .unwrap()
    });
    assert_ne!(udp_reply[2] & 0x02, 0, "over UDP the large answer comes truncated: {udp_reply:?}");
    let peer_reply = &tcp_replies[0];
    assert_eq!(u16::from_be_bytes([peer_reply[6], peer_reply[7]]), 1, "{peer_reply:?}");
    assert!(peer_reply.ends_with(&peer_ip.octets()), "the peer's address over TCP: {peer_reply:?}");
    let big_reply = &tcp_replies[1];
    assert_eq!(big_reply[2] & 0x02, 0, "over TCP the answer is not truncated");
    assert!(
        big_reply.ends_with(&LARGE_TXT),
        "the whole {}-byte record over TCP: {} bytes",
        LARGE_TXT.len(),
        big_reply.len()
    );
    d.docker(&["rm", "-f", &asker, &peer]).ok();
    d.docker(&["network", "rm", &net]).ok();
}
