//! Networks: the default bridge, published ports, user-defined networks with DNS, isolation,
//! links, and the none/host/container modes. Traffic goes only to 127.0.0.1 and to addresses
//! inside namespaces the tests (or berth, for containers) made.

use std::net::{TcpListener, UdpSocket};
use std::time::Duration;

use berth_integration::{Daemon, TestNs, free_port, http_get, unique, until_serving, web};

#[test]
fn the_default_bridge_gives_an_address_a_route_and_a_hosts_entry() {
    let d = Daemon::with_busybox();
    let out = d
        .berth(&["run", "--rm", "busybox", "sh", "-c", "ip -4 -o addr show eth0; ip route; cat /etc/hosts; hostname"])
        .ok();
    assert!(out.contains(&format!("inet {}.", d.bridge_net)), "{out}");
    assert!(out.contains(&format!("default via {}.1", d.bridge_net)), "{out}");
    let hostname = out.lines().last().unwrap();
    assert!(out.lines().any(|l| l.starts_with(&format!("{}.", d.bridge_net)) && l.ends_with(hostname)), "{out}");
}

#[test]
fn containers_on_the_bridge_reach_each_other() {
    let d = Daemon::with_busybox();
    let name = unique("srv");
    web(&d, &name, &[], "hello-peer");
    let ip = d.berth(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", &name]).ok();
    let ip = ip.trim();
    assert!(ip.starts_with(&d.bridge_net), "{ip}");
    let out = d
        .berth(&[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            &format!("for i in $(seq 50); do wget -q -O - http://{ip}/ && exit 0; sleep 0.1; done; exit 1"),
        ])
        .ok();
    assert_eq!(out.trim(), "hello-peer");
}

#[test]
fn published_ports_answer_on_the_host_and_are_released_after() {
    let d = Daemon::with_busybox();
    let port = free_port();
    let name = unique("pub");
    web(&d, &name, &["-p", &format!("127.0.0.1:{port}:80")], "published");
    assert!(until_serving(([127, 0, 0, 1], port)).contains("published"));
    assert_eq!(d.berth(&["port", &name, "80"]).ok().trim(), format!("127.0.0.1:{port}"));
    // The port is held while the container runs...
    assert!(TcpListener::bind(("127.0.0.1", port)).is_err());
    d.berth(&["rm", "-f", &name]).ok();
    // ...and given back after.
    assert!(TcpListener::bind(("127.0.0.1", port)).is_ok());
    assert!(http_get(([127, 0, 0, 1], port)).is_err());
}

#[test]
fn an_unspecified_host_port_is_chosen_and_reported() {
    let d = Daemon::with_busybox();
    let name = unique("eph");
    web(&d, &name, &["-p", "127.0.0.1::80"], "ephemeral");
    let mapping = d.berth(&["port", &name, "80/tcp"]).ok();
    let port: u16 = mapping.trim().rsplit(':').next().unwrap().parse().unwrap();
    assert!(until_serving(([127, 0, 0, 1], port)).contains("ephemeral"));
}

#[test]
fn udp_ports_are_published_too() {
    let d = Daemon::with_busybox();
    let port = {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    };
    let name = unique("udp");
    let echo = env!("CARGO_BIN_EXE_berth-udp-echo");
    d.berth(&[
        "run",
        "-d",
        "--name",
        &name,
        "-v",
        &format!("{echo}:/udp-echo:ro"),
        "-p",
        &format!("127.0.0.1:{port}:5353/udp"),
        "busybox",
        "/udp-echo",
        "5353",
    ])
    .ok();
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    // Datagrams sent before the server is bound are lost: resend until one comes back.
    let mut buf = [0u8; 64];
    for _ in 0..100 {
        s.send_to(b"datagram-in", ("127.0.0.1", port)).unwrap();
        if let Ok((n, _)) = s.recv_from(&mut buf) {
            assert_eq!(&buf[..n], b"datagram-in");
            return;
        }
    }
    panic!("no datagram came back through the published UDP port");
}

#[test]
fn a_host_port_in_use_is_a_clear_error() {
    let d = Daemon::with_busybox();
    let holder = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let err = d.berth(&["run", "-d", "-p", &format!("127.0.0.1:{port}:80"), "busybox", "sleep", "100"]).fails();
    assert!(err.contains("port is already allocated"), "{err}");
    assert_eq!(d.berth(&["ps", "-q"]).ok(), "", "the container did not start");
}

#[test]
fn user_defined_networks_resolve_names_and_aliases() {
    let d = Daemon::with_busybox();
    let net = unique("net");
    d.berth(&["network", "create", &net]).ok();
    let name = unique("web");
    web(&d, &name, &["--network", &net, "--network-alias", "frontend"], "by-name");
    for host in [name.as_str(), "frontend"] {
        let out = d
            .berth(&[
                "run",
                "--rm",
                "--network",
                &net,
                "busybox",
                "sh",
                "-c",
                &format!("for i in $(seq 50); do wget -q -O - http://{host}/ && exit 0; sleep 0.1; done; exit 1"),
            ])
            .ok();
        assert_eq!(out.trim(), "by-name", "resolving {host}");
    }
    let ns = d.berth(&["run", "--rm", "--network", &net, "busybox", "cat", "/etc/resolv.conf"]).ok();
    assert!(ns.contains("nameserver 127.0.0.11"), "{ns}");
    let miss =
        d.berth(&["run", "--rm", "--network", &net, "busybox", "nslookup", "no-such-container-here", "127.0.0.11"]);
    assert_ne!(miss.code, 0);
}

/// `docker rename` of a running container: the embedded DNS answers to the new name and no
/// longer to the old one, as Docker's does.
#[test]
fn a_renamed_container_answers_to_its_new_name() {
    let d = Daemon::with_busybox();
    let net = unique("net");
    d.berth(&["network", "create", &net]).ok();
    let (old, new) = (unique("old"), unique("new"));
    d.berth(&["run", "-d", "--name", &old, "--network", &net, "busybox", "sleep", "100"]).ok();
    d.berth(&["rename", &old, &new]).ok();
    let hit = d.berth(&["run", "--rm", "--network", &net, "busybox", "nslookup", &new, "127.0.0.11"]);
    assert_eq!(hit.code, 0, "{}", hit.stdout);
    let miss = d.berth(&["run", "--rm", "--network", &net, "busybox", "nslookup", &old, "127.0.0.11"]);
    assert_ne!(miss.code, 0, "{}", miss.stdout);
}

#[test]
fn different_networks_cannot_reach_each_other() {
    let d = Daemon::with_busybox();
    let (a, b) = (unique("neta"), unique("netb"));
    d.berth(&["network", "create", &a]).ok();
    d.berth(&["network", "create", &b]).ok();
    let name = unique("iso");
    web(&d, &name, &["--network", &a], "isolated");
    let ip = d
        .berth(&["inspect", "-f", &format!("{{{{(index .NetworkSettings.Networks \"{a}\").IPAddress}}}}"), &name])
        .ok();
    let ip = ip.trim().to_string();
    let same = d.berth(&[
        "run",
        "--rm",
        "--network",
        &a,
        "busybox",
        "sh",
        "-c",
        &format!("for i in $(seq 50); do timeout 2 wget -q -O - http://{ip}/ && exit 0; sleep 0.1; done; exit 1"),
    ]);
    assert_eq!(same.code, 0, "{same:?}");
    // --init: as PID 1, `timeout` could not signal the wget it became (PID 1 ignores
    // signals it has no handler for), exactly as under Docker.
    let other = d.berth(&[
        "run",
        "--rm",
        "--init",
        "--network",
        &b,
        "busybox",
        "sh",
        "-c",
        &format!("timeout 3 wget -q -O - http://{ip}/"),
    ]);
    assert_ne!(other.code, 0, "a container on another network reached {ip}");
}

#[test]
fn internal_networks_have_no_route_out() {
    let d = Daemon::with_busybox();
    let net = unique("int");
    d.berth(&["network", "create", "--internal", &net]).ok();
    let routes = d.berth(&["run", "--rm", "--network", &net, "busybox", "ip", "route"]).ok();
    assert!(!routes.contains("default"), "{routes}");
    assert_eq!(d.berth(&["network", "inspect", "-f", "{{.Internal}}", &net]).ok().trim(), "true");
}

#[test]
fn none_host_and_container_modes() {
    let d = Daemon::with_busybox();
    let links = d.berth(&["run", "--rm", "--network", "none", "busybox", "ip", "-o", "link"]).ok();
    assert_eq!(links.lines().count(), 1, "{links}");
    assert!(links.contains("lo"));
    let host = d.berth(&["run", "--rm", "--network", "host", "busybox", "hostname"]).ok();
    assert_eq!(host.trim(), rustix::system::uname().nodename().to_str().unwrap());
    let name = unique("owner");
    d.berth(&["run", "-d", "--name", &name, "busybox", "sleep", "100"]).ok();
    let theirs = d.berth(&["exec", &name, "ip", "-4", "-o", "addr", "show", "eth0"]).ok();
    let mine = d
        .berth(&[
            "run",
            "--rm",
            "--network",
            &format!("container:{name}"),
            "busybox",
            "ip",
            "-4",
            "-o",
            "addr",
            "show",
            "eth0",
        ])
        .ok();
    let addr = |s: &str| s.split_whitespace().nth(3).unwrap_or("").to_string();
    assert_eq!(addr(&theirs), addr(&mine));
}

#[test]
fn links_resolve_one_way_with_environment() {
    let d = Daemon::with_busybox();
    let db = unique("db");
    d.berth(&["run", "-d", "--name", &db, "--expose", "5432", "-e", "SECRET=x", "busybox", "sleep", "100"]).ok();
    let out = d
        .berth(&[
            "run",
            "--rm",
            "--link",
            &format!("{db}:dbalias"),
            "busybox",
            "sh",
            "-c",
            "grep dbalias /etc/hosts && env | grep ^DBALIAS_ | sort",
        ])
        .ok();
    assert!(out.contains("DBALIAS_PORT_5432_TCP_PORT=5432"), "{out}");
    assert!(out.contains("DBALIAS_ENV_SECRET=x"), "{out}");
    assert!(out.contains(&"DBALIAS_NAME=/".to_string()), "{out}");
    // The linked container learns nothing about its linker.
    let back = d.berth(&["exec", &db, "cat", "/etc/hosts"]).ok();
    assert!(!back.contains("dbalias"));
}

#[test]
fn network_lifecycle_and_bad_input() {
    let d = Daemon::with_busybox();
    let net = unique("life");
    // A /28 in this daemon's own /16, away from its bridge and pool.
    let octets: Vec<&str> = d.bridge_net.split('.').collect();
    let sub = format!("{}.{}.251.240/28", octets[0], octets[1]);
    d.berth(&["network", "create", "--subnet", &sub, "--label", "team=a", &net]).ok();
    let ls = d.berth(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]).ok();
    assert!(ls.contains(&format!("{net} bridge")), "{ls}");
    for n in ["bridge", "host", "none"] {
        assert!(ls.lines().any(|l| l.starts_with(&format!("{n} "))), "{ls}");
    }
    let err = d.berth(&["network", "create", "--subnet", &sub, &unique("dup")]).fails();
    assert!(err.contains("overlaps"), "{err}");
    let err =
        d.berth(&["network", "create", "--subnet", "10.9.9.0/24", "--gateway", "10.9.10.1", &unique("gw")]).fails();
    assert!(err.contains("no matching subnet for gateway 10.9.10.1"), "{err}");
    let err = d.berth(&["run", "--rm", "--network", "no-such-net", "busybox", "true"]).fails();
    assert!(err.contains("network no-such-net not found"), "{err}");
    let err = d.berth(&["run", "--rm", "--ip", "10.1.1.1", "busybox", "true"]).fails();
    assert!(err.contains("user defined networks only"), "{err}");
    let name = unique("user");
    d.berth(&["run", "-d", "--name", &name, "--network", &net, "busybox", "sleep", "100"]).ok();
    let err = d.berth(&["network", "rm", &net]).fails();
    assert!(err.contains("active endpoints"), "{err}");
    d.berth(&["rm", "-f", &name]).ok();
    d.berth(&["network", "rm", &net]).ok();
    let err = d.berth(&["network", "rm", "bridge"]).fails();
    assert!(err.contains("pre-defined"), "{err}");
}

