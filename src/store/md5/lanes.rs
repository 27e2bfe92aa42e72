//! A shared MD5 service for concurrent uploads: their bytes are queued per stream, and a few
//! workers take up to eight streams with bytes waiting and hash them side by side in the
//! eight lanes of [`super::x8`]. One worker with eight streams does the work of seven cores
//! hashing one stream each; a lone stream is hashed by the plain single-stream code, so it
//! runs as fast as on a thread of its own.
//!
//! Batches form by themselves under load: while a worker hashes one batch, the other streams'
//! bytes pile up and are taken together next time. Nothing ever waits to fill a batch.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};

use bytes::Bytes;

use super::x8::{self, States};
use super::Md5;

/// Chunks a stream may have queued before its writer waits: bounds the memory an upload pins
/// while the hashing falls behind (the worker holds at most as many again).
const QUEUE_LIMIT: usize = 4;

/// Streams hashed together, the lanes of one SIMD vector.
const LANES: usize = 8;

/// One stream being hashed by the service.
pub(crate) struct Stream {
    shared: Arc<Shared>,
}

struct Shared {
    inner: Mutex<Inner>,
    changed: Condvar,
}

struct Inner {
    /// The hasher, absent while a worker holds it.
    md5: Option<Md5>,
    /// Chunks not yet taken by a worker.
    queue: VecDeque<Bytes>,
    /// On the service's ready list or being hashed.
    scheduled: bool,
    /// A worker failed while holding this stream's hasher.
    failed: bool,
}

struct Service {
    ready: Mutex<VecDeque<Arc<Shared>>>,
    wake: Condvar,
}

/// The service, started at first use; `None` where the lanes cannot run (no AVX2, no threads).
fn service() -> Option<&'static Service> {
    static SERVICE: OnceLock<Option<&'static Service>> = OnceLock::new();
    *SERVICE.get_or_init(|| {
        if !x8::available() {
            return None;
        }
        let service: &'static Service = Box::leak(Box::new(Service {
            ready: Mutex::new(VecDeque::new()),
            wake: Condvar::new(),
        }));
        // One worker hashes eight streams at the speed of about seven cores; more workers only
        // help when there are more than eight uploads per four cores.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut started = 0;
        for n in 0..cores.div_ceil(4) {
            let spawned = std::thread::Builder::new()
                .name(format!("md5-lanes-{n}"))
                .spawn(move || service.work());
            started += usize::from(spawned.is_ok());
        }
        (started > 0).then_some(service)
    })
}

/// Whether the service runs here (starting it if this is the first use).
pub(crate) fn running() -> bool {
    service().is_some()
}

/// Locks a mutex whose data stays consistent even if a holder panicked (every update below is
/// a single assignment or push).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Stream {
    /// Hands `md5` to the service, or back if the service cannot run here.
    pub(crate) fn start(md5: Md5) -> Result<Stream, Md5> {
        if service().is_none() {
            return Err(md5);
        }
        Ok(Stream {
            shared: Arc::new(Shared {
                inner: Mutex::new(Inner {
                    md5: Some(md5),
                    queue: VecDeque::new(),
                    scheduled: false,
                    failed: false,
                }),
                changed: Condvar::new(),
            }),
        })
    }

    /// Queues the next bytes, waiting while the stream already has enough queued.
    pub(crate) fn push(&self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        let Some(service) = service() else {
            return;
        };
        let mut inner = lock(&self.shared.inner);
        while inner.queue.len() >= QUEUE_LIMIT && !inner.failed {
            inner = self
                .shared
                .changed
                .wait(inner)
                .unwrap_or_else(|e| e.into_inner());
        }
        if inner.failed {
            return;
        }
        inner.queue.push_back(chunk);
        if !inner.scheduled {
            inner.scheduled = true;
            drop(inner);
            service.schedule(self.shared.clone());
        }
    }

    /// Waits for every queued byte to be hashed and returns the hasher; `None` if a worker
    /// failed on this stream.
    pub(crate) fn finish(self) -> Option<Md5> {
        let mut inner = lock(&self.shared.inner);
        while inner.scheduled && !inner.failed {
            inner = self
                .shared
                .changed
                .wait(inner)
                .unwrap_or_else(|e| e.into_inner());
        }
        if inner.failed {
            return None;
        }
        inner.md5.take()
    }
}

impl Service {
    fn schedule(&self, stream: Arc<Shared>) {
        lock(&self.ready).push_back(stream);
        self.wake.notify_one();
    }

