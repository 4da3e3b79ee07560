//! The `gelf` driver: GELF 1.1 JSON messages with the fields Docker's driver sends. Over UDP
//! each is compressed (gzip by default, zlib, or none) and cut into GELF chunks when larger
//! than 1420 bytes; over TCP each is plain JSON ended by a NUL byte.

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::{Map, Value, json};

use super::transport::Endpoint;
use super::{LogInfo, Message};

/// The largest datagram sent; longer messages are chunked (the Graylog library's size).
const CHUNK_SIZE: usize = 1420;
/// A chunk's header: magic, message ID, sequence number, count.
const CHUNK_HEADER: usize = 12;
/// GELF allows at most this many chunks per message.
const MAX_CHUNKS: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Compression {
    Gzip,
    Zlib,
    None,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub endpoint: Endpoint,
    pub compression: Compression,
    /// -1 (the library's default) to 9; Docker's default is 1.
    pub level: i32,
    pub max_reconnect: u32,
    pub reconnect_delay_ms: u64,
}

impl Config {
    pub fn parse(opts: &BTreeMap<String, String>) -> Result<Config, String> {
        let address = opts.get("gelf-address").map(String::as_str).unwrap_or("");
        if address.is_empty() {
            return Err("gelf-address is a required parameter".into());
        }
        let (scheme, rest) = address.split_once("://").unwrap_or(("", address));
        if scheme != "udp" && scheme != "tcp" {
            return Err("gelf: endpoint needs to be TCP or UDP".into());
        }
        let host = rest.split('/').next().unwrap_or("");
        let port_ok = host.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
        if !port_ok {
            return Err("gelf: please provide gelf-address as proto://host:port".into());
        }
        let udp = scheme == "udp";
        let mut c = Config {
            endpoint: if udp { Endpoint::Udp(host.into()) } else { Endpoint::Tcp(host.into()) },
            compression: Compression::Gzip,
            level: 1,
            max_reconnect: 3,
            reconnect_delay_ms: 1000,
        };
        for (key, val) in opts {
            match key.as_str() {
                k if super::is_common(k) || super::is_builtin(k) || k == "gelf-address" => {}
                "gelf-compression-level" | "gelf-compression-type" if !udp => {
                    return Err("compression is only supported on UDP".into());
                }
                "gelf-compression-level" => match val.parse::<i32>() {
                    Ok(n) if (-1..=9).contains(&n) => c.level = n,
                    _ => return Err(format!("unknown value {val:?} for log opt {key:?} for gelf log driver")),
                },
                "gelf-compression-type" => {
                    c.compression = match val.as_str() {
                        "gzip" => Compression::Gzip,
                        "zlib" => Compression::Zlib,
                        "none" => Compression::None,
                        _ => return Err(format!("unknown value {val:?} for log opt {key:?} for gelf log driver")),
                    }
                }
                "gelf-tcp-max-reconnect" | "gelf-tcp-reconnect-delay" => {
                    if udp {
                        return Err(format!("{key:?} is only valid for TCP"));
                    }
                    let n: u32 = val.parse().map_err(|_| format!("{key:?} must be a positive integer"))?;
                    if key == "gelf-tcp-max-reconnect" {
                        c.max_reconnect = n;
                    } else {
                        // Docker passes the number on as a time.Duration: nanoseconds.
                        c.reconnect_delay_ms = (n as u64).div_ceil(1_000_000).max(1);
                    }
                }
                _ => return Err(format!("unknown log opt {key:?} for gelf log driver")),
            }
        }
        Ok(c)
    }
}

pub struct Formatter {
    udp: bool,
    compression: Compression,
    level: u32,
    host: String,
    extra: Map<String, Value>,
    /// Chunked messages' IDs: random at start, then counted.
    next_id: u64,
}