#[test]
fn static_addresses_and_connect_disconnect() {
    let d = Daemon::with_busybox();
    let net = unique("st");
    let prefix = format!("{}.250", d.bridge_net.rsplit_once('.').unwrap().0);
    let sub = format!("{prefix}.0/28");
    d.berth(&["network", "create", "--subnet", &sub, &net]).ok();
    let name = unique("fixed");
    d.berth(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        &net,
        "--ip",
        &format!("{prefix}.9"),
        "busybox",
        "sleep",
        "100",
    ])
    .ok();
    let ip = d
        .berth(&["inspect", "-f", &format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}"), &name])
        .ok();
    assert_eq!(ip.trim(), format!("{prefix}.9"));
    let err = d.berth(&["run", "--rm", "--network", &net, "--ip", &format!("{prefix}.9"), "busybox", "true"]).fails();
    assert!(err.contains("already in use"), "{err}");
    let other = unique("plain");
    d.berth(&["run", "-d", "--name", &other, "busybox", "sleep", "100"]).ok();
    d.berth(&["network", "connect", &net, &other]).ok();
    let links = d.berth(&["exec", &other, "ip", "-o", "link"]).ok();
    assert!(links.contains("eth1"), "{links}");
    d.berth(&["network", "disconnect", &net, &other]).ok();
    let inspect = d.berth(&["inspect", "-f", "{{json .NetworkSettings.Networks}}", &other]).ok();
    assert!(!inspect.contains(&net), "{inspect}");
}