    fn work(&self) {
        loop {
            let batch: Vec<Arc<Shared>> = {
                let mut ready = lock(&self.ready);
                while ready.is_empty() {
                    ready = self.wake.wait(ready).unwrap_or_else(|e| e.into_inner());
                }
                let n = ready.len().min(LANES);
                ready.drain(..n).collect()
            };
            let mut lanes: Vec<Lane> = Vec::with_capacity(batch.len());
            let mut taken: Vec<&Arc<Shared>> = Vec::with_capacity(batch.len());
            for s in &batch {
                let mut inner = lock(&s.inner);
                if let Some(md5) = inner.md5.take() {
                    lanes.push(Lane::new(md5, std::mem::take(&mut inner.queue)));
                    taken.push(s);
                }
                drop(inner);
                // The queue was emptied: a writer waiting for room may go on.
                s.changed.notify_all();
            }
            let hashed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                hash(&mut lanes);
                lanes
            }));
            match hashed {
                Ok(lanes) => {
                    for (s, lane) in taken.into_iter().zip(lanes) {
                        self.give_back(s, lane.md5);
                    }
                }
                Err(_) => {
                    for s in taken {
                        lock(&s.inner).failed = true;
                        s.changed.notify_all();
                    }
                }
            }
        }
    }

    /// Returns a stream's hasher and schedules it again if more bytes came meanwhile.
    fn give_back(&self, s: &Arc<Shared>, md5: Md5) {
        let mut inner = lock(&s.inner);
        inner.md5 = Some(md5);
        let again = !inner.queue.is_empty();
        inner.scheduled = again;
        drop(inner);
        if again {
            self.schedule(s.clone());
        }
        s.changed.notify_all();
    }
}

/// One stream's hasher and the chunks it is to take in, walked block by block.
struct Lane {
    md5: Md5,
    chunks: VecDeque<Bytes>,
    /// How far into `chunks[0]` the hashing is.
    off: usize,
    /// Whether the prepared block is the hasher's own tail buffer (assembled across chunks)
    /// rather than 64 bytes inside `chunks[0]`.
    from_tail: bool,
}

impl Lane {
    fn new(md5: Md5, chunks: VecDeque<Bytes>) -> Lane {
        Lane {
            md5,
            chunks,
            off: 0,
            from_tail: false,
        }
    }

    /// Makes the next whole block ready for [`Lane::block`]; false when less than a block is
    /// left (that rest then sits in the hasher's tail, as `Md5::update` would leave it).
    fn prepare(&mut self) -> bool {
        if self.md5.tail_len == 0 {
            while self.chunks.front().is_some_and(|c| self.off == c.len()) {
                self.chunks.pop_front();
                self.off = 0;
            }
            match self.chunks.front() {
                None => return false,
                Some(c) if c.len() - self.off >= 64 => {
                    self.from_tail = false;
                    return true;
                }
                Some(_) => {}
            }
        }
        while self.md5.tail_len < 64 {
            let Some(c) = self.chunks.front() else {
                break;
            };
            let take = (64 - self.md5.tail_len).min(c.len() - self.off);
            let at = self.md5.tail_len;
            self.md5.tail[at..at + take].copy_from_slice(&c[self.off..self.off + take]);
            self.md5.tail_len += take;
            self.md5.len += take as u64;
            self.off += take;
            if self.off == c.len() {
                self.chunks.pop_front();
                self.off = 0;
            }
        }
        self.from_tail = self.md5.tail_len == 64;
        self.from_tail
    }

    /// The block [`Lane::prepare`] made ready.
    fn block(&self) -> &[u8; 64] {
        if self.from_tail {
            &self.md5.tail
        } else {
            let c = &self.chunks[0];
            c[self.off..self.off + 64]
                .try_into()
                .expect("prepare checked 64 bytes")
        }
    }

    /// Counts the prepared block as hashed.
    fn advance(&mut self) {
        if self.from_tail {
            self.md5.tail_len = 0;
        } else {
            self.off += 64;
            self.md5.len += 64;
        }
    }

    /// Hashes the prepared block (if any) and everything after it one stream at a time.
    fn finish_alone(&mut self, prepared: bool) {
        if prepared {
            if self.from_tail {
                super::compress(&mut self.md5.state, std::slice::from_ref(&self.md5.tail));
            } else {
                let block = *self.block();
                super::compress(&mut self.md5.state, std::slice::from_ref(&block));
            }
            self.advance();
        }
        let off = std::mem::take(&mut self.off);
        for (i, c) in std::mem::take(&mut self.chunks).into_iter().enumerate() {
            self.md5.update(if i == 0 { &c[off..] } else { &c });
        }
    }
}

