//! Settings that belong to the host: a container (or an API client creating one) must not
//! change the host's kernel settings through `--sysctl`, nor make berth address or delete
//! interfaces it did not make through `-o com.docker.network.bridge.name`.

use std::process::Command;

use berth_integration::{Daemon, unique};

fn host_sysctl(name: &str) -> String {
    std::fs::read_to_string(format!("/proc/sys/{}", name.replace('.', "/"))).unwrap().trim().to_string()
}

#[test]
fn sysctls_outside_the_containers_namespaces_are_refused_and_nothing_is_written() {
    let d = Daemon::with_busybox();
    let before = host_sysctl("kernel.printk_ratelimit_burst");
    let other = if before == "11" { "12" } else { "11" };
    let set = format!("kernel.printk_ratelimit_burst={other}");
    // berth's CLI, and the API as any client sends it (the docker CLI refuses this one
    // itself, before asking the daemon).
    let err = d.berth(&["run", "--rm", "--network", "none", "--sysctl", &set, "busybox", "true"]).fails();
    assert!(err.contains("sysctl \"kernel.printk_ratelimit_burst\" is not in a separate kernel namespace"), "{err}");
    let body = serde_json::json!({"Image": "busybox", "Cmd": ["true"], "HostConfig": {"Sysctls": {"kernel.printk_ratelimit_burst": other}}});
    let (status, text) = d.api("POST", "/containers/create", body.to_string().as_bytes());
    assert_eq!(status, 400, "{text}");
    // A name that walks from a namespaced directory to a host setting.
    let walk = serde_json::json!({"Image": "busybox", "Cmd": ["true"], "HostConfig": {"Sysctls": {"net.ipv4/../../kernel.printk_ratelimit_burst": other}}});
    let (status, text) = d.api("POST", "/containers/create", walk.to_string().as_bytes());
    assert_eq!(status, 400, "{text}");
    // The host's network namespace: net.* is the host's there.
    let fwd = host_sysctl("net.ipv4.conf.all.log_martians");
    let flip = if fwd == "1" { "0" } else { "1" };
    let err = d
        .berth(&[
            "run",
            "--rm",
            "--network",
            "host",
            "--sysctl",
            &format!("net.ipv4.conf.all.log_martians={flip}"),
            "busybox",
            "true",
        ])
        .fails();
    assert!(err.contains("is not allowed in the hosts network namespace"), "{err}");
    // ...also when it comes through another container that uses the host's network: only
    // the runtime can tell, at start.
    let hostnet = unique("hostnet");
    d.berth(&["run", "-d", "--name", &hostnet, "--network", "host", "busybox", "sleep", "600"]).ok();
    let err = d
        .berth(&[
            "run",
            "--rm",
            "--network",
            &format!("container:{hostnet}"),
            "--sysctl",
            &format!("net.ipv4.conf.all.log_martians={flip}"),
            "busybox",
            "true",
        ])
        .fails();
    assert!(err.contains("is not allowed in the hosts network namespace"), "{err}");
    assert_eq!(host_sysctl("kernel.printk_ratelimit_burst"), before);
    assert_eq!(host_sysctl("net.ipv4.conf.all.log_martians"), fwd);

    // Control: namespaced ones are set, in the container only.
    let host_start = host_sysctl("net.ipv4.ip_unprivileged_port_start");
    let out = d
        .berth(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--sysctl",
            "net.ipv4.ip_unprivileged_port_start=81",
            "--sysctl",
            "kernel.shmmni=2048",
            "busybox",
            "cat",
            "/proc/sys/net/ipv4/ip_unprivileged_port_start",
            "/proc/sys/kernel/shmmni",
        ])
        .ok();
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["81", "2048"]);
    assert_eq!(host_sysctl("net.ipv4.ip_unprivileged_port_start"), host_start);
}

/// Interfaces the test makes, deleted when it ends.
struct Links(Vec<String>);

impl Drop for Links {
    fn drop(&mut self) {
        for l in &self.0 {
            let _ = Command::new("ip").args(["link", "del", l]).status();
        }
    }
}