impl Formatter {
    pub fn new(c: &Config, info: &LogInfo) -> Formatter {
        let mut extra = Map::new();
        extra.insert("_container_id".into(), json!(info.id));
        extra.insert("_container_name".into(), json!(info.name));
        extra.insert("_image_id".into(), json!(info.image_id));
        extra.insert("_image_name".into(), json!(info.image_name));
        extra.insert("_command".into(), json!(info.command));
        extra.insert("_tag".into(), json!(info.tag));
        extra.insert("_created".into(), json!(info.created));
        for (k, v) in &info.extra {
            let k = if k.starts_with('_') { k.clone() } else { format!("_{k}") };
            extra.insert(k, json!(v));
        }
        Formatter {
            udp: matches!(c.endpoint, Endpoint::Udp(_)),
            compression: c.compression,
            level: if c.level < 0 { 6 } else { c.level as u32 },
            host: info.hostname.clone(),
            extra,
            next_id: seed(),
        }
    }

    /// The message's JSON.
    pub fn json(&self, m: &Message) -> Vec<u8> {
        let mut o = Map::new();
        o.insert("version".into(), json!("1.1"));
        o.insert("host".into(), json!(self.host));
        o.insert("short_message".into(), json!(String::from_utf8_lossy(m.line)));
        // Milliseconds, as Docker rounds them.
        let ms = m.time.div_euclid(1_000_000);
        o.insert("timestamp".into(), json!(ms as f64 / 1000.0));
        o.insert("level".into(), json!(m.severity()));
        for (k, v) in &self.extra {
            o.insert(k.clone(), v.clone());
        }
        serde_json::to_vec(&Value::Object(o)).unwrap_or_default()
    }

    fn compress(&self, data: &[u8]) -> Vec<u8> {
        let level = flate2::Compression::new(self.level);
        match self.compression {
            Compression::None => data.to_vec(),
            Compression::Gzip => {
                let mut w = flate2::write::GzEncoder::new(Vec::new(), level);
                // Writing into a Vec cannot fail.
                let _ = w.write_all(data);
                w.finish().unwrap_or_default()
            }
            Compression::Zlib => {
                let mut w = flate2::write::ZlibEncoder::new(Vec::new(), level);
                // Writing into a Vec cannot fail.
                let _ = w.write_all(data);
                w.finish().unwrap_or_default()
            }
        }
    }
}

/// Eight random bytes for chunk IDs (from the kernel; the time if that fails).
fn seed() -> u64 {
    let mut b = [0u8; 8];
    match std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b)) {
        Ok(()) => u64::from_ne_bytes(b),
        Err(_) => berth_api::time::now_nanos() as u64 ^ std::process::id() as u64,
    }
}

