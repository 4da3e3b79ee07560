//! A small etcd v3 client over etcd's HTTP/JSON gateway (`/v3/kv/*`, `/v3/lease/*`,
//! `/v3/watch`), enough for the overlay driver's cluster state.
//!
//! The gateway speaks the gRPC API's messages as JSON: keys and values are base64, 64-bit
//! numbers are strings, and fields equal to their default (`false`, `0`, empty) are left
//! out. Each call opens its own connection (requests are few and tiny); every call has a
//! deadline, so an unreachable store is an error within [`TIMEOUT`], never a hang.

use std::time::Duration;

use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

pub const TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    /// No connection or no answer in time.
    #[error("cluster store {0} is unreachable: {1}")]
    Unreachable(String, String),
    /// The store answered something else than expected.
    #[error("cluster store {0}: {1}")]
    Protocol(String, String),
}

/// One key with its value and revisions.
#[derive(Debug, Clone, PartialEq)]
pub struct Kv {
    pub key: String,
    pub value: Vec<u8>,
    pub mod_revision: i64,
    pub lease: i64,
}

/// A condition of a transaction (gRPC `Compare`).
#[derive(Debug, Clone)]
pub enum Cmp {
    /// The key (or, with `range_end`, every key of the range) does not exist.
    Absent(String),
    /// The key exists.
    Present(String),
    /// Every key under the prefix is absent (the prefix holds nothing).
    Empty(String),
    /// The key was last modified at this revision (0: it does not exist).
    ModRevision(String, i64),
}

/// An operation of a transaction.
#[derive(Debug, Clone)]
pub enum Op {
    Put { key: String, value: Vec<u8>, lease: i64 },
    Delete(String),
}

#[derive(Debug, Clone)]
pub struct Client {
    /// `host:port` of the gateway.
    pub addr: String,
    /// The store as the user wrote it (for messages).
    pub url: String,
}

fn b64(s: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn unb64(v: &Value) -> Vec<u8> {
    v.as_str().and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok()).unwrap_or_default()
}

