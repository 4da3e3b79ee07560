//! Living beside dockerd (or any other user of iptables' FORWARD chain).
//!
//! A forwarded packet passes every base chain on the forward hook, berth's nftables table
//! and iptables' `filter FORWARD` alike, and is dropped if any of them drops it. dockerd sets
//! that chain's policy to DROP when it turns forwarding on, and with br_netfilter loaded
//! (`bridge-nf-call-iptables=1`) even frames bridged between two containers of one network
//! pass it. So, as netavark and podman do beside firewalld or Docker, berth accepts its own
//! bridges' traffic there too: a chain of its own (one per daemon, named after its table)
//! with an ACCEPT per bridge and direction, and a jump to it at the head of FORWARD. What may
//! pass is still decided in berth's table (isolation, internal networks, published ports
//! only): an ACCEPT here lets nothing through that berth's table drops.
//!
//! Both `iptables` (IPv4) and `ip6tables` (IPv6) are kept, through whichever backend the
//! host's `iptables` command uses (the same dockerd uses). Without the commands nothing is
//! done: then no iptables rule can drop berth's traffic either.

use std::process::{Command, Stdio};

/// The chain of the daemon whose nftables table is `table` (`berth_1a2b3c4d` →
/// `BERTH_1a2b3c4d`): under iptables' 28-character limit.
pub fn chain_for(table: &str) -> String {
    let c = format!("BERTH{}", table.strip_prefix("berth").unwrap_or(table));
    c.chars().take(28).collect()
}

fn run(cmd: &str, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    use std::io::Write;
    let mut child = Command::new(cmd)
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running {cmd}: {e}"))?;
    if let (Some(text), Some(mut i)) = (stdin, child.stdin.take()) {
        let _ = i.write_all(text.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| format!("{cmd}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{cmd} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The `iptables-restore` input that makes `chain` accept traffic from and to `bridges`
/// (declaring a chain flushes it, so the whole chain is replaced in one commit).
pub fn render(chain: &str, bridges: &[String]) -> String {
    let mut s = format!("*filter\n:{chain} - [0:0]\n");
    // A wildcard would accept every interface's traffic (names are checked at create; this
    // holds for records older than the check).
    for b in bridges.iter().filter(|b| !b.contains(['+', '*'])) {
        s.push_str(&format!("-A {chain} -i {b} -j ACCEPT\n-A {chain} -o {b} -j ACCEPT\n"));
    }
    s.push_str("COMMIT\n");
    s
}

/// Makes `filter FORWARD` accept the traffic of `bridges` (IPv4) and `bridges6` (IPv6).
/// Errors are reported, not fatal: berth's own table is what matters on a host without
/// another firewall.
pub fn sync(table: &str, bridges: &[String], bridges6: &[String]) -> Result<(), String> {
    let chain = chain_for(table);
    let mut errors = Vec::new();
    for (cmd, restore, list) in
        [("iptables", "iptables-restore", bridges), ("ip6tables", "ip6tables-restore", bridges6)]
    {
        // No such command, or no kernel support: nothing there can drop berth's traffic.
        if run(cmd, &["-w", "-t", "filter", "-S", "FORWARD"], None).is_err() {
            continue;
        }
        if let Err(e) = run(restore, &["-w", "--noflush"], Some(&render(&chain, list))) {
            errors.push(e);
            continue;
        }
        // At the head, ahead of a DROP policy and of dockerd's rules (which only concern its
        // own bridges, and re-insert their jump at the head when dockerd starts: berth's
        // then comes right after, still ahead of any verdict on berth's traffic).
        if run(cmd, &["-w", "-t", "filter", "-C", "FORWARD", "-j", &chain], None).is_err()
            && let Err(e) = run(cmd, &["-w", "-t", "filter", "-I", "FORWARD", "1", "-j", &chain], None)
        {
            errors.push(e);
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(errors.join("; ")) }
}

/// Removes the daemon's chain and its jump (when its last bridge is gone, or in cleanup).
pub fn remove(table: &str) {
    let chain = chain_for(table);
    for cmd in ["iptables", "ip6tables"] {
        while run(cmd, &["-w", "-t", "filter", "-D", "FORWARD", "-j", &chain], None).is_ok() {}
        let _ = run(cmd, &["-w", "-t", "filter", "-F", &chain], None);
        let _ = run(cmd, &["-w", "-t", "filter", "-X", &chain], None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_names_and_rules() {
        assert_eq!(chain_for("berth_7f5c9d33"), "BERTH_7f5c9d33");
        assert_eq!(chain_for("berth"), "BERTH");
        assert!(chain_for(&"x".repeat(40)).len() <= 28);
        let r = render("BERTH_1", &["br0".into(), "bt1".into()]);
        assert_eq!(
            r,
            "*filter\n:BERTH_1 - [0:0]\n-A BERTH_1 -i br0 -j ACCEPT\n-A BERTH_1 -o br0 -j ACCEPT\n\
             -A BERTH_1 -i bt1 -j ACCEPT\n-A BERTH_1 -o bt1 -j ACCEPT\nCOMMIT\n"
        );
        assert_eq!(render("C", &[]), "*filter\n:C - [0:0]\nCOMMIT\n");
        // A wildcard name never becomes a rule (`-i +` accepts every interface).
        assert_eq!(render("C", &["+".into(), "br*".into()]), "*filter\n:C - [0:0]\nCOMMIT\n");
    }
}
