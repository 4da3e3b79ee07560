//! Docker's JSON progress messages, as pulls and pushes emit them.
//!
//! Per-layer messages carry the layer's short ID in `id` and `"progressDetail":{}` (the
//! docker CLI draws one line per ID); byte counts travel in `progressDetail` with a
//! ready-made bar in `progress`, `[=====>      ]  1.05MB/2.15MB`.

use berth_api::progress::{JsonMessage, ProgressDetail};
use tokio::sync::mpsc;

/// Where a pull or push reports. Cloning shares the channel; a closed receiver (the client
/// went away) is ignored here and noticed by the transfer itself.
#[derive(Clone)]
pub struct Progress {
    tx: mpsc::UnboundedSender<JsonMessage>,
}

impl Progress {
    pub fn channel() -> (Progress, mpsc::UnboundedReceiver<JsonMessage>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Progress { tx }, rx)
    }

    pub fn send(&self, m: JsonMessage) {
        // No receiver: the client stopped reading progress; the transfer goes on.
        let _ = self.tx.send(m);
    }

    /// A message without an ID: `Digest: sha256:…`.
    pub fn status(&self, s: impl Into<String>) {
        self.send(JsonMessage::status(s));
    }

    /// A layer's status: `Pull complete`, `Layer already exists`.
    pub fn layer(&self, id: &str, s: impl Into<String>) {
        self.send(JsonMessage { progress_detail: Some(ProgressDetail::default()), ..JsonMessage::status_id(s, id) });
    }

    /// A layer's byte progress.
    pub fn bar(&self, id: &str, s: &str, current: u64, total: u64) {
        self.send(JsonMessage {
            progress_detail: Some(ProgressDetail {
                current: Some(current as i64),
                total: (total > 0).then_some(total as i64),
            }),
            progress: Some(bar_text(current, total)),
            ..JsonMessage::status_id(s, id)
        });
    }

    pub fn aux(&self, v: serde_json::Value) {
        self.send(JsonMessage { progress_detail: Some(ProgressDetail::default()), ..JsonMessage::aux(v) });
    }

    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// Docker's `HumanSizeWithPrecision(n, 3)`: decimal units, three significant digits.
pub fn human(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < units.len() {
        v /= 1000.0;
        i += 1;
    }
    let s = if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    let s = if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s };
    format!("{s}{}", units[i])
}

/// `[=====>      ]  1.05MB/2.15MB`, 50 columns wide.
pub fn bar_text(current: u64, total: u64) -> String {
    if total == 0 {
        return format!("{:>8}", human(current));
    }
    let width = 50u64;
    let filled = (current.min(total) * width / total) as usize;
    let mut b = "=".repeat(filled);
    if filled < width as usize {
        b.push('>');
        b.push_str(&" ".repeat(width as usize - filled - 1));
    } else {
        b.pop();
        b.push('>');
    }
    format!("[{b}] {:>8}/{}", human(current), human(total))
}

/// Rate-limits byte progress: report when at least 2% (or 1 MiB) more has moved.
pub struct Throttle {
    last: u64,
    step: u64,
}

impl Throttle {
    pub fn new(total: u64) -> Throttle {
        Throttle { last: 0, step: (total / 50).max(1 << 20) }
    }

    pub fn due(&mut self, current: u64) -> bool {
        if current >= self.last + self.step {
            self.last = current;
            true
        } else {
            false
        }
    }
}

/// The short ID Docker shows for a digest: the first 12 hex digits.
pub fn short(digest: &str) -> String {
    let hex = digest.split_once(':').map(|(_, h)| h).unwrap_or(digest);
    hex.chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_bars() {
        assert_eq!(human(2_152_000), "2.15MB");
        assert_eq!(human(999), "999B");
        assert_eq!(human(12_300), "12.3kB");
        assert_eq!(human(100_000_000), "100MB");
        let b = bar_text(1, 2);
        assert!(b.starts_with("[=========================>"), "{b}");
        assert!(bar_text(2, 2).contains("=>]"));
        assert_eq!(short("sha256:0123456789abcdef"), "0123456789ab");
    }
}
