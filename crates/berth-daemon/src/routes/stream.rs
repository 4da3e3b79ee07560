//! Streams to clients: hijacked attach/exec connections and Docker's stream framing.

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use berth_container::attach::{Input, Output, Session};

use crate::body::Body;
use crate::error::{ApiError, ApiResult};
use crate::http::{self, Req, Resp};

/// Parses `--detach-keys` (`ctrl-p,ctrl-q`, `a,ctrl-@`).
pub fn detach_keys(spec: &str) -> ApiResult<Vec<u8>> {
    let spec = if spec.is_empty() { "ctrl-p,ctrl-q" } else { spec };
    let mut out = Vec::new();
    for k in spec.split(',') {
        let k = k.trim();
        if let Some(c) = k.strip_prefix("ctrl-") {
            let b = match c {
                "@" => 0,
                "[" => 27,
                "\\" => 28,
                "]" => 29,
                "^" => 30,
                "_" => 31,
                s if s.len() == 1 && s.as_bytes()[0].is_ascii_lowercase() => s.as_bytes()[0] - b'a' + 1,
                _ => return Err(ApiError::bad_request(format!("Invalid detach keys ({spec}) provided"))),
            };
            out.push(b);
        } else if k.len() == 1 {
            out.push(k.as_bytes()[0]);
        } else {
            return Err(ApiError::bad_request(format!("Invalid detach keys ({spec}) provided")));
        }
    }
    Ok(out)
}

/// Encodes output the way Docker streams it: raw with a TTY, framed without.
pub fn encode(tty: bool, out: &Output) -> Option<Bytes> {
    match out {
        Output::Stdout(b) if tty => Some(b.clone()),
        Output::Stderr(b) if tty => Some(b.clone()),
        Output::Stdout(b) => Some(Bytes::from(berth_api::stream::frame(berth_api::stream::STDOUT, b))),
        Output::Stderr(b) => Some(Bytes::from(berth_api::stream::frame(berth_api::stream::STDERR, b))),
        Output::Exit(_) => None,
    }
}

/// The `101 UPGRADED` answer that hands the connection over to a raw stream.
pub fn upgrade_response(tty: bool) -> Resp {
    let content_type =
        if tty { "application/vnd.docker.raw-stream" } else { "application/vnd.docker.multiplexed-stream" };
    let mut r = http::with_status(101, Body::Empty);
    let h = r.headers_mut();
    h.insert("Content-Type", ::http::HeaderValue::from_static(content_type));
    h.insert("Connection", ::http::HeaderValue::from_static("Upgrade"));
    h.insert("Upgrade", ::http::HeaderValue::from_static("tcp"));
    r.extensions_mut().insert(hyper::ext::ReasonPhrase::from_static(b"UPGRADED"));
    r
}

/// Moves a session over an upgraded connection until the process ends or the client detaches.
pub async fn pump_upgraded(
    upgraded: hyper::upgrade::Upgraded,
    mut session: Session,
    detach: Option<Vec<u8>>,
    prefix: Option<mpsc::Receiver<Bytes>>,
) {
    let tty = session.tty;
    let (mut rd, mut wr) = crate::hijack::take_over(upgraded).await;
    let (detached_tx, mut detached_rx) = tokio::sync::oneshot::channel::<()>();
    if let Some(input) = session.input.clone() {
        let keys = detach.clone().unwrap_or_default();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            let mut matched = 0usize;
            loop {
                let n = match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => {
                        let _ = input.send(Input::Close).await;
                        return;
                    }
                    Ok(n) => n,
                };
                let mut pass = Vec::with_capacity(n);
                for &b in &buf[..n] {
                    if !keys.is_empty() && b == keys[matched] {
                        matched += 1;
                        if matched == keys.len() {
                            if !pass.is_empty() {
                                let _ = input.send(Input::Data(Bytes::from(pass))).await;
                            }
                            let _ = detached_tx.send(());
                            return;
                        }
                        continue;
                    }
                    if matched > 0 {
                        pass.extend_from_slice(&keys[..matched]);
                        matched = 0;
                    }
                    pass.push(b);
                }
                if !pass.is_empty() && input.send(Input::Data(Bytes::from(pass))).await.is_err() {
                    return;
                }
            }
        });
    }
    if let Some(mut prefix) = prefix {
        while let Some(p) = prefix.recv().await {
            if wr.write_all(&p).await.is_err() {
                return;
            }
        }
    }
    // The stdin reader drops its end when the client's input ends (EOF or half-close): that
    // is not a detach, and the output must still be delivered in full.
    let mut detach_pending = true;
    loop {
        tokio::select! {
            o = session.output.recv() => match o {
                Some(o) => {
                    if let Some(b) = encode(tty, &o)
                        && wr.write_all(&b).await.is_err() {
                            break;
                        }
                    if matches!(o, Output::Exit(_)) {
                        break;
                    }
                }
                None => break,
            },
            r = &mut detached_rx, if detach_pending => match r {
                Ok(()) => break,
                Err(_) => detach_pending = false,
            },
        }
    }
    let _ = wr.flush().await;
    let _ = wr.shutdown().await;
}

/// Serves a session: over the hijacked connection if the client asked to upgrade (stdin
/// and output both ways), else as a streamed response body (output only).
pub fn serve_session(
    req: &mut Req,
    mut session: Session,
    detach: Option<Vec<u8>>,
    prefix: Option<mpsc::Receiver<Bytes>>,
) -> Resp {
    let tty = session.tty;
    let Some(upgrade) = req.upgrade.take() else {
        let content_type =
            if tty { "application/vnd.docker.raw-stream" } else { "application/vnd.docker.multiplexed-stream" };
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            if let Some(mut prefix) = prefix {
                while let Some(p) = prefix.recv().await {
                    if tx.send(p).await.is_err() {
                        return;
                    }
                }
            }
            while let Some(o) = session.output.recv().await {
                if let Some(b) = encode(tty, &o)
                    && tx.send(b).await.is_err()
                {
                    return;
                }
            }
        });
        return http::stream(content_type, rx);
    };
    tokio::spawn(async move {
        if let Ok(up) = upgrade.await {
            pump_upgraded(up, session, detach, prefix).await;
        }
    });
    upgrade_response(tty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_key_specs() {
        assert_eq!(detach_keys("").unwrap(), vec![16, 17]);
        assert_eq!(detach_keys("ctrl-a,x").unwrap(), vec![1, b'x']);
        assert!(detach_keys("ctrl-").is_err());
        assert!(detach_keys("abc").is_err());
    }
}
