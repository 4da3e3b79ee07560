//! The `fluentd` driver: each line as a Forward-protocol entry in Message mode,
//! `[tag, time, record]` in MessagePack over TCP or a unix socket, with the record
//! Docker's driver sends (`container_id`, `container_name`, `source`, `log`, the
//! `labels`/`env` attributes, and `partial_*` for pieces of a long line).
//!
//! As with Docker, the start fails when the collector cannot be reached unless
//! `fluentd-async` is set. `fluentd-request-ack` adds the `chunk` option Forward servers
//! answer; the answers are read and let go (nothing is sent twice).
//! `fluentd-async-reconnect-interval`, `fluentd-write-timeout` and `fluentd-read-timeout`
//! are checked and have no further effect: writes never wait.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::msgpack;
use super::transport::Endpoint;
use super::{LogInfo, Message};

const KEYS: &[&str] = &[
    "fluentd-address",
    "fluentd-async",
    "fluentd-async-reconnect-interval",
    "fluentd-buffer-limit",
    "fluentd-max-retries",
    "fluentd-request-ack",
    "fluentd-retry-wait",
    "fluentd-sub-second-precision",
    "fluentd-write-timeout",
    "fluentd-read-timeout",
];

#[derive(Debug, Clone)]
pub struct Config {
    pub endpoint: Endpoint,
    pub buffer_limit: usize,
    pub retry_wait_ms: u64,
    pub max_retries: u32,
    pub async_connect: bool,
    pub sub_second: bool,
    pub request_ack: bool,
}

fn duration(key: &str, s: &str) -> Result<Duration, String> {
    berth_api::time::parse_go_duration(s)
        .ok_or_else(|| format!("invalid value for {key}: time: invalid duration {s:?}"))
}

fn bool_opt(opts: &BTreeMap<String, String>, key: &str) -> Result<bool, String> {
    match opts.get(key).map(String::as_str) {
        None | Some("") => Ok(false),
        Some(s) => super::parse_bool(s),
    }
}

impl Config {
    pub fn parse(opts: &BTreeMap<String, String>) -> Result<Config, String> {
        if let Some(k) =
            opts.keys().find(|k| !super::is_common(k) && !super::is_builtin(k) && !KEYS.contains(&k.as_str()))
        {
            return Err(format!("unknown log opt '{k}' for fluentd log driver"));
        }
        let addr = opts.get("fluentd-address").map(String::as_str).unwrap_or("");
        let endpoint = address(addr).map_err(|e| format!("invalid fluentd-address ({addr}): {e}"))?;
        let get = |k: &str| opts.get(k).map(String::as_str).filter(|s| !s.is_empty());
        let buffer_limit = match get("fluentd-buffer-limit") {
            Some(s) => berth_api::units::parse_ram_bytes(s)?.max(1) as usize,
            None => super::DEFAULT_BUFFER,
        };
        let retry_wait_ms = match get("fluentd-retry-wait") {
            Some(s) => duration("fluentd-retry-wait", s)?.as_millis() as u64,
            None => 1000,
        };
        let max_retries = match get("fluentd-max-retries") {
            Some(s) => {
                let n: u64 = s.parse().map_err(|_| format!("strconv.ParseUint: parsing {s:?}: invalid syntax"))?;
                if n > i32::MAX as u64 {
                    return Err("invalid fluentd-max-retries: value out of range".into());
                }
                n as u32
            }
            None => i32::MAX as u32,
        };
        let async_connect = bool_opt(opts, "fluentd-async")?;
        if let Some(s) = get("fluentd-async-reconnect-interval") {
            let d = duration("fluentd-async-reconnect-interval", s)?;
            if !d.is_zero() && (d < Duration::from_millis(100) || d > Duration::from_secs(10)) {
                return Err(format!(
                    "invalid value for fluentd-async-reconnect-interval: value ({s:?}) must be between 100ms and 10s"
                ));
            }
        }
        let sub_second = bool_opt(opts, "fluentd-sub-second-precision")?;
        let request_ack = bool_opt(opts, "fluentd-request-ack")?;
        for key in ["fluentd-write-timeout", "fluentd-read-timeout"] {
            if let Some(s) = get(key) {
                if s.starts_with('-') {
                    return Err(format!("invalid value for {key}: value must be a duration that is non-negative"));
                }
                duration(key, s).map_err(|_| format!("invalid value for {key}: value must be a duration"))?;
            }
        }
        Ok(Config { endpoint, buffer_limit, retry_wait_ms, max_retries, async_connect, sub_second, request_ack })
    }
}

