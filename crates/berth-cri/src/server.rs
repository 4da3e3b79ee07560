//! The CRI socket: a unix socket serving both services over gRPC (HTTP/2).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;

use crate::Cri;
use crate::proto::image_service_server::ImageServiceServer;
use crate::proto::runtime_service_server::RuntimeServiceServer;
use crate::runtime::Service;

/// Binds the socket at `path` (replacing a stale one), root's only (0660): whoever can
/// connect runs pods as root.
pub fn bind(path: &Path) -> Result<UnixListener, String> {
    let _ = std::fs::remove_file(path);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("creating {}: {e}", parent.display()))?;
    }
    let l = UnixListener::bind(path).map_err(|e| format!("listening on {}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| format!("setting the mode of {}: {e}", path.display()))?;
    Ok(l)
}

/// Serves the CRI on `listener` until the task is dropped or the server fails.
pub async fn serve(cri: Arc<Cri>, listener: UnixListener) -> Result<(), String> {
    let svc = Service(cri);
    tonic::transport::Server::builder()
        .add_service(RuntimeServiceServer::new(svc.clone()))
        .add_service(ImageServiceServer::new(svc))
        .serve_with_incoming(UnixListenerStream::new(listener))
        .await
        .map_err(|e| format!("serving the CRI: {e}"))
}