fn ip(args: &[&str]) -> String {
    let o = Command::new("ip").args(args).output().unwrap();
    assert!(o.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_network_cannot_take_over_an_interface_berth_did_not_make() {
    let d = Daemon::with_busybox();
    let n = std::process::id() % 10000;
    let (veth, peer, bridge) = (format!("btav{n}"), format!("btap{n}"), format!("btab{n}"));
    let _links = Links(vec![veth.clone(), bridge.clone()]);
    ip(&["link", "add", &veth, "type", "veth", "peer", "name", &peer]);
    ip(&["link", "add", &bridge, "type", "bridge"]);
    let octets: Vec<&str> = d.bridge_net.split('.').collect();
    let sub = format!("{}.{}.250.16/28", octets[0], octets[1]);
    let gw = format!("{}.{}.250.17", octets[0], octets[1]);

    for (name, want) in [
        (veth.as_str(), format!("existing interface {veth} is not a bridge")),
        ("lo", "loopback interface lo cannot be".to_string()),
    ] {
        let net = unique("adopt");
        let err = d
            .berth(&[
                "network",
                "create",
                "--subnet",
                &sub,
                "-o",
                &format!("com.docker.network.bridge.name={name}"),
                &net,
            ])
            .fails();
        assert!(err.contains(&want), "{err}");
        assert!(!d.berth(&["network", "ls", "--format", "{{.Name}}"]).ok().contains(&net));
    }
    assert!(!ip(&["-4", "addr", "show", "dev", &veth]).contains("inet "), "the veth got an address");
    assert!(!ip(&["-4", "addr", "show", "dev", "lo"]).contains(&gw));

    // Someone else's bridge: only with a subnet the user chose; never deleted.
    let net = unique("adopt");
    let opt = format!("com.docker.network.bridge.name={bridge}");
    let err = d.berth(&["network", "create", "-o", &opt, &net]).fails();
    assert!(err.contains("was not made by berth"), "{err}");
    d.berth(&["network", "create", "--subnet", &sub, "-o", &opt, &net]).ok();
    assert!(ip(&["-4", "addr", "show", "dev", &bridge]).contains(&gw));
    // Control: the adopted bridge works as the network's.
    let out = d.berth(&["run", "--rm", "--network", &net, "busybox", "ping", "-c", "1", "-W", "5", &gw]).ok();
    assert!(out.contains("1 packets received"), "{out}");
    d.berth(&["network", "rm", &net]).ok();
    assert!(ip(&["link", "show", &bridge]).contains(&bridge), "the bridge was deleted");
    assert!(!ip(&["-4", "addr", "show", "dev", &bridge]).contains(&gw), "berth's address stayed on the bridge");
    assert!(ip(&["link", "show", &veth]).contains(&veth));
}

/// Issue 15: someone else's bridge gets no IPv6 address the user did not choose (as for
/// IPv4), and its `route_localnet`, which berth turns on for loopback-published ports, is
/// what it was again after `network rm`.
#[test]
fn an_adopted_bridge_gets_no_ipv6_gateway_unasked_and_its_route_localnet_back() {
    let d = Daemon::with_busybox();
    let bridge = format!("btlb{}", std::process::id() % 100000);
    let _links = Links(vec![bridge.clone()]);
    ip(&["link", "add", &bridge, "type", "bridge"]);
    let localnet = format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet");
    let read = || std::fs::read_to_string(&localnet).unwrap().trim().to_string();
    assert_eq!(read(), "0");
    let octets: Vec<&str> = d.bridge_net.split('.').collect();
    let sub = format!("{}.{}.250.32/28", octets[0], octets[1]);
    let opt = format!("com.docker.network.bridge.name={bridge}");
    let global6 = || ip(&["-6", "addr", "show", "dev", &bridge, "scope", "global"]);

    let net = unique("adopt6");
    let err = d.berth(&["network", "create", "--ipv6", "--subnet", &sub, "-o", &opt, &net]).fails();
    assert!(err.contains("give the network an IPv6 --subnet"), "{err}");
    assert!(!global6().contains("inet6"), "the bridge got berth's IPv6 gateway: {}", global6());
    assert!(!d.berth(&["network", "ls", "--format", "{{.Name}}"]).ok().contains(&net));
    assert_eq!(read(), "0");

    // Control: with the user's IPv6 subnet the bridge is used, with that gateway.
    let sub6 = format!("fd00:b7:{:x}::/64", std::process::id() % 0xffff);
    let gw6 = sub6.replace("::/64", "::1");
    d.berth(&["network", "create", "--ipv6", "--subnet", &sub, "--subnet", &sub6, "-o", &opt, &net]).ok();
    assert!(global6().contains(&gw6), "{}", global6());
    assert_eq!(read(), "1", "berth sets route_localnet on the network's bridge");
    d.berth(&["network", "rm", &net]).ok();
    assert_eq!(read(), "0", "route_localnet stayed on after the network was removed");
}
