//! ETags computed after the publish. A large file written through the mount is published
//! with its record's ETag left out (hashing it on the way would take a core from the
//! writer, see `behind`); its record is then pending: readers through the mount need no
//! ETag, an S3 read computes it from the data under its shared lock, and [`EtagWorker`]
//! stores it soon after the publish, at a lower priority than the requests.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::object::{is_not_found, read_record};
use super::{io, layout, Result, Store, StoreError};
use crate::lock::{Create, LockError};
use crate::platform::{self, OpenMode};

impl Store {
    /// Computes and stores the ETag of `bucket/key` if its record has it pending; whether it
    /// stored one (false: there was none pending, or the data changed meanwhile).
    pub fn fill_etag(&self, bucket: &str, key: &str) -> Result<bool> {
        let meta_rel = layout::meta(bucket, key);
        let data_rel = layout::data(bucket, key);
        let open_data = || match self.root.open(&data_rel, OpenMode::Read) {
            Ok(f) => platform::stat_file(&f)
                .map(|st| Some((f, st)))
                .map_err(StoreError::io("stat", &data_rel)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(StoreError::io("open", &data_rel)(e)),
        };
        // The data the record describes, chosen under the shared lock.
        let (data, st) = {
            let guard = match self.locks.read(&meta_rel, Create::No) {
                Ok(g) => g,
                Err(LockError::NotFound { .. }) => return Ok(false),
                Err(e) => return Err(e.into()),
            };
            let Some((data, st)) = open_data()? else {
                return Ok(false);
            };
            match read_record(guard.file(), &meta_rel) {
                Some(r) if r.pending_for(&st) => (data, st),
                _ => return Ok(false),
            }
        };
        // Hashed without the lock, so that readers and writers do not wait for it: nasgate
        // replaces published data by rename, never in place, so the open file keeps these
        // bytes; a tool writing into it directly on the share changes its stat, seen below.
        let digest =
            io::hash_range(&data, 0, st.size, &[]).map_err(StoreError::io("read", &data_rel))?;
        let guard = match self.locks.write(&meta_rel, Create::No) {
            Ok(g) => g,
            Err(LockError::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        let held = platform::stat_file(&data).map_err(StoreError::io("stat", &data_rel))?;
        let now = open_data()?.map(|(_, st)| st);
        if held != st || now != Some(st) {
            return Ok(false);
        }
        let Some(mut record) = read_record(guard.file(), &meta_rel) else {
            return Ok(false);
        };
        if !record.pending_for(&st) {
            return Ok(false);
        }
        record.meta.insert("etag".into(), digest.md5_hex());
        self.replace_record(&guard, &meta_rel, &record)?;
        self.listed.lock().remove(&data_rel);
        Ok(true)
    }
}

/// Objects whose ETag is to be stored, each once however often it is queued again first.
#[derive(Default)]
struct Queue {
    order: VecDeque<(String, String)>,
    queued: HashSet<(String, String)>,
    /// A job taken from the queue and not finished.
    busy: bool,
    /// The worker is gone: the thread ends once the queue is empty.
    closed: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    changed: Condvar,
}

/// A thread that stores pending ETags (`Store::fill_etag`) of objects handed to it; it ends
/// with its worker or with the store.
pub struct EtagWorker {
    shared: Arc<Shared>,
}

impl EtagWorker {
    /// Starts the thread for `store` (at a lower scheduling priority where the platform has
    /// one). Without a thread to be had, ETags are computed by the reads that need them.
    pub fn start(store: &Arc<Store>) -> EtagWorker {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            changed: Condvar::new(),
        });
        let store = Arc::downgrade(store);
        let worker = shared.clone();
        let started = std::thread::Builder::new()
            .name("nasgate-etags".into())
            .spawn(move || run(&store, &worker));
        if let Err(e) = started {
            tracing::warn!("no thread to store ETags after the publish: {e}");
        }
        EtagWorker { shared }
    }

    /// Stores the ETag of `bucket/key` soon, if it is pending then.
    pub fn queue(&self, bucket: &str, key: &str) {
        let job = (bucket.to_string(), key.to_string());
        let mut q = self.shared.queue.lock();
        if q.queued.insert(job.clone()) {
            q.order.push_back(job);
            self.shared.changed.notify_all();
        }
    }

    /// Waits up to `limit` until every queued ETag is stored (or found not pending);
    /// whether they all were.
    pub fn settle(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut q = self.shared.queue.lock();
        while !q.order.is_empty() || q.busy {
            if self.shared.changed.wait_until(&mut q, deadline).timed_out() {
                return q.order.is_empty() && !q.busy;
            }
        }
        true
    }
}

impl Drop for EtagWorker {
    fn drop(&mut self) {
        self.shared.queue.lock().closed = true;
        self.shared.changed.notify_all();
    }
}

fn run(store: &Weak<Store>, sh: &Shared) {
    platform::lower_thread_priority();
    loop {
        let job = {
            let mut q = sh.queue.lock();
            q.busy = false;
            sh.changed.notify_all();
            loop {
                if let Some(job) = q.order.pop_front() {
                    q.queued.remove(&job);
                    q.busy = true;
                    break Some(job);
                }
                if q.closed {
                    break None;
                }
                sh.changed.wait(&mut q);
            }
        };
        let Some((bucket, key)) = job else {
            return;
        };
        let Some(store) = store.upgrade() else {
            return;
        };
        if let Err(e) = store.fill_etag(&bucket, &key) {
            // The next S3 read computes it; fsck does not count a pending ETag as a fault.
            tracing::debug!(bucket, key, "ETag left pending: {e}");
        }
    }
}