fn num(v: &Value) -> i64 {
    match v {
        Value::String(s) => s.parse().unwrap_or(0),
        Value::Number(n) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

/// The end of the range holding every key that starts with `prefix`.
pub fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut b = prefix.as_bytes().to_vec();
    while let Some(last) = b.pop() {
        if last < 0xff {
            b.push(last + 1);
            return b;
        }
    }
    vec![0]
}

impl Client {
    /// `etcd://host:port` (dockerd's form) or `http://host:port`; the port defaults to 2379.
    pub fn parse(url: &str) -> Result<Client, String> {
        let rest = url
            .strip_prefix("etcd://")
            .or_else(|| url.strip_prefix("http://"))
            .ok_or_else(|| format!("invalid cluster store {url:?}: berth supports etcd://HOST:PORT"))?;
        let host = rest.split('/').next().unwrap_or("").split(',').next().unwrap_or("");
        if host.is_empty() {
            return Err(format!("invalid cluster store {url:?}: no host"));
        }
        let addr = if host.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
            host.to_string()
        } else {
            format!("{host}:2379")
        };
        Ok(Client { addr, url: url.to_string() })
    }

    fn unreachable(&self, e: impl std::fmt::Display) -> EtcdError {
        EtcdError::Unreachable(self.url.clone(), e.to_string())
    }

    async fn send(&self, path: &str, body: &Value) -> Result<hyper::Response<hyper::body::Incoming>, EtcdError> {
        let stream = tokio::time::timeout(TIMEOUT, TcpStream::connect(&self.addr))
            .await
            .map_err(|_| self.unreachable("connection timed out"))?
            .map_err(|e| self.unreachable(e))?;
        let _ = stream.set_nodelay(true);
        let (mut tx, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| self.unreachable(e))?;
        tokio::spawn(conn);
        let req = hyper::Request::post(path)
            .header("host", &self.addr)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| EtcdError::Protocol(self.url.clone(), e.to_string()))?;
        tokio::time::timeout(TIMEOUT, tx.send_request(req))
            .await
            .map_err(|_| self.unreachable("no answer in time"))?
            .map_err(|e| self.unreachable(e))
    }

    /// One request, one JSON answer.
    async fn call(&self, path: &str, body: Value) -> Result<Value, EtcdError> {
        let resp = self.send(path, &body).await?;
        let status = resp.status();
        let bytes = tokio::time::timeout(TIMEOUT, resp.into_body().collect())
            .await
            .map_err(|_| self.unreachable("no answer in time"))?
            .map_err(|e| self.unreachable(e))?
            .to_bytes();
        let v: Value = serde_json::from_slice(&bytes)
            .map_err(|e| EtcdError::Protocol(self.url.clone(), format!("{path}: {e}")))?;
        if !status.is_success() || v.get("error").is_some() {
            let msg =
                v.get("message").or_else(|| v.get("error")).and_then(Value::as_str).unwrap_or("error").to_string();
            return Err(EtcdError::Protocol(self.url.clone(), format!("{path}: {msg}")));
        }
        Ok(v)
    }

    fn kvs(v: &Value) -> Vec<Kv> {
        v.get("kvs")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|k| Kv {
                        key: String::from_utf8_lossy(&unb64(&k["key"])).into_owned(),
                        value: unb64(&k["value"]),
                        mod_revision: num(&k["mod_revision"]),
                        lease: num(&k["lease"]),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every key under `prefix`, and the store's revision they were read at.
    pub async fn list(&self, prefix: &str) -> Result<(Vec<Kv>, i64), EtcdError> {
        let v = self
            .call("/v3/kv/range", json!({"key": b64(prefix.as_bytes()), "range_end": b64(&prefix_end(prefix))}))
            .await?;
        Ok((Self::kvs(&v), num(&v["header"]["revision"])))
    }

    pub async fn get(&self, key: &str) -> Result<Option<Kv>, EtcdError> {
        let v = self.call("/v3/kv/range", json!({"key": b64(key.as_bytes())})).await?;
        Ok(Self::kvs(&v).into_iter().next())
    }

    pub async fn put(&self, key: &str, value: &[u8], lease: i64) -> Result<(), EtcdError> {
        self.call("/v3/kv/put", json!({"key": b64(key.as_bytes()), "value": b64(value), "lease": lease.to_string()}))
            .await
            .map(|_| ())
    }

    pub async fn delete(&self, key: &str) -> Result<(), EtcdError> {
        self.call("/v3/kv/deleterange", json!({"key": b64(key.as_bytes())})).await.map(|_| ())
    }

    /// Runs `ops` if every condition holds; returns whether they did.
    pub async fn txn(&self, when: &[Cmp], ops: &[Op]) -> Result<bool, EtcdError> {
        let compare: Vec<Value> = when
            .iter()
            .map(|c| match c {
                Cmp::Absent(k) => json!({"key": b64(k.as_bytes()), "target": "CREATE", "result": "EQUAL", "create_revision": "0"}),
                Cmp::Present(k) => json!({"key": b64(k.as_bytes()), "target": "CREATE", "result": "GREATER", "create_revision": "0"}),
                Cmp::Empty(p) => json!({"key": b64(p.as_bytes()), "range_end": b64(&prefix_end(p)), "target": "CREATE", "result": "EQUAL", "create_revision": "0"}),
                Cmp::ModRevision(k, r) => json!({"key": b64(k.as_bytes()), "target": "MOD", "result": "EQUAL", "mod_revision": r.to_string()}),
            })
            .collect();
        let success: Vec<Value> = ops
            .iter()
            .map(|o| match o {
                Op::Put { key, value, lease } => json!({"request_put": {"key": b64(key.as_bytes()), "value": b64(value), "lease": lease.to_string()}}),
                Op::Delete(k) => json!({"request_delete_range": {"key": b64(k.as_bytes())}}),
            })
            .collect();
        let v = self.call("/v3/kv/txn", json!({"compare": compare, "success": success})).await?;
        Ok(v.get("succeeded").and_then(Value::as_bool).unwrap_or(false))
    }

    /// A new lease of `ttl` seconds; returns its id.
    pub async fn grant(&self, ttl: i64) -> Result<i64, EtcdError> {
        let v = self.call("/v3/lease/grant", json!({"TTL": ttl.to_string()})).await?;
        match num(&v["ID"]) {
            0 => Err(EtcdError::Protocol(self.url.clone(), "lease grant returned no id".into())),
            id => Ok(id),
        }
    }

    /// Renews a lease; `false` if it has expired (its keys are gone).
    pub async fn keepalive(&self, id: i64) -> Result<bool, EtcdError> {
        let v = self.call("/v3/lease/keepalive", json!({"ID": id.to_string()})).await?;
        Ok(num(&v["result"]["TTL"]) > 0)
    }

    /// Watches every key under `prefix` from revision `from`; `changed` is called once per
    /// batch of events. Returns when the stream ends or breaks.
    pub async fn watch(&self, prefix: &str, from: i64, mut changed: impl FnMut()) -> Result<(), EtcdError> {
        let req = json!({"create_request": {"key": b64(prefix.as_bytes()), "range_end": b64(&prefix_end(prefix)), "start_revision": from.to_string()}});
        let resp = self.send("/v3/watch", &req).await?;
        let mut body = resp.into_body();
        let mut buf = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| self.unreachable(e))?;
            let Some(data) = frame.data_ref() else { continue };
            buf.extend_from_slice(data);
            // The gateway writes one JSON object per message, each followed by a newline.
            while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=nl).collect();
                let Ok(v) = serde_json::from_slice::<Value>(&line) else { continue };
                if v["result"]["canceled"].as_bool() == Some(true) {
                    return Err(EtcdError::Protocol(
                        self.url.clone(),
                        format!("watch canceled: {}", v["result"]["cancel_reason"]),
                    ));
                }
                if v["result"]["events"].as_array().is_some_and(|e| !e.is_empty()) {
                    changed();
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls() {
        assert_eq!(Client::parse("etcd://10.0.0.1:2379").unwrap().addr, "10.0.0.1:2379");
        assert_eq!(Client::parse("etcd://store").unwrap().addr, "store:2379");
        assert_eq!(Client::parse("http://127.0.0.1:4001/").unwrap().addr, "127.0.0.1:4001");
        assert!(Client::parse("consul://x:8500").unwrap_err().contains("etcd://"));
        assert!(Client::parse("etcd://").is_err());
    }

    #[test]
    fn prefix_ends() {
        assert_eq!(prefix_end("/a/"), b"/a0".to_vec());
        assert_eq!(prefix_end("ab"), b"ac".to_vec());
    }

    #[test]
    fn gateway_numbers_are_strings() {
        let v = json!({"kvs": [{"key": b64(b"/k"), "value": b64(b"v"), "mod_revision": "7", "lease": "42"}]});
        assert_eq!(Client::kvs(&v), vec![Kv { key: "/k".into(), value: b"v".to_vec(), mod_revision: 7, lease: 42 }]);
        assert!(Client::kvs(&json!({})).is_empty());
    }
}
