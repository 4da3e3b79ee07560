//! Client sessions (`POST /session`): the connection a BuildKit client opens so the daemon
//! can call back into it, for the files of local sources, exported files, registry
//! credentials, secrets and SSH agents ([`crate::ssh`]).
//!
//! The request's headers name the session (`X-Docker-Expose-Session-Uuid`, `-Name`,
//! `-Sharedkey`) and list the methods the client serves (`-Grpc-Method`, one value each);
//! after `101 Switching Protocols` the client is the HTTP/2 *server* on that connection and
//! the daemon the client. A session lives as long as its connection.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::HeaderMap;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Notify, watch};

use crate::fsutil::{self, Entry, Received};
use crate::grpc::{Channel, Code, Error, Incoming, Outgoing, Result};
use crate::proto::{CredentialsRequest, CredentialsResponse, GetSecretRequest, GetSecretResponse};

pub const HEADER_ID: &str = "x-docker-expose-session-uuid";
pub const HEADER_NAME: &str = "x-docker-expose-session-name";
pub const HEADER_SHARED_KEY: &str = "x-docker-expose-session-sharedkey";
pub const HEADER_METHOD: &str = "x-docker-expose-session-grpc-method";

pub const FILE_SYNC: &str = "/moby.filesync.v1.FileSync/DiffCopy";
pub const FILE_SEND: &str = "/moby.filesync.v1.FileSend/DiffCopy";
pub const CREDENTIALS: &str = "/moby.filesync.v1.Auth/Credentials";
pub const GET_SECRET: &str = "/moby.buildkit.secrets.v1.Secrets/GetSecret";

/// One attached session.
pub struct Session {
    pub id: String,
    pub name: String,
    pub shared_key: String,
    methods: HashSet<String>,
    channel: Channel,
    closed: watch::Receiver<bool>,
}

/// Which part of a local directory to transfer (gRPC metadata of `FileSync.DiffCopy`; the
/// client applies the patterns, as `.dockerignore` reads them).
#[derive(Debug, Clone, Default)]
pub struct DirRequest {
    pub name: String,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub follow: Vec<String>,
}

/// Header values must be visible ASCII; others are sent query-escaped with `<key>-encoded: 1`,
/// as BuildKit's filesync does.
fn push_values(md: &mut Vec<(String, String)>, key: &str, values: &[String]) {
    let plain = values.iter().all(|v| v.bytes().all(|b| (0x20..0x7f).contains(&b)));
    for v in values {
        let v = if plain { v.clone() } else { berth_api::percent::encode_query(v) };
        md.push((key.to_string(), v));
    }
    if !plain && !values.is_empty() {
        md.push((format!("{key}-encoded"), "1".to_string()));
    }
}

impl Session {
    pub fn supports(&self, method: &str) -> bool {
        self.methods.contains(&method.to_ascii_lowercase())
    }

    pub fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    /// Resolves when the session's connection is gone.
    pub async fn closed(&self) {
        let mut rx = self.closed.clone();
        let _ = rx.wait_for(|c| *c).await;
    }

    /// Opens a call to one of the client's methods.
    pub async fn call(&self, method: &str, metadata: &[(String, String)]) -> Result<(Outgoing, Incoming)> {
        if !self.supports(method) {
            return Err(Error::status(Code::Unimplemented, format!("method {method} not supported by the client")));
        }
        self.channel.call(method, metadata).await
    }

    /// Copies the client's local directory `req.name` into `dest` (an empty directory).
    pub async fn fetch_dir(&self, req: &DirRequest, dest: &Path) -> Result<Received> {
        let mut md = vec![("dir-name".to_string(), req.name.clone())];
        push_values(&mut md, "include-patterns", &req.include);
        push_values(&mut md, "exclude-patterns", &req.exclude);
        push_values(&mut md, "followpaths", &req.follow);
        let (mut tx, mut rx) = self.call(FILE_SYNC, &md).await?;
        let got = fsutil::receive(&mut tx, &mut rx, dest).await?;
        let _ = tx.close();
        // The status at the end of the call.
        while rx.message::<crate::proto::Packet>().await?.is_some() {}
        Ok(got)
    }

    /// Sends a tree to the client's export target `exporter` (`-o type=local`).
    pub async fn export_dir(&self, exporter: usize, entries: Vec<Entry>) -> Result<()> {
        let md = vec![("buildkit-attachable-exporter-id".to_string(), exporter.to_string())];
        let (mut tx, rx) = self.call(FILE_SEND, &md).await?;
        fsutil::send(&mut tx, rx, entries).await?;
        tx.close()
    }

    /// One request, one answer.
    pub(crate) async fn unary<Q: prost::Message, A: prost::Message + Default>(&self, method: &str, q: &Q) -> Result<A> {
        let (mut tx, mut rx) = self.call(method, &[]).await?;
        tx.send(q).await?;
        let _ = tx.close();
        let a = rx.message::<A>().await?.unwrap_or_default();
        while rx.message::<A>().await?.is_some() {}
        Ok(a)
    }

    /// The client's credentials for registry `host` (`registry-1.docker.io` for Docker
    /// Hub), as `docker login` stored them; `None` when it has none or offers no auth.
    pub async fn credentials(&self, host: &str) -> Result<Option<CredentialsResponse>> {
        if !self.supports(CREDENTIALS) {
            return Ok(None);
        }
        let r: CredentialsResponse = self.unary(CREDENTIALS, &CredentialsRequest { host: host.to_string() }).await?;
        Ok((!r.username.is_empty() || !r.secret.is_empty()).then_some(r))
    }

