//! Periodic upkeep of a serving instance: sweeping staging files of instances that are gone
//! (ownership proven by locks) and expiring abandoned multipart uploads.

use std::sync::Arc;
use std::time::Duration;

use crate::store::Store;

/// How often and how hard to clean up.
#[derive(Debug, Clone, Copy)]
pub struct Maintenance {
    /// Time between sweeps.
    pub every: Duration,
    /// Uploads older than this are removed.
    pub upload_expiry: Duration,
}

/// One round: sweep, then expire; logs what it removed.
pub fn round(store: &Store, m: &Maintenance) {
    let metrics = crate::metrics::get();
    match store.sweep_tmp() {
        Ok(n) => {
            metrics.swept(n);
            if n > 0 {
                tracing::info!(directories = n, "swept staging files of stopped instances");
            }
        }
        Err(e) => tracing::warn!(error = %e, "sweeping staging files failed"),
    }
    let expired = store.expire_uploads(m.upload_expiry);
    if let Ok(n) = &expired {
        metrics.expired(*n);
    }
    match expired {
        Ok(0) => {}
        Ok(n) => tracing::info!(uploads = n, "expired abandoned multipart uploads"),
        Err(e) => tracing::warn!(error = %e, "expiring uploads failed"),
    }
}

/// Runs rounds every `m.every` until `stop` turns true.
pub async fn run(store: Arc<Store>, m: Maintenance, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(m.every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let s = store.clone();
        let _ = tokio::task::spawn_blocking(move || round(&s, &m)).await;
    }
}
