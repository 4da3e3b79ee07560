//! IPv6: dual-stack networks (addresses, routes, names, published ports over IPv6), the
//! default bridge with IPv6 from the daemon's settings, forwarding that keeps the host's
//! router advertisements, and the bad input IPv6 brings. Subnets are unique local ones
//! (fd42:…) that only exist on this machine; traffic goes to containers and host addresses.

use std::net::{Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use berth_integration::{Daemon, TestNs, free_port, unique, until_serving, web};

/// A /64 prefix for one test, unique per process and call: `fd42:PID:N`.
fn prefix6() -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("fd42:{:x}:{n:x}", std::process::id() & 0xffff)
}

fn endpoint_field(d: &Daemon, container: &str, net: &str, field: &str) -> String {
    d.berth(&["inspect", "-f", &format!("{{{{(index .NetworkSettings.Networks \"{net}\").{field}}}}}"), container])
        .ok()
        .trim()
        .to_string()
}

#[test]
fn ipv6_networks_give_containers_addresses_routes_and_names() {
    let d = Daemon::with_busybox();
    let p = prefix6();
    let net = unique("v6n");
    d.berth(&["network", "create", "--ipv6", "--subnet", &format!("{p}::/64"), &net]).ok();
    let cfg = d.berth(&["network", "inspect", "-f", "{{json .IPAM.Config}}", &net]).ok();
    assert!(
        cfg.contains(&format!(r#""Subnet":"{p}::/64""#)) && cfg.contains(&format!(r#""Gateway":"{p}::1""#)),
        "{cfg}"
    );
    assert!(cfg.contains(r#""Subnet":"10."#), "dual-stack: the network keeps an IPv4 subnet: {cfg}");

    let srv = unique("w6");
    web(&d, &srv, &["--network", &net], "hello-over-v6");
    let addr = endpoint_field(&d, &srv, &net, "GlobalIPv6Address");
    assert!(addr.starts_with(&format!("{p}::")), "{addr}");
    assert_eq!(endpoint_field(&d, &srv, &net, "GlobalIPv6PrefixLen"), "64");
    assert_eq!(endpoint_field(&d, &srv, &net, "IPv6Gateway"), format!("{p}::1"));

    let script = format!(
        "ip -6 -o addr show eth0 scope global; ip -6 route show default; nslookup -type=aaaa {srv} 127.0.0.11; \
         for i in $(seq 50); do wget -q -O - http://[{addr}]/ && break; sleep 0.1; done; ping -6 -c1 -W5 {srv} >/dev/null && echo pinged-by-name; grep {p} /etc/hosts"
    );
    let out = d.berth(&["run", "--rm", "--network", &net, "busybox", "sh", "-c", &script]).ok();
    assert!(out.contains(&format!("inet6 {p}::")), "{out}");
    assert!(out.contains(&format!("default via {p}::1")), "{out}");
    assert!(out.contains(&format!("Address: {addr}")), "the resolver answers AAAA: {out}");
    assert!(out.contains("hello-over-v6"), "{out}");
    assert!(out.contains("pinged-by-name"), "{out}");
    assert!(
        out.lines().any(|l| l.starts_with(&format!("{p}::")) && !l.contains(&srv)),
        "its own IPv6 address is in /etc/hosts: {out}"
    );

    let members = d.berth(&["network", "inspect", "-f", "{{json .Containers}}", &net]).ok();
    assert!(members.contains(&format!(r#""IPv6Address":"{addr}/64""#)), "{members}");
    d.berth(&["rm", "-f", &srv]).ok();
    d.berth(&["network", "rm", &net]).ok();
}

#[test]
fn ipv6_without_a_subnet_gets_a_unique_local_one() {
    let d = Daemon::with_busybox();
    let net = unique("v6auto");
    // Through the docker CLI, as users type it.
    d.docker(&["network", "create", "--ipv6", &net]).ok();
    let cfg = d.docker(&["network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{end}}", &net]).ok();
    let v6 = cfg.split_whitespace().find(|s| s.contains(':')).unwrap_or_else(|| panic!("no IPv6 subnet: {cfg}"));
    assert!(v6.starts_with("fd") && v6.ends_with("::/64"), "{v6}");
    let out = d
        .docker(&[
            "run",
            "--rm",
            "--network",
            &net,
            "busybox",
            "ip",
            "-6",
            "-o",
            "addr",
            "show",
            "eth0",
            "scope",
            "global",
        ])
        .ok();
    assert!(out.contains(&format!("inet6 {}", v6.trim_end_matches(":/64"))), "{out} not in {v6}");
    d.berth(&["network", "rm", &net]).ok();
}

#[test]
fn ports_published_on_an_ipv6_network_answer_over_ipv6_also_after_a_daemon_restart() {
    let mut d = Daemon::with_busybox();
    let p = prefix6();
    let net = unique("v6p");
    d.berth(&["network", "create", "--ipv6", "--subnet", &format!("{p}::/64"), &net]).ok();
    let port = free_port();
    let srv = unique("p6");
    web(&d, &srv, &["--network", &net, "-p", &format!("{port}:80")], "published-v6");
    let v4 = SocketAddr::from(([127, 0, 0, 1], port));
    let lo6 = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
    // The bridge's own address is one of the host's: published ports answer there too.
    let gw6 = SocketAddr::new(format!("{p}::1").parse().unwrap(), port);
    assert!(until_serving(v4).contains("published-v6"));
    assert!(until_serving(lo6).contains("published-v6"), "IPv6 loopback");
    assert!(until_serving(gw6).contains("published-v6"), "a host IPv6 address");
    let ports = d.berth(&["port", &srv, "80"]).ok();
    assert!(ports.contains(&format!("0.0.0.0:{port}")) && ports.contains(&format!("[::]:{port}")), "{ports}");

    // A restarted daemon takes its ports back (the relay's connections leave TIME-WAIT).
    d.stop();
    d.spawn();
    assert!(until_serving(lo6).contains("published-v6"), "IPv6 loopback after a restart");
    assert!(until_serving(gw6).contains("published-v6"), "a host IPv6 address after a restart");

    d.berth(&["rm", "-f", &srv]).ok();
    assert!(TcpStream::connect_timeout(&lo6, Duration::from_secs(2)).is_err(), "the port is closed with the container");
    assert!(TcpListener::bind(lo6).is_ok(), "and given back");
    d.berth(&["network", "rm", &net]).ok();
}

/// A port published on `::` for a container without IPv6 is relayed to its IPv4 address, as
/// Docker's userland proxy does; so is the plain form's IPv6 side (on a host with IPv6).
#[test]
fn ipv6_ports_of_an_ipv4_only_container_are_relayed() {
    let d = Daemon::with_busybox();
    let (p4, p6) = (free_port(), free_port());
    let srv = unique("r4");
    web(&d, &srv, &["-p", &format!("{p4}:80"), "-p", &format!("[::]:{p6}:80")], "relayed-to-v4");
    assert!(until_serving(SocketAddr::from((Ipv6Addr::LOCALHOST, p6))).contains("relayed-to-v4"));
    assert!(until_serving(SocketAddr::from(([127, 0, 0, 1], p4))).contains("relayed-to-v4"));
    let ports = d.berth(&["port", &srv, "80"]).ok();
    assert!(ports.contains(&format!("[::]:{p6}")) && ports.contains(&format!("[::]:{p4}")), "{ports}");
    d.berth(&["rm", "-f", &srv]).ok();
    assert!(TcpListener::bind((Ipv6Addr::LOCALHOST, p6)).is_ok(), "the relay's port is given back");
}

#[test]
fn the_default_bridge_gets_ipv6_from_the_daemon_settings() {
    let mut d = Daemon::with_busybox();
    let p = prefix6();
    d.stop();
    d.set_config(&format!(r#""ipv6": true, "fixed-cidr-v6": "{p}::/64""#));
    d.spawn();
    let out = d
        .berth(&[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "ip -6 -o addr show eth0 scope global; ip -6 route show default",
        ])
        .ok();
    assert!(out.contains(&format!("inet6 {p}::")), "{out}");
    assert!(out.contains(&format!("default via {p}::1")), "{out}");
    let c = unique("b6");
    d.berth(&["run", "-d", "--name", &c, "busybox", "sleep", "100"]).ok();
    let shown =
        d.berth(&["inspect", "-f", "{{.NetworkSettings.GlobalIPv6Address}} {{.NetworkSettings.IPv6Gateway}}", &c]).ok();
    assert!(shown.starts_with(&format!("{p}::")) && shown.trim().ends_with(&format!("{p}::1")), "{shown}");
    assert_eq!(d.berth(&["network", "inspect", "-f", "{{.EnableIPv6}}", "bridge"]).ok().trim(), "true");
    d.berth(&["rm", "-f", &c]).ok();

    // Settings that cannot work stop the daemon with a message naming them.
    d.stop();
    d.set_config(r#""ipv6": false, "fixed-cidr-v6": "fd42:ffff::/64""#);
    let err = d.try_spawn().unwrap_err();
    assert!(err.contains("fixed-cidr-v6"), "{err}");
}

#[test]
fn ipv6_bad_input_is_refused_naming_the_problem_and_leaves_nothing() {
    let d = Daemon::with_busybox();
    let p = prefix6();
    let (good, bad) = (unique("v6ok"), unique("v6bad"));
    let listed = |name: &str| !d.berth(&["network", "ls", "-q", "-f", &format!("name={name}")]).ok().trim().is_empty();

    // An IPv6 subnet alone turns IPv6 on (what giving one means).
    d.berth(&["network", "create", "--subnet", &format!("{p}::/64"), &good]).ok();
    assert_eq!(d.berth(&["network", "inspect", "-f", "{{.EnableIPv6}}", &good]).ok().trim(), "true");
    let err = d.berth(&["network", "create", "--ipv6", "--subnet", &format!("{p}::/80"), &bad]).fails();
    assert!(err.contains("overlaps") && err.contains(&good), "{err}");
    let err = d
        .berth(&[
            "network",
            "create",
            "--ipv6",
            "--subnet",
            &format!("{p}:1::/64"),
            "--gateway",
            &format!("{p}:2::1"),
            &bad,
        ])
        .fails();
    assert!(err.contains(&format!("{p}:2::1")), "{err}");
    assert!(!listed(&bad), "nothing half-made");

    let err = d.berth(&["run", "--rm", "--network", &good, "--ip6", "fd42:ffff::5", "busybox", "true"]).fails();
    assert!(err.contains("fd42:ffff::5") && err.contains(&format!("{p}::/64")), "{err}");
    let taken = unique("t6");
    d.berth(&[
        "run",
        "-d",
        "--name",
        &taken,
        "--network",
        &good,
        "--ip6",
        &format!("{p}::10"),
        "busybox",
        "sleep",
        "100",
    ])
    .ok();
    assert_eq!(endpoint_field(&d, &taken, &good, "GlobalIPv6Address"), format!("{p}::10"));
    let err = d.berth(&["run", "--rm", "--network", &good, "--ip6", &format!("{p}::10"), "busybox", "true"]).fails();
    assert!(err.contains("already in use"), "{err}");

    let v4only = unique("v4only");
    d.berth(&["network", "create", &v4only]).ok();
    let err = d.berth(&["run", "--rm", "--network", &v4only, "--ip6", &format!("{p}::5"), "busybox", "true"]).fails();
    assert!(err.contains("no IPv6"), "{err}");
    let err = d.berth(&["run", "--rm", "--network", &v4only, "-p", "[::]:0:53/udp", "busybox", "true"]).fails();
    assert!(err.contains("udp") && err.contains("no IPv6 address"), "{err}");
    let err = d.berth(&["run", "--rm", "--network", &good, "-p", "[::1]:0:53/udp", "busybox", "true"]).fails();
    assert!(err.contains("udp") && err.contains("loopback"), "{err}");
    let err = d.berth(&["run", "--rm", "--ip6", &format!("{p}::5"), "busybox", "true"]).fails();
    assert!(err.contains("user defined networks only"), "{err}");

    d.berth(&["rm", "-f", &taken]).ok();
    d.berth(&["network", "rm", &good, &v4only]).ok();
}

/// Sends one router advertisement (router lifetime 1800 s, prefix 2001:db8:1::/64) out of
/// `ifname`, as a router on that link would.
const SEND_RA: &str = r#"
import socket, struct, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
idx = socket.if_nametoindex(sys.argv[1])
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, idx)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
ra = struct.pack("!BBHBBHII", 134, 0, 0, 64, 0, 1800, 0, 0)
pio = struct.pack("!BBBBIII", 3, 4, 64, 0xc0, 86400, 14400, 0) + socket.inet_pton(socket.AF_INET6, "2001:db8:1::")
s.sendto(ra + pio, ("ff02::1", 0, 0, idx))
"#;

/// With forwarding on, Linux ignores router advertisements on interfaces whose accept_ra is
/// 1: a SLAAC host that starts Docker with IPv6 loses its default route when the current one
/// expires. berth moves the interfaces that learned routes from advertisements to
/// accept_ra=2 first, and no other: its bridges keep ignoring advertisements, which a
/// container could otherwise send to become the host's router. The "host" is a namespace
/// whose router is the other end of a veth; the daemon runs in it (a namespace with no way
/// out), so forwarding may be on.
#[test]
fn enabling_ipv6_forwarding_keeps_the_host_accepting_router_advertisements() {
    let ns = TestNs::new("v6fw");
    std::fs::write(ns_file(&ns), SEND_RA).unwrap();
    let (ok, _) = ns.sh(&format!(
        "ip link add up0 type veth peer name up0p && sysctl -qw net.ipv6.conf.up0.accept_ra=1 net.ipv6.conf.up0.accept_dad=0 net.ipv6.conf.up0p.accept_dad=0 net.ipv6.conf.all.forwarding=0 \
         && ip link set up0 up && ip link set up0p up \
         && for i in $(seq 100); do python3 {} up0p; ip -6 route show default proto ra | grep -q up0 && exit 0; sleep 0.05; done; exit 1",
        ns_file(&ns).display()
    ));
    assert!(ok, "the namespace host learned its default route from the advertisement");
    let mut d = Daemon::start_in(Some(&ns.0), &[]);
    d.stop();
    d.set_config(r#""ip-forward": true"#);
    d.spawn();
    d.import_busybox("busybox:latest");
    let net = unique("fw6");
    d.berth(&["network", "create", "--ipv6", "--subnet", &format!("{}::/64", prefix6()), &net]).ok();
    let bridge = format!("br-{}", &d.berth(&["network", "inspect", "-f", "{{.Id}}", &net]).ok().trim()[..12]);
    let read = |k: &str| ns.sh(&format!("cat /proc/sys/net/ipv6/conf/{k}")).1.trim().to_string();
    assert_eq!(read("all/forwarding"), "1");
    assert_eq!(read("up0/accept_ra"), "2", "the host still takes advertisements on its uplink");
    assert_eq!(read(&format!("{bridge}/accept_ra")), "1", "with forwarding on, the bridge ignores them");
    assert_eq!(read("default/accept_ra"), "1");
    // Containers ignore advertisements too (another container could send one).
    let out = d.berth(&[
        "run",
        "--rm",
        "--network",
        &net,
        "busybox",
        "cat",
        "/proc/sys/net/ipv6/conf/eth0/accept_ra",
        "/proc/sys/net/ipv6/conf/all/accept_ra",
    ]);
    let _ = std::fs::remove_file(ns_file(&ns));
    let out = out.ok();
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["0", "0"], "{out}");
    d.berth(&["network", "rm", &net]).ok();
}

/// A scratch file for a namespace's helper script.
fn ns_file(ns: &TestNs) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("{}-ra.py", ns.0))
}
