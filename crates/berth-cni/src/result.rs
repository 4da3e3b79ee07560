//! Reading a plugin's result: the addresses it put on an interface in the pod.

use std::net::IpAddr;

use serde_json::Value;

/// The addresses of `ifname` inside the pod, IPv4 first. Results of spec 0.3.0 and later list
/// `ips` pointing at `interfaces` by index (an address without an index is taken as the
/// pod's); 0.1/0.2 results have `ip4` and `ip6`.
pub fn addresses(result: &Value, ifname: &str) -> Vec<IpAddr> {
    let ifaces = result.get("interfaces").and_then(Value::as_array);
    let in_pod = |idx: u64| {
        let i = ifaces.and_then(|v| v.get(idx as usize));
        let name = i.and_then(|i| i.get("name")).and_then(Value::as_str);
        let sandbox = i.and_then(|i| i.get("sandbox")).and_then(Value::as_str).unwrap_or("");
        name == Some(ifname) && !sandbox.is_empty()
    };
    let mut out: Vec<IpAddr> = result
        .get("ips")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|ip| ip.get("interface").and_then(Value::as_u64).is_none_or(in_pod))
        .filter_map(|ip| ip.get("address").and_then(Value::as_str))
        .chain(["ip4", "ip6"].into_iter().filter_map(|k| result.get(k)?.get("ip")?.as_str()))
        .filter_map(|cidr| cidr.split('/').next()?.parse().ok())
        .collect();
    out.sort_by_key(|a| a.is_ipv6());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_those_of_the_pods_interface_ipv4_first() {
        let r = serde_json::json!({
            "cniVersion": "1.0.0",
            "interfaces": [
                {"name": "cni0", "mac": "aa"},
                {"name": "veth1", "mac": "bb"},
                {"name": "eth0", "mac": "cc", "sandbox": "/proc/9/ns/net"}
            ],
            "ips": [
                {"address": "fd00::5/64", "interface": 2},
                {"address": "10.1.0.1/24", "interface": 0},
                {"address": "10.1.0.5/24", "gateway": "10.1.0.1", "interface": 2}
            ]
        });
        let want: Vec<IpAddr> = vec!["10.1.0.5".parse().unwrap(), "fd00::5".parse().unwrap()];
        assert_eq!(addresses(&r, "eth0"), want);
        assert!(addresses(&r, "eth1").is_empty());
        let old = serde_json::json!({"cniVersion": "0.2.0", "ip4": {"ip": "10.2.0.7/16"}});
        assert_eq!(addresses(&old, "eth0"), vec!["10.2.0.7".parse::<IpAddr>().unwrap()]);
        let loopback = serde_json::json!({"interfaces": [{"name": "lo", "sandbox": "/x"}],
            "ips": [{"address": "127.0.0.1/8", "interface": 0}]});
        assert!(addresses(&loopback, "eth0").is_empty());
    }
}