impl super::Format for Formatter {
    fn frames(&mut self, m: &Message, out: &mut Vec<Vec<u8>>) {
        if m.line.is_empty() {
            return;
        }
        let mut data = self.json(m);
        if !self.udp {
            data.push(0);
            out.push(data);
            return;
        }
        let data = self.compress(&data);
        if data.len() <= CHUNK_SIZE {
            out.push(data);
            return;
        }
        let per = CHUNK_SIZE - CHUNK_HEADER;
        let count = data.len().div_ceil(per);
        if count > MAX_CHUNKS {
            return;
        }
        let id = self.next_id.to_be_bytes();
        self.next_id = self.next_id.wrapping_add(1);
        for (i, piece) in data.chunks(per).enumerate() {
            let mut d = Vec::with_capacity(CHUNK_HEADER + piece.len());
            d.extend_from_slice(&[0x1e, 0x0f]);
            d.extend_from_slice(&id);
            d.push(i as u8);
            d.push(count as u8);
            d.extend_from_slice(piece);
            out.push(d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Format;
    use super::*;
    use std::io::Read;

    fn opts(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn options_as_docker_checks_them() {
        let e = |kv: &[(&str, &str)]| Config::parse(&opts(kv)).unwrap_err();
        assert_eq!(e(&[]), "gelf-address is a required parameter");
        assert_eq!(e(&[("gelf-address", "http://h:1")]), "gelf: endpoint needs to be TCP or UDP");
        assert_eq!(e(&[("gelf-address", "udp://h")]), "gelf: please provide gelf-address as proto://host:port");
        assert_eq!(
            e(&[("gelf-address", "tcp://h:1"), ("gelf-compression-type", "gzip")]),
            "compression is only supported on UDP"
        );
        assert_eq!(
            e(&[("gelf-address", "udp://h:1"), ("gelf-compression-type", "lz4")]),
            "unknown value \"lz4\" for log opt \"gelf-compression-type\" for gelf log driver"
        );
        assert_eq!(
            e(&[("gelf-address", "udp://h:1"), ("gelf-tcp-max-reconnect", "1")]),
            "\"gelf-tcp-max-reconnect\" is only valid for TCP"
        );
        assert_eq!(
            e(&[("gelf-address", "udp://h:1"), ("gelf-foo", "1")]),
            "unknown log opt \"gelf-foo\" for gelf log driver"
        );
        let c = Config::parse(&opts(&[
            ("gelf-address", "udp://127.0.0.1:12201"),
            ("gelf-compression-type", "zlib"),
            ("labels", "a"),
        ]))
        .unwrap();
        assert_eq!((c.endpoint, c.compression), (Endpoint::Udp("127.0.0.1:12201".into()), Compression::Zlib));
    }

    fn info() -> LogInfo {
        LogInfo {
            id: "0123456789abcdef".repeat(4),
            name: "web".into(),
            image_id: "sha256:feed".into(),
            image_name: "busybox".into(),
            command: "sh -c echo".into(),
            created: "2026-01-01T00:00:00Z".into(),
            tag: "0123456789ab".into(),
            hostname: "box".into(),
            extra: [("team".to_string(), "blue".to_string())].into(),
        }
    }

    #[test]
    fn udp_messages_are_gzipped_json_with_dockers_fields_and_chunked_when_large() {
        let c = Config::parse(&opts(&[("gelf-address", "udp://127.0.0.1:1")])).unwrap();
        let mut f = Formatter::new(&c, &info());
        let m = Message { stream: 2, line: b"oops", time: 1_700_000_000_123_456_789, partial: None };
        let mut out = Vec::new();
        f.frames(&m, &mut out);
        assert_eq!(out.len(), 1);
        let mut s = String::new();
        flate2::read::GzDecoder::new(&out[0][..]).read_to_string(&mut s).unwrap();
        let v: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["version"], "1.1");
        assert_eq!(v["short_message"], "oops");
        assert_eq!(v["level"], 3);
        assert_eq!(v["timestamp"].as_f64().unwrap(), 1_700_000_000.123);
        assert_eq!(v["_container_name"], "web");
        assert_eq!(v["_tag"], "0123456789ab");
        assert_eq!(v["_team"], "blue");
        // Incompressible text a few chunks long.
        let mut x = 12345u32;
        let big: Vec<u8> = (0..6000)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                b'a' + (x >> 16) as u8 % 26
            })
            .collect();
        out.clear();
        f.frames(&Message { line: &big, ..m }, &mut out);
        assert!(out.len() > 1);
        let mut joined = Vec::new();
        for (i, c) in out.iter().enumerate() {
            assert!(c.len() <= CHUNK_SIZE);
            assert_eq!(&c[..2], &[0x1e, 0x0f]);
            assert_eq!(c[2..10], out[0][2..10], "one message ID");
            assert_eq!((c[10] as usize, c[11] as usize), (i, out.len()));
            joined.extend_from_slice(&c[12..]);
        }
        let mut s = String::new();
        flate2::read::GzDecoder::new(&joined[..]).read_to_string(&mut s).unwrap();
        let v: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["short_message"].as_str().unwrap().as_bytes(), &big[..]);
    }

    #[test]
    fn tcp_messages_are_plain_json_ended_by_nul() {
        let c = Config::parse(&opts(&[("gelf-address", "tcp://127.0.0.1:1")])).unwrap();
        let mut f = Formatter::new(&c, &info());
        let mut out = Vec::new();
        f.frames(&Message { stream: 1, line: b"hi", time: 0, partial: None }, &mut out);
        let frame = &out[0];
        assert_eq!(frame.last(), Some(&0));
        let v: Value = serde_json::from_slice(&frame[..frame.len() - 1]).unwrap();
        assert_eq!((v["short_message"].as_str(), v["level"].as_u64()), (Some("hi"), Some(6)));
    }
}