fn address(a: &str) -> Result<Endpoint, String> {
    if a.is_empty() {
        return Ok(Endpoint::Tcp("127.0.0.1:24224".into()));
    }
    let full = if a.contains("://") { a.to_string() } else { format!("tcp://{a}") };
    let (scheme, rest) = full.split_once("://").unwrap_or(("", ""));
    match scheme {
        "unix" => {
            if rest.trim_start_matches('/').is_empty() {
                return Err("path is empty".into());
            }
            Ok(Endpoint::Unix(PathBuf::from(rest)))
        }
        "tls" => Err("tls is not supported by berth (use tcp or unix)".into()),
        "tcp" => {
            let (hostport, path) = rest.split_once('/').map(|(h, p)| (h, Some(p))).unwrap_or((rest, None));
            if path.is_some() {
                return Err("should not contain a path element".into());
            }
            let (host, port) = match hostport.rfind(':') {
                Some(i) if !hostport[i..].contains(']') => (&hostport[..i], &hostport[i + 1..]),
                _ => (hostport, ""),
            };
            let host = if host.is_empty() { "127.0.0.1" } else { host };
            let port: u16 = if port.is_empty() {
                24224
            } else {
                port.parse()
                    .map_err(|_| format!("invalid port: strconv.ParseUint: parsing {port:?}: invalid syntax"))?
            };
            Ok(Endpoint::Tcp(format!("{host}:{port}")))
        }
        s => Err(format!("unsupported scheme: '{s}'")),
    }
}

pub struct Formatter {
    tag: Vec<u8>,
    id: String,
    /// With its leading slash, as Docker's driver sends it.
    name: String,
    extra: BTreeMap<String, String>,
    sub_second: bool,
    request_ack: bool,
    chunks: u64,
}

impl Formatter {
    pub fn new(c: &Config, info: &LogInfo) -> Formatter {
        Formatter {
            tag: info.tag.as_bytes().to_vec(),
            id: info.id.clone(),
            name: format!("/{}", info.name),
            extra: info.extra.clone(),
            sub_second: c.sub_second,
            request_ack: c.request_ack,
            chunks: 0,
        }
    }

    pub fn entry(&mut self, m: &Message) -> Vec<u8> {
        let mut out = Vec::with_capacity(m.line.len() + 256);
        msgpack::array(&mut out, if self.request_ack { 4 } else { 3 });
        msgpack::str(&mut out, &self.tag);
        let secs = m.time.div_euclid(1_000_000_000).max(0) as u32;
        if self.sub_second {
            msgpack::event_time(&mut out, secs, m.time.rem_euclid(1_000_000_000) as u32);
        } else {
            msgpack::uint(&mut out, secs as u64);
        }
        let mut fields: Vec<(&str, Vec<u8>)> = vec![
            ("container_id", self.id.as_bytes().to_vec()),
            ("container_name", self.name.as_bytes().to_vec()),
            ("source", m.source().as_bytes().to_vec()),
            ("log", m.line.to_vec()),
        ];
        for (k, v) in &self.extra {
            fields.push((k.as_str(), v.as_bytes().to_vec()));
        }
        if let Some(p) = &m.partial {
            fields.push(("partial_message", b"true".to_vec()));
            fields.push(("partial_id", p.id.as_bytes().to_vec()));
            fields.push(("partial_ordinal", p.ordinal.to_string().into_bytes()));
            fields.push(("partial_last", p.last.to_string().into_bytes()));
        }
        // Later keys win, as in Docker's map (an attribute named `log` replaces nothing
        // there either: the record's own fields are set first and then overwritten).
        let mut seen = BTreeMap::new();
        for (k, v) in fields {
            seen.insert(k, v);
        }
        msgpack::map(&mut out, seen.len());
        for (k, v) in seen {
            msgpack::str(&mut out, k.as_bytes());
            msgpack::str(&mut out, &v);
        }
        if self.request_ack {
            self.chunks += 1;
            msgpack::map(&mut out, 1);
            msgpack::str(&mut out, b"chunk");
            msgpack::str(&mut out, format!("{:x}-{}", std::process::id(), self.chunks).as_bytes());
        }
        out
    }
}