#[test]
fn published_ports_and_dns_survive_a_daemon_restart() {
    let mut d = Daemon::with_busybox();
    let port = free_port();
    let net = unique("keep");
    d.berth(&["network", "create", &net]).ok();
    let name = unique("kept");
    web(&d, &name, &["--network", &net, "-p", &format!("127.0.0.1:{port}:80")], "still-here");
    until_serving(([127, 0, 0, 1], port));
    d.kill();
    d.spawn();
    assert!(until_serving(([127, 0, 0, 1], port)).contains("still-here"));
    let out = d
        .berth(&["run", "--rm", "--network", &net, "busybox", "sh", "-c", &format!("wget -q -O - http://{name}/")])
        .ok();
    assert_eq!(out.trim(), "still-here");
}

#[test]
fn the_docker_cli_sees_the_same_networks() {
    let d = Daemon::with_busybox();
    let net = unique("dk");
    d.docker(&["network", "create", &net]).ok();
    let ls = d.docker(&["network", "ls"]).ok();
    assert!(ls.contains(&net), "{ls}");
    let out = d.docker(&["run", "--rm", "--network", &net, "busybox", "ip", "-4", "-o", "addr", "show", "eth0"]).ok();
    assert!(out.contains("inet "), "{out}");
    d.docker(&["network", "rm", &net]).ok();
}

