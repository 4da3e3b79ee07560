//! The reader and writer tasks behind one upgraded streaming connection, SPDY's or a
//! WebSocket's: closed in order (the protocol's goodbye after everything queued, then the
//! socket) or aborted together when dropped.

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// `C` is the writer's command type; its close command carries a sender the writer
/// answers once the goodbye is written.
pub struct Tasks<C: From<oneshot::Sender<()>>> {
    pub(super) close: mpsc::UnboundedSender<C>,
    pub(super) reader: JoinHandle<()>,
    pub(super) writer: JoinHandle<()>,
}

impl<C: From<oneshot::Sender<()>>> Tasks<C> {
    /// Ends the connection after everything queued.
    pub async fn close(mut self) {
        let (tx, rx) = oneshot::channel();
        if self.close.send(C::from(tx)).is_ok() {
            // The writer answers, or it is gone: either way it has nothing more to send.
            let _ = rx.await;
        }
        // A writer that failed has nothing to report beyond the connection ending.
        let _ = (&mut self.writer).await;
        self.reader.abort();
    }
}

impl<C: From<oneshot::Sender<()>>> Drop for Tasks<C> {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer.abort();
    }
}
