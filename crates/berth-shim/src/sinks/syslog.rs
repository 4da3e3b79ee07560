//! The `syslog` driver: each line as a syslog message, in the format Docker's driver
//! writes (its default, RFC 3164, RFC 5424 with or without microseconds), over UDP, TCP
//! (newline-framed) or a unix socket. Times are written in UTC. `tcp+tls` is refused.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::transport::Endpoint;
use super::{LogInfo, Message};

const KEYS: &[&str] = &[
    "syslog-address",
    "syslog-facility",
    "syslog-tls-ca-cert",
    "syslog-tls-cert",
    "syslog-tls-key",
    "syslog-tls-skip-verify",
    "syslog-format",
];

const FACILITIES: &[(&str, u8)] = &[
    ("kern", 0),
    ("user", 1),
    ("mail", 2),
    ("daemon", 3),
    ("auth", 4),
    ("syslog", 5),
    ("lpr", 6),
    ("news", 7),
    ("uucp", 8),
    ("cron", 9),
    ("authpriv", 10),
    ("ftp", 11),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Style {
    /// Docker's default (`syslog-format` unset): `<P>Mmm dd hh:mm:ss TAG[PID]: MSG`.
    Unix,
    /// `<P>Mmm dd hh:mm:ss HOST TAG[PID]: MSG`.
    Rfc3164,
    /// `<P>1 TIMESTAMP HOST TAG PID TAG - MSG`, seconds or microseconds.
    Rfc5424 { micro: bool },
}

#[derive(Debug, Clone)]
pub struct Config {
    pub endpoint: Endpoint,
    pub facility: u8,
    pub style: Style,
}

impl Config {
    pub fn parse(opts: &BTreeMap<String, String>) -> Result<Config, String> {
        if let Some(k) =
            opts.keys().find(|k| !super::is_common(k) && !super::is_builtin(k) && !KEYS.contains(&k.as_str()))
        {
            return Err(format!("unknown log opt '{k}' for syslog log driver"));
        }
        let endpoint = address(opts.get("syslog-address").map(String::as_str).unwrap_or(""))?;
        let facility = facility(opts.get("syslog-facility").map(String::as_str).unwrap_or(""))?;
        let style = match opts.get("syslog-format").map(String::as_str).unwrap_or("") {
            "" => Style::Unix,
            "rfc3164" => Style::Rfc3164,
            "rfc5424" => Style::Rfc5424 { micro: false },
            "rfc5424micro" => Style::Rfc5424 { micro: true },
            _ => return Err("Invalid syslog format".into()),
        };
        Ok(Config { endpoint, facility, style })
    }
}

fn address(a: &str) -> Result<Endpoint, String> {
    if a.is_empty() {
        // The local syslog daemon.
        let path = ["/dev/log", "/var/run/syslog", "/var/run/log"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .unwrap_or("/dev/log");
        return Ok(Endpoint::Unixgram(path.into()));
    }
    let (scheme, rest) = a.split_once("://").unwrap_or(("", a));
    match scheme {
        "unix" | "unixgram" => {
            let path = PathBuf::from(rest);
            if let Err(e) = std::fs::metadata(&path) {
                let text = e.to_string();
                let text = text.split(" (os error").next().unwrap_or(&text).to_lowercase();
                return Err(format!("stat {rest}: {text}"));
            }
            Ok(if scheme == "unix" { Endpoint::Unix(path) } else { Endpoint::Unixgram(path) })
        }
        "tcp+tls" => Err("syslog-address: tcp+tls is not supported by berth (use udp, tcp, unix or unixgram)".into()),
        "udp" | "tcp" => {
            let host = rest.split('/').next().unwrap_or("");
            let has_port = match host.rfind(']') {
                Some(i) => host[i..].contains(':'),
                None => host.contains(':'),
            };
            let host = if has_port { host.to_string() } else { format!("{host}:514") };
            let port = host.rsplit(':').next().unwrap_or("");
            if port.parse::<u16>().is_err() {
                return Err(format!("address {host}: invalid port"));
            }
            Ok(if scheme == "udp" { Endpoint::Udp(host) } else { Endpoint::Tcp(host) })
        }
        s => Err(format!("unsupported scheme: '{s}'")),
    }
}

fn facility(f: &str) -> Result<u8, String> {
    if f.is_empty() {
        return Ok(3);
    }
    if let Some((_, n)) = FACILITIES.iter().find(|(name, _)| *name == f) {
        return Ok(*n);
    }
    match f.parse::<u8>() {
        Ok(n) if n <= 23 => Ok(n),
        _ => Err("invalid syslog facility".into()),
    }
}

pub struct Formatter {
    facility: u8,
    style: Style,
    tag: String,
    hostname: String,
    pid: u32,
}

impl Formatter {
    pub fn new(c: &Config, info: &LogInfo) -> Formatter {
        Formatter {
            facility: c.facility,
            style: c.style,
            tag: info.tag.clone(),
            hostname: info.hostname.clone(),
            pid: std::process::id(),
        }
    }

    pub fn line(&self, m: &Message) -> Vec<u8> {
        let p = self.facility as u32 * 8 + m.severity() as u32;
        let t = berth_api::time::rfc3339_nanos_fixed(m.time);
        let (tag, host, pid) = (&self.tag, &self.hostname, self.pid);
        let mut out = match self.style {
            Style::Unix => format!("<{p}>{} {tag}[{pid}]: ", stamp(&t)),
            Style::Rfc3164 => format!("<{p}>{} {host} {tag}[{pid}]: ", stamp(&t)),
            Style::Rfc5424 { micro } => {
                let ts = if micro { format!("{}.{}Z", &t[..19], &t[20..26]) } else { format!("{}Z", &t[..19]) };
                format!("<{p}>1 {ts} {host} {tag} {pid} {tag} - ")
            }
        }
        .into_bytes();
        out.extend_from_slice(m.line);
        out.push(b'\n');
        out
    }
}

/// Go's `time.Stamp` (`Jan _2 15:04:05`) from an RFC 3339 time.
fn stamp(t: &str) -> String {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month: usize = t[5..7].parse().unwrap_or(1);
    let day: u32 = t[8..10].parse().unwrap_or(1);
    format!("{} {day:>2} {}", MONTHS[month.clamp(1, 12) - 1], &t[11..19])
}

impl super::Format for Formatter {
    fn frames(&mut self, m: &Message, out: &mut Vec<Vec<u8>>) {
        if !m.line.is_empty() {
            out.push(self.line(m));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn options_as_docker_checks_them() {
        let e = |kv: &[(&str, &str)]| Config::parse(&opts(kv)).unwrap_err();
        assert_eq!(e(&[("syslog-adress", "udp://x")]), "unknown log opt 'syslog-adress' for syslog log driver");
        assert_eq!(e(&[("syslog-address", "http://x")]), "unsupported scheme: 'http'");
        assert_eq!(
            e(&[("syslog-address", "unix:///nonexistent/sock")]),
            "stat /nonexistent/sock: no such file or directory"
        );
        assert!(e(&[("syslog-address", "tcp+tls://h:6514")]).contains("tcp+tls is not supported"));
        assert_eq!(e(&[("syslog-facility", "local9")]), "invalid syslog facility");
        assert_eq!(e(&[("syslog-facility", "24")]), "invalid syslog facility");
        assert_eq!(e(&[("syslog-format", "rfc9999")]), "Invalid syslog format");
        let c = Config::parse(&opts(&[
            ("syslog-address", "udp://127.0.0.1"),
            ("syslog-facility", "local3"),
            ("tag", "x"),
            ("mode", "non-blocking"),
        ]))
        .unwrap();
        assert_eq!((c.endpoint, c.facility), (Endpoint::Udp("127.0.0.1:514".into()), 19));
        assert_eq!(
            Config::parse(&opts(&[("syslog-address", "tcp://[::1]")])).unwrap().endpoint,
            Endpoint::Tcp("[::1]:514".into())
        );
    }

    #[test]
    fn lines_in_each_format() {
        let info = LogInfo { tag: "abc123".into(), hostname: "box".into(), ..Default::default() };
        let mk = |style| Formatter {
            pid: 42,
            ..Formatter::new(&Config { endpoint: Endpoint::Udp(String::new()), facility: 3, style }, &info)
        };
        // 2026-03-05T07:08:09.123456789Z
        let t = berth_api::time::parse_rfc3339("2026-03-05T07:08:09.123456789Z").unwrap();
        let out = Message { stream: 1, line: b"hello", time: t, partial: None };
        let err = Message { stream: 2, ..out.clone() };
        let s = |f: &Formatter, m: &Message| String::from_utf8(f.line(m)).unwrap();
        assert_eq!(s(&mk(Style::Unix), &out), "<30>Mar  5 07:08:09 abc123[42]: hello\n");
        assert_eq!(s(&mk(Style::Rfc3164), &err), "<27>Mar  5 07:08:09 box abc123[42]: hello\n");
        assert_eq!(
            s(&mk(Style::Rfc5424 { micro: false }), &out),
            "<30>1 2026-03-05T07:08:09Z box abc123 42 abc123 - hello\n"
        );
        assert_eq!(
            s(&mk(Style::Rfc5424 { micro: true }), &out),
            "<30>1 2026-03-05T07:08:09.123456Z box abc123 42 abc123 - hello\n"
        );
        let mut frames = Vec::new();
        super::super::Format::frames(&mut mk(Style::Unix), &Message { line: b"", ..out }, &mut frames);
        assert!(frames.is_empty(), "empty lines are not sent");
    }
}