/// A veth pair made by the test (this kernel has no dummy links), deleted on drop.
struct TestLink(String);

impl TestLink {
    fn new(prefix: &str) -> TestLink {
        let name = format!("{prefix}{:x}", std::process::id() % 0xffff);
        let ok = std::process::Command::new("ip")
            .args(["link", "add", &name, "type", "veth", "peer", "name", &format!("{name}p")])
            .status()
            .unwrap()
            .success();
        assert!(ok, "creating {name}");
        for n in [name.clone(), format!("{name}p")] {
            std::process::Command::new("ip").args(["link", "set", &n, "up"]).status().unwrap();
        }
        TestLink(name)
    }
}

impl Drop for TestLink {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip").args(["link", "del", &self.0]).status();
    }
}

#[test]
fn macvlan_networks_give_static_addresses_and_names() {
    let d = Daemon::with_busybox();
    let parent = TestLink::new("bmv");
    let net = unique("mvnet");
    // The gateway is an address nobody answers for: containers get no way out.
    d.berth(&[
        "network",
        "create",
        "-d",
        "macvlan",
        "--subnet",
        "10.99.7.0/24",
        "--gateway",
        "10.99.7.254",
        "-o",
        &format!("parent={}", parent.0),
        &net,
    ])
    .ok();
    let first = unique("mv");
    d.berth(&["run", "-d", "--name", &first, "--network", &net, "--ip", "10.99.7.100", "busybox", "sleep", "1000"])
        .ok();
    let out = d
        .berth(&[
            "run",
            "--rm",
            "--network",
            &net,
            "busybox",
            "sh",
            "-c",
            &format!("ip -4 -o addr show eth0; ping -c1 -W5 {first} >/dev/null && echo reached"),
        ])
        .ok();
    assert!(out.contains("inet 10.99.7."), "{out}");
    assert!(out.trim_end().ends_with("reached"), "{out}");
    assert_eq!(
        d.berth(&["inspect", "-f", &format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}"), &first])
            .ok()
            .trim(),
        "10.99.7.100"
    );
    let err = d.berth(&["run", "--rm", "--network", &net, "--ip", "10.99.7.100", "busybox", "true"]).fails();
    assert!(err.contains("10.99.7.100"), "{err}");
    let err = d
        .berth(&[
            "network",
            "create",
            "-d",
            "macvlan",
            "--subnet",
            "10.99.8.0/24",
            "-o",
            "parent=nosuchlink0",
            &unique("mvbad"),
        ])
        .fails();
    assert!(err.contains("parent interface nosuchlink0 does not exist"), "{err}");
    // Restarted at once while another container shares its namespace (which keeps the old
    // interface alive): its address and MAC were given back at the stop, so it starts again.
    let side = unique("mvside");
    d.berth(&["run", "-d", "--name", &side, "--network", &format!("container:{first}"), "busybox", "sleep", "1000"])
        .ok();
    d.berth(&["restart", "-t", "0", &first]).ok();
    let out = d
        .berth(&[
            "run",
            "--rm",
            "--network",
            &net,
            "busybox",
            "sh",
            "-c",
            &format!("ping -c1 -W5 {first} >/dev/null && echo reached"),
        ])
        .ok();
    assert!(out.trim_end().ends_with("reached"), "after the restart: {out}");
    d.berth(&["rm", "-f", &side]).ok();
    d.berth(&["rm", "-f", &first]).ok();
    d.berth(&["network", "rm", &net]).ok();
}

/// ipvlan in l2 and l3 modes, and macvlan on an 802.1q sub-interface, between containers on
/// one parent; or, on a kernel built without ipvlan or 802.1q (this CI machine's:
/// CONFIG_IPVLAN and CONFIG_VLAN_8021Q are not set), a refusal at `network create` that
/// names the reason and leaves nothing behind.
#[test]
fn ipvlan_and_vlan_networks_connect_containers_or_are_refused_at_create() {
    let d = Daemon::with_busybox();
    let parent = TestLink::new("biv");
    let kernel_has = |args: &[&str]| {
        let probe = format!("{}t", parent.0);
        let ok = std::process::Command::new("ip")
            .args(["link", "add", "link", &parent.0, "name", &probe])
            .args(args)
            .status()
            .unwrap()
            .success();
        let _ = std::process::Command::new("ip").args(["link", "del", &probe]).status();
        ok
    };
    let listed = |net: &str| !d.berth(&["network", "ls", "-q", "-f", &format!("name={net}")]).ok().trim().is_empty();
    // This kernel lacks the driver: the refusal names it and the option, and leaves nothing.
    let refused = |err: &str, what: &str, option: &str, net: &str| {
        assert!(err.contains(what) && err.contains(option), "{err}");
        assert!(!listed(net), "nothing half-made");
    };
    // A container on `net` (started with `extra` options) is reached by name from another.
    let reached = |net: &str, prefix: &str, extra: &[&str], what: &str| {
        let first = unique(prefix);
        let mut run = vec!["run", "-d", "--name", &first, "--network", net];
        run.extend_from_slice(extra);
        run.extend_from_slice(&["busybox", "sleep", "1000"]);
        d.berth(&run).ok();
        let out = d
            .berth(&[
                "run",
                "--rm",
                "--network",
                net,
                "busybox",
                "sh",
                "-c",
                &format!("ping -c1 -W5 {first} >/dev/null && echo reached"),
            ])
            .ok();
        assert!(out.trim_end().ends_with("reached"), "{what}: {out}");
        d.berth(&["rm", "-f", &first]).ok();
    };
    let ipvlan = kernel_has(&["type", "ipvlan"]);
    for (i, mode) in ["l2", "l3"].into_iter().enumerate() {
        let net = unique("ivnet");
        let create = d.berth(&[
            "network",
            "create",
            "-d",
            "ipvlan",
            "--subnet",
            &format!("10.99.{}.0/24", 20 + i),
            "-o",
            &format!("parent={}", parent.0),
            "-o",
            &format!("ipvlan_mode={mode}"),
            &net,
        ]);
        if !ipvlan {
            refused(&create.fails(), "ipvlan", "CONFIG_IPVLAN", &net);
            continue;
        }
        create.ok();
        reached(&net, "iv", &["--ip", &format!("10.99.{}.100", 20 + i)], &format!("ipvlan {mode}"));
        d.berth(&["network", "rm", &net]).ok();
    }
    let vlan = kernel_has(&["type", "vlan", "id", "51"]);
    let net = unique("vlnet");
    let sub_if = format!("{}.50", parent.0);
    let create = d.berth(&[
        "network",
        "create",
        "-d",
        "macvlan",
        "--subnet",
        "10.99.30.0/24",
        "-o",
        &format!("parent={sub_if}"),
        &net,
    ]);
    if !vlan {
        refused(&create.fails(), "802.1q", "CONFIG_VLAN_8021Q", &net);
        return;
    }
    create.ok();
    assert!(std::path::Path::new(&format!("/sys/class/net/{sub_if}")).exists(), "the VLAN interface is made");
    reached(&net, "vl", &[], "macvlan on a VLAN");
    d.berth(&["network", "rm", &net]).ok();
    assert!(
        !std::path::Path::new(&format!("/sys/class/net/{sub_if}")).exists(),
        "the VLAN interface berth made goes with its network"
    );
}

/// Two "hosts" (namespaces) on one link: a port published on all addresses is reachable
/// from the other host; one published on 127.0.0.1 is not, even when the other host routes
/// 127.0.0.1 to this one — the attack of moby#45610, which Docker's rules let through.
#[test]
fn published_ports_from_another_host_and_loopback_ones_stay_local() {
    let a = TestNs::new("hA");
    let b = TestNs::new("hB");
    let link = format!("hv{:x}", std::process::id() % 0xffffff);
    assert!(
        std::process::Command::new("ip")
            .args(["link", "add", &link, "netns", &a.0, "type", "veth", "peer", "name", "eth1", "netns", &b.0])
            .status()
            .unwrap()
            .success()
    );
    assert!(a.sh(&format!("ip link set {link} name eth1 && ip addr add 192.168.251.1/24 dev eth1 && ip link set eth1 up && sysctl -qw net.ipv4.ip_forward=1")).0);
    assert!(b.sh("ip addr add 192.168.251.2/24 dev eth1 && ip link set eth1 up").0);
    let d = Daemon::start_in(Some(&a.0), &[]);
    d.import_busybox("busybox:latest");
    let name = unique("both");
    web(&d, &name, &["-p", "8080:80", "-p", "127.0.0.1:8081:80"], "from-a");
    let get = |ns: &TestNs, url: &str| {
        ns.sh(&format!(
            "for i in $(seq 100); do timeout 5 busybox wget -q -O - {url} && exit 0; sleep 0.05; done; exit 1"
        ))
    };
    assert_eq!(get(&a, "http://127.0.0.1:8081/").1.trim(), "from-a", "the loopback port answers on host A");
    assert_eq!(get(&b, "http://192.168.251.1:8080/").1.trim(), "from-a", "the public port answers host B");
    assert!(
        !b.sh("timeout 5 busybox wget -q -O - http://192.168.251.1:8081/").0,
        "the loopback port is not on A's public address"
    );
    // Host B sends packets for 127.0.0.1 to host A's link address.
    assert!(b.sh("sysctl -qw net.ipv4.conf.eth1.route_localnet=1 && ip route add 127.0.0.1/32 via 192.168.251.1 dev eth1 table 100 && ip rule add pref 10 to 127.0.0.1 table 100 && ip rule del pref 0 && ip rule add pref 100 table local").0);
    assert!(
        !b.sh("timeout 5 busybox wget -q -O - http://127.0.0.1:8081/").0,
        "a loopback-published port answered another host"
    );
    // Host B routes the container's address through A: only published ports lead in (as in
    // Docker >= 28; before, every port of every container was open to A's neighbours).
    let ip = d.berth(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", &name]).ok().trim().to_string();
    assert!(b.sh(&format!("ip route add {ip}/32 via 192.168.251.1 dev eth1")).0);
    assert!(
        !b.sh(&format!("timeout 5 busybox wget -q -O - http://{ip}/")).0,
        "a container port that is not published answered another host"
    );
    d.berth(&["rm", "-f", &name]).ok();
}