/// Hashes every lane's chunks: eight at a time while two or more lanes have whole blocks left,
/// then the last one alone.
fn hash(lanes: &mut [Lane]) {
    debug_assert!(lanes.len() <= LANES);
    static ZERO: [u8; 64] = [0; 64];
    let mut states: States = [[0; LANES]; 4];
    for (j, lane) in lanes.iter().enumerate() {
        for (w, word) in lane.md5.state.iter().enumerate() {
            states[w][j] = *word;
        }
    }
    let mut ready = [false; LANES];
    for (j, lane) in lanes.iter_mut().enumerate() {
        ready[j] = lane.prepare();
    }
    while ready.iter().filter(|r| **r).count() >= 2 {
        let before = states;
        let blocks: [&[u8; 64]; LANES] =
            std::array::from_fn(|j| if ready[j] { lanes[j].block() } else { &ZERO });
        x8::compress8(&mut states, blocks);
        for (j, lane) in lanes.iter_mut().enumerate() {
            if ready[j] {
                lane.advance();
                ready[j] = lane.prepare();
            } else {
                // A lane without a block ran on zeros: its state must not move.
                for w in 0..4 {
                    states[w][j] = before[w][j];
                }
            }
        }
    }
    for (j, lane) in lanes.iter_mut().enumerate() {
        for (w, word) in lane.md5.state.iter_mut().enumerate() {
            *word = states[w][j];
        }
        lane.finish_alone(ready[j]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use md5::Digest as _;

    fn data(seed: u32, len: usize) -> Vec<u8> {
        let mut x = seed.wrapping_mul(2_654_435_761).max(1);
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect()
    }

    /// Cuts `bytes` into chunks of the given lengths, cycling through them.
    fn chunks(bytes: &[u8], sizes: &[usize]) -> VecDeque<Bytes> {
        let mut out = VecDeque::new();
        let mut at = 0;
        for n in sizes.iter().cycle() {
            if at >= bytes.len() {
                break;
            }
            let end = (at + n).min(bytes.len());
            out.push_back(Bytes::copy_from_slice(&bytes[at..end]));
            at = end;
        }
        out
    }

    #[test]
    fn lanes_of_uneven_streams_match_the_reference() {
        if !x8::available() {
            eprintln!("no AVX2 on this CPU: the lanes are never used here");
            return;
        }
        // Lengths and chunk sizes that put block edges inside chunks, across chunks, at the end
        // of some lanes early, and in streams that already hold a partial block.
        let lens = [0usize, 1, 63, 64, 65, 1000, 4096 + 17, 70_000];
        let sizes: [&[usize]; 8] = [
            &[1],
            &[7, 64],
            &[63],
            &[64],
            &[65, 3],
            &[100],
            &[4096],
            &[13, 999],
        ];
        for lanes_used in 1..=LANES {
            for head in [0usize, 5, 64] {
                let mut lanes = Vec::new();
                let mut want = Vec::new();
                for j in 0..lanes_used {
                    let bytes = data(j as u32 + 1, head + lens[j]);
                    let mut md5 = Md5::new();
                    md5.update(&bytes[..head]);
                    lanes.push(Lane::new(md5, chunks(&bytes[head..], sizes[j])));
                    want.push(<[u8; 16]>::from(md5::Md5::digest(&bytes)));
                }
                hash(&mut lanes);
                for (j, (lane, want)) in lanes.into_iter().zip(want).enumerate() {
                    assert_eq!(lane.md5.len(), (head + lens[j]) as u64);
                    assert_eq!(
                        lane.md5.finish(),
                        want,
                        "lane {j} of {lanes_used}, head {head}"
                    );
                }
            }
        }
    }

    #[test]
    fn concurrent_streams_through_the_service_match_the_reference() {
        let streams: Vec<_> = (0..12u32)
            .map(|n| {
                std::thread::spawn(move || {
                    let bytes = data(n + 100, 300_000 + n as usize * 4099);
                    let mut head = Md5::new();
                    head.update(&bytes[..10]);
                    let Ok(s) = Stream::start(head) else {
                        return None;
                    };
                    for c in chunks(&bytes[10..], &[16_384, 1, 65_536 + 3]) {
                        s.push(c);
                    }
                    let got = s.finish().expect("no worker failed").finish();
                    Some((got, <[u8; 16]>::from(md5::Md5::digest(&bytes))))
                })
            })
            .collect();
        for s in streams {
            if let Some((got, want)) = s.join().unwrap() {
                assert_eq!(got, want);
            }
        }
    }
}
