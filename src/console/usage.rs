//! A bucket's usage: a bounded walk through the store's listing (which takes the same care
//! as ListObjects and never shows `.minio.sys`), plus the share's filesystem capacity.

use std::time::Instant;

use crate::store::list::ListQuery;
use crate::store::{Store, StoreError};

/// What a usage walk counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bytes of the objects counted.
    pub bytes: u64,
    /// Objects counted.
    pub objects: u64,
    /// Whether the walk reached the end of the bucket (not cut by the time or entry bound).
    pub complete: bool,
    /// The share's filesystem size in bytes (None where the platform cannot say).
    pub share_total: Option<u64>,
    /// Bytes free to unprivileged users on the share.
    pub share_free: Option<u64>,
}

/// Counts `bucket`'s objects and bytes until the end, `deadline` or `max` objects.
pub fn usage_walk(
    store: &Store,
    bucket: &str,
    deadline: Instant,
    max: u64,
) -> Result<Usage, StoreError> {
    let mut u = Usage::default();
    let mut start: Option<String> = None;
    loop {
        let q = ListQuery {
            prefix: "",
            delimiter: None,
            start_after: start.as_deref(),
            max_keys: 1000,
        };
        let page = store.list(bucket, &q)?;
        for o in &page.objects {
            u.bytes += o.size;
            u.objects += 1;
        }
        if !page.is_truncated || page.next.is_none() {
            u.complete = true;
            break;
        }
        if Instant::now() >= deadline || u.objects >= max {
            break;
        }
        start = page.next;
    }
    #[cfg(unix)]
    {
        let st = store.fs_stats()?;
        let bs = u64::from(st.block_size);
        u.share_total = Some(st.blocks.saturating_mul(bs));
        u.share_free = Some(st.available.saturating_mul(bs));
    }
    Ok(u)
}
