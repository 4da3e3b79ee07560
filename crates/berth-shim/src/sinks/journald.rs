//! The `journald` driver: each line as one datagram of the journal's native protocol on
//! its socket, with the fields Docker's driver sets (`MESSAGE`, `PRIORITY` 6 for stdout
//! and 3 for stderr, `CONTAINER_ID`, `CONTAINER_ID_FULL`, `CONTAINER_NAME`,
//! `CONTAINER_TAG`, `IMAGE_NAME`, `SYSLOG_IDENTIFIER`, `SYSLOG_TIMESTAMP`,
//! `CONTAINER_LOG_EPOCH`, `CONTAINER_LOG_ORDINAL`, the `CONTAINER_PARTIAL_*` fields, and
//! the `labels`/`env` attributes with their names upper-cased).
//!
//! The socket is `/run/systemd/journal/socket`, or `$BERTH_JOURNAL_SOCKET` in the shim's
//! environment (which it has from the daemon): a journald of its own namespace
//! (`systemd-journald NS` listens on `/run/systemd/journal.NS/socket`) for tests, or a
//! host whose journal listens elsewhere. A line is at most 16 KiB, well inside a datagram,
//! so the protocol's file-descriptor form for huge entries is not needed.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::transport::{Endpoint, Retry, Transport};
use super::{LogInfo, Message};

pub const SOCKET: &str = "/run/systemd/journal/socket";

pub fn check(opts: &BTreeMap<String, String>) -> Result<(), String> {
    match opts.keys().find(|k| !super::is_common(k) && !super::is_builtin(k)) {
        Some(k) => Err(format!("unknown log opt '{k}' for journald log driver")),
        None => Ok(()),
    }
}

/// The journal's socket, connected; refused as Docker refuses a host without journald.
pub fn transport(limit: usize) -> Result<Transport, String> {
    let path = std::env::var_os("BERTH_JOURNAL_SOCKET").map(PathBuf::from).unwrap_or_else(|| SOCKET.into());
    Transport::open(Endpoint::Unixgram(path), limit, Retry::fixed(1000, None))
        .map_err(|_| "journald is not enabled on this host".to_string())
}

/// Docker's key spelling: upper case, anything but letters and digits as `_`, leading
/// underscores dropped (the journal reserves them).
pub fn field_name(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let c = if c.is_ascii_lowercase() {
            c.to_ascii_uppercase()
        } else if c.is_ascii_uppercase() || c.is_ascii_digit() {
            c
        } else {
            '_'
        };
        if out.is_empty() && c == '_' {
            continue;
        }
        out.push(c);
    }
    out
}

pub struct Formatter {
    vars: Vec<(String, String)>,
    ordinal: u64,
}

impl Formatter {
    pub fn new(info: &LogInfo) -> Formatter {
        let mut vars: BTreeMap<String, String> = BTreeMap::new();
        vars.insert("CONTAINER_ID".into(), info.short_id().into());
        vars.insert("CONTAINER_ID_FULL".into(), info.id.clone());
        vars.insert("CONTAINER_NAME".into(), info.name.clone());
        vars.insert("CONTAINER_TAG".into(), info.tag.clone());
        vars.insert("IMAGE_NAME".into(), info.image_name.clone());
        vars.insert("SYSLOG_IDENTIFIER".into(), info.tag.clone());
        vars.insert("CONTAINER_LOG_EPOCH".into(), epoch());
        for (k, v) in &info.extra {
            let k = field_name(k);
            if !k.is_empty() {
                vars.insert(k, v.clone());
            }
        }
        Formatter { vars: vars.into_iter().collect(), ordinal: 0 }
    }

    pub fn datagram(&mut self, m: &Message) -> Vec<u8> {
        let mut out = Vec::with_capacity(m.line.len() + 512);
        field(&mut out, "MESSAGE", m.line);
        field(&mut out, "PRIORITY", m.severity().to_string().as_bytes());
        for (k, v) in &self.vars {
            field(&mut out, k, v.as_bytes());
        }
        field(&mut out, "SYSLOG_TIMESTAMP", berth_api::time::rfc3339_nanos(m.time).as_bytes());
        if let Some(p) = &m.partial {
            field(&mut out, "CONTAINER_PARTIAL_ID", p.id.as_bytes());
            field(&mut out, "CONTAINER_PARTIAL_ORDINAL", p.ordinal.to_string().as_bytes());
            field(&mut out, "CONTAINER_PARTIAL_LAST", p.last.to_string().as_bytes());
            if !p.last {
                field(&mut out, "CONTAINER_PARTIAL_MESSAGE", b"true");
            }
        }
        self.ordinal += 1;
        field(&mut out, "CONTAINER_LOG_ORDINAL", self.ordinal.to_string().as_bytes());
        out
    }
}

/// One field: `KEY=value\n`, or, when the value has a newline, `KEY\n`, its length as a
/// little-endian u64, the value and `\n`.
fn field(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    out.extend_from_slice(key.as_bytes());
    if value.contains(&b'\n') {
        out.push(b'\n');
        out.extend_from_slice(&(value.len() as u64).to_le_bytes());
    } else {
        out.push(b'=');
    }
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// A random ID for this run of the log (64 hex digits, as Docker's).
fn epoch() -> String {
    let mut b = [0u8; 32];
    // Without /dev/urandom the ID is all zeros: still well-formed, only not unique to this run.
    let _ = std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b));
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl super::Format for Formatter {
    fn frames(&mut self, m: &Message, out: &mut Vec<Vec<u8>>) {
        out.push(self.datagram(m));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_carry_dockers_fields() {
        let info = LogInfo {
            id: "0123456789abcdef0123".into(),
            name: "web".into(),
            image_name: "busybox".into(),
            tag: "0123456789ab".into(),
            extra: [("com.example.team".to_string(), "blue".to_string())].into(),
            ..Default::default()
        };
        let mut f = Formatter::new(&info);
        let d = f.datagram(&Message { stream: 2, line: b"oops", time: 0, partial: None });
        let text = String::from_utf8(d).unwrap();
        let fields: BTreeMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
        assert_eq!(fields["MESSAGE"], "oops");
        assert_eq!(fields["PRIORITY"], "3");
        assert_eq!(fields["CONTAINER_ID"], "0123456789ab");
        assert_eq!(fields["CONTAINER_ID_FULL"], "0123456789abcdef0123");
        assert_eq!(fields["CONTAINER_NAME"], "web");
        assert_eq!(fields["SYSLOG_IDENTIFIER"], "0123456789ab");
        assert_eq!(fields["IMAGE_NAME"], "busybox");
        assert_eq!(fields["COM_EXAMPLE_TEAM"], "blue");
        assert_eq!(fields["CONTAINER_LOG_ORDINAL"], "1");
        let mut raw = Vec::new();
        field(&mut raw, "MESSAGE", b"a\nb");
        assert_eq!(raw, b"MESSAGE\n\x03\0\0\0\0\0\0\0a\nb\n");
        assert_eq!(field_name("_x-y.z"), "X_Y_Z");
        assert!(check(&[("tag".to_string(), "x".to_string())].into()).is_ok());
        assert_eq!(
            check(&[("syslog-address".to_string(), "x".to_string())].into()).unwrap_err(),
            "unknown log opt 'syslog-address' for journald log driver"
        );
    }
}