impl super::Format for Formatter {
    fn frames(&mut self, m: &Message, out: &mut Vec<Vec<u8>>) {
        out.push(self.entry(m));
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
        assert_eq!(e(&[("fluentd-adress", "x")]), "unknown log opt 'fluentd-adress' for fluentd log driver");
        assert_eq!(
            e(&[("fluentd-address", "http://h:1")]),
            "invalid fluentd-address (http://h:1): unsupported scheme: 'http'"
        );
        assert_eq!(
            e(&[("fluentd-address", "tcp://h:1/x")]),
            "invalid fluentd-address (tcp://h:1/x): should not contain a path element"
        );
        assert_eq!(e(&[("fluentd-address", "unix://")]), "invalid fluentd-address (unix://): path is empty");
        assert!(e(&[("fluentd-async", "maybe")]).contains("strconv.ParseBool"));
        assert!(e(&[("fluentd-async-reconnect-interval", "1ms")]).contains("must be between 100ms and 10s"));
        assert!(e(&[("fluentd-max-retries", "-1")]).contains("strconv.ParseUint"));
        let c = Config::parse(&opts(&[])).unwrap();
        assert_eq!(
            (c.endpoint, c.async_connect, c.buffer_limit),
            (Endpoint::Tcp("127.0.0.1:24224".into()), false, 1 << 20)
        );
        let c = Config::parse(&opts(&[("fluentd-address", "localhost:24225"), ("fluentd-async", "true")])).unwrap();
        assert_eq!((c.endpoint, c.async_connect), (Endpoint::Tcp("localhost:24225".into()), true));
        let c = Config::parse(&opts(&[("fluentd-address", "unix:///run/f.sock")])).unwrap();
        assert_eq!(c.endpoint, Endpoint::Unix("/run/f.sock".into()));
        assert_eq!(
            Config::parse(&opts(&[("fluentd-address", "tcp://:3")])).unwrap().endpoint,
            Endpoint::Tcp("127.0.0.1:3".into())
        );
    }

    #[test]
    fn entries_are_tag_time_record() {
        let c = Config::parse(&opts(&[])).unwrap();
        let info = LogInfo { id: "abc".into(), name: "web".into(), tag: "t".into(), ..Default::default() };
        let mut f = Formatter::new(&c, &info);
        let p = super::super::Partial { id: "p1".into(), ordinal: 2, last: true };
        let v = f.entry(&Message { stream: 2, line: b"hi", time: 5_000_000_001, partial: Some(p) });
        let mut want = vec![0x93, 0xa1, b't', 5, 0x88];
        for (k, val) in [
            ("container_id", "abc"),
            ("container_name", "/web"),
            ("log", "hi"),
            ("partial_id", "p1"),
            ("partial_last", "true"),
            ("partial_message", "true"),
            ("partial_ordinal", "2"),
            ("source", "stderr"),
        ] {
            msgpack::str(&mut want, k.as_bytes());
            msgpack::str(&mut want, val.as_bytes());
        }
        assert_eq!(v, want);
    }
}
