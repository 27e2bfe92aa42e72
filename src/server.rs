//! The HTTP listener: binds, serves until SIGTERM/SIGINT, then drains within a bound.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use warp::Filter;

use crate::ops::maintenance::Maintenance;
use crate::s3::{S3Config, S3};
use crate::store::Store;

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

/// Serves S3 (and the health endpoints) until a stop signal, then lets in-flight requests
/// finish for at most `drain`.
pub async fn run(
    address: SocketAddr,
    store: Arc<Store>,
    config: S3Config,
    maintenance: Maintenance,
    drain: Duration,
) -> Result<(), ServerError> {
    let live = warp::get()
        .and(warp::path!("health" / "live").or(warp::path!("minio" / "health" / "live")))
        .map(|_| warp::reply());
    let ready_store = store.clone();
    let ready = warp::get()
        .and(warp::path!("health" / "ready").or(warp::path!("minio" / "health" / "ready")))
        .and_then(move |_| {
            let store = ready_store.clone();
            async move {
                let ok = tokio::task::spawn_blocking(move || store.ready())
                    .await
                    .unwrap_or(false);
                let status = if ok {
                    warp::http::StatusCode::OK
                } else {
                    warp::http::StatusCode::SERVICE_UNAVAILABLE
                };
                Ok::<_, std::convert::Infallible>(warp::reply::with_status(warp::reply(), status))
            }
        });
    let routes = live
        .or(ready)
        .or(crate::s3::filter(S3::new(store.clone(), config)));
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let mut signal_rx = stop_rx.clone();
    let (bound, server) = warp::serve(routes)
        .try_bind_with_graceful_shutdown(address, async move {
            let _ = signal_rx.wait_for(|s| *s).await;
        })
        .map_err(|source| ServerError::Bind { address, source })?;
    tracing::info!(address = %bound, "listening");
    let server = tokio::spawn(server);
    let upkeep = tokio::spawn(crate::ops::maintenance::run(
        store,
        maintenance,
        stop_rx.clone(),
    ));
    stop_signal().await;
    tracing::info!("stop requested; draining in-flight requests");
    let _ = stop_tx.send(true);
    let _ = stop_rx.borrow_and_update();
    let _ = upkeep.await;
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