    /// The secret `id` the client offers (`--secret id=…`); `NotFound` when it has none.
    pub async fn secret(&self, id: &str) -> Result<Vec<u8>> {
        let r: GetSecretResponse =
            self.unary(GET_SECRET, &GetSecretRequest { id: id.to_string(), ..Default::default() }).await?;
        Ok(r.data)
    }

    /// Opens the client's file export target `exporter` (`-o type=tar`); the bytes go out as
    /// `BytesMessage`s, and [`FileWriter::finish`] waits until the client has them.
    pub async fn export_file(&self, exporter: usize) -> Result<FileWriter> {
        let md = vec![("buildkit-attachable-exporter-id".to_string(), exporter.to_string())];
        let (tx, rx) = self.call(FILE_SEND, &md).await?;
        Ok(FileWriter { tx, rx })
    }
}

/// A file being written to the client.
pub struct FileWriter {
    tx: Outgoing,
    rx: Incoming,
}

impl FileWriter {
    pub async fn write(&mut self, data: Vec<u8>) -> Result<()> {
        self.tx.send(&crate::proto::BytesMessage { data }).await
    }

    pub async fn finish(mut self) -> Result<()> {
        self.tx.close()?;
        while self.rx.message::<crate::proto::BytesMessage>().await?.is_some() {}
        Ok(())
    }
}

/// The sessions attached to this daemon.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Arc<Session>>>,
    changed: Notify,
}

fn values<'a>(h: &'a HeaderMap, key: &str) -> impl Iterator<Item = &'a str> {
    h.get_all(key).into_iter().filter_map(|v| v.to_str().ok())
}

impl Sessions {
    /// Serves a session on the upgraded connection `io` until it closes.
    pub async fn attach<T>(&self, io: T, headers: &HeaderMap) -> Result<()>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let first = |k: &str| values(headers, k).next().unwrap_or_default().to_string();
        let id = first(HEADER_ID);
        if id.is_empty() {
            return Err(Error::Protocol("a session needs X-Docker-Expose-Session-Uuid".into()));
        }
        let methods = values(headers, HEADER_METHOD)
            .flat_map(|v| v.split(','))
            .map(|m| m.trim().to_ascii_lowercase())
            .filter(|m| !m.is_empty())
            .collect();
        let (channel, mut closed) = Channel::connect(io).await?;
        let session = Arc::new(Session {
            id: id.clone(),
            name: first(HEADER_NAME),
            shared_key: first(HEADER_SHARED_KEY),
            methods,
            channel,
            closed: closed.clone(),
        });
        self.lock().insert(id.clone(), session.clone());
        self.changed.notify_waiters();
        while !*closed.borrow() {
            if closed.changed().await.is_err() {
                break;
            }
        }
        let mut map = self.lock();
        if map.get(&id).is_some_and(|s| Arc::ptr_eq(s, &session)) {
            map.remove(&id);
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Session>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The session `id` (BuildKit allows a `prefix:` before it), waiting up to `wait` for it
    /// to attach.
    pub async fn get(&self, id: &str, wait: Duration) -> Option<Arc<Session>> {
        let id = match id.split_once(':') {
            Some((_, rest)) if !rest.is_empty() => rest,
            _ => id,
        };
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(s) = self.lock().get(id).filter(|s| !s.is_closed()).cloned() {
                return Some(s);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }

    pub fn count(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grpc::{Call, serve};

    /// A client session offering Auth and Secrets, served on one end of a pipe.
    async fn attached() -> (Arc<Sessions>, Arc<Session>) {
        let (a, b) = tokio::io::duplex(1 << 16);
        tokio::spawn(serve(a, |mut call: Call| async move {
            match call.path.as_str() {
                CREDENTIALS => {
                    let q: CredentialsRequest = call.request().await.unwrap();
                    let a = if q.host == "reg.test:5000" {
                        CredentialsResponse { username: "alice".into(), secret: "s3cret".into() }
                    } else {
                        CredentialsResponse::default()
                    };
                    call.reply(Ok(a)).await
                }
                GET_SECRET => {
                    let q: GetSecretRequest = call.request().await.unwrap();
                    let r = if q.id == "tok" {
                        Ok(GetSecretResponse { data: b"v4lue".to_vec() })
                    } else {
                        Err(Error::status(Code::NotFound, format!("secret {} not found", q.id)))
                    };
                    call.reply(r).await
                }
                _ => call.fail(Error::status(Code::Unimplemented, "no")),
            }
        }));
        let sessions = Arc::new(Sessions::default());
        let mut h = HeaderMap::new();
        h.insert(HEADER_ID, "sid".parse().unwrap());
        h.append(HEADER_METHOD, CREDENTIALS.parse().unwrap());
        h.append(HEADER_METHOD, GET_SECRET.parse().unwrap());
        let s2 = sessions.clone();
        tokio::spawn(async move { s2.attach(b, &h).await });
        let s = sessions.get("prefix:sid", Duration::from_secs(10)).await.unwrap();
        (sessions, s)
    }

    #[tokio::test]
    async fn credentials_and_secrets_come_from_the_client() {
        let (_keep, s) = attached().await;
        let c = s.credentials("reg.test:5000").await.unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.secret.as_str()), ("alice", "s3cret"));
        assert!(s.credentials("other.test").await.unwrap().is_none());
        assert_eq!(s.secret("tok").await.unwrap(), b"v4lue");
        match s.secret("nope").await {
            Err(Error::Status { code: Code::NotFound, .. }) => {}
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            s.fetch_dir(&DirRequest::default(), Path::new("/nonexistent")).await,
            Err(Error::Status { code: Code::Unimplemented, .. })
        ));
    }
}
