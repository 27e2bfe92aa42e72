//! The HTTP listener: binds, serves until SIGTERM/SIGINT, then drains within a bound.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use warp::Filter;

use crate::lock::Locks;

/// Errors starting or running the listener.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// What the system said.
        source: warp::Error,
    },
}

/// Serves until a stop signal, then lets in-flight requests finish for at most `drain`.
pub async fn run(
    address: SocketAddr,
    locks: Arc<Locks>,
    drain: Duration,
) -> Result<(), ServerError> {
    let _ = locks;
    let live = warp::path!("health" / "live")
        .or(warp::path!("minio" / "health" / "live"))
        .map(|_| warp::reply());
    let routes = live.or(warp::any().map(|| {
        warp::reply::with_status(
            warp::reply::with_header(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NotImplemented</Code><Message>The S3 API is not available in this version yet.</Message></Error>",
                "content-type",
                "application/xml",
            ),
            warp::http::StatusCode::NOT_IMPLEMENTED,
        )
    }));
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let mut signal_rx = stop_rx.clone();
    let (bound, server) = warp::serve(routes)
        .try_bind_with_graceful_shutdown(address, async move {
            let _ = signal_rx.wait_for(|s| *s).await;
        })
        .map_err(|source| ServerError::Bind { address, source })?;
    tracing::info!(address = %bound, "listening");
    let server = tokio::spawn(server);
    stop_signal().await;
    tracing::info!("stop requested; draining in-flight requests");
    let _ = stop_tx.send(true);
    let _ = stop_rx.borrow_and_update();
    if tokio::time::timeout(drain, server).await.is_err() {
        tracing::warn!(
            ?drain,
            "in-flight requests still running after the drain bound; stopping anyway"
        );
    }
    Ok(())
}

async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
