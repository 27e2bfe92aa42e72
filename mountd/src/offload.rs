//! Requests that may wait for an object's lock (publishing at close, unlink, rename, open)
//! run on helper threads instead of on the mount's few request threads: a close that waits
//! for a reader on another host must not leave `ls` of an unrelated directory waiting behind
//! it. Helpers are started when every one is busy, up to a cap, and end after a while idle.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

type Job = Box<dyn FnOnce() + Send>;

/// How long a helper with nothing to do stays for the next job.
const LINGER: Duration = Duration::from_secs(10);

/// An elastic set of helper threads.
pub(crate) struct Offload {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    more: Condvar,
    /// Signalled whenever a job ends.
    ended: Condvar,
    cap: usize,
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    /// Helpers waiting for a job.
    idle: usize,
    /// Helpers alive.
    threads: usize,
}

impl Offload {
    /// At most `cap` helpers at once; jobs beyond them wait their turn.
    pub(crate) fn new(cap: usize) -> Offload {
        Offload {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                more: Condvar::new(),
                ended: Condvar::new(),
                cap: cap.max(1),
            }),
        }
    }

    /// Runs `job` on a helper; on the calling thread when no helper can be had at all.
    pub(crate) fn run(&self, job: impl FnOnce() + Send + 'static) {
        let mut st = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
        st.jobs.push_back(Box::new(job));
        // Every queued job needs a helper of its own: one already waiting, or a new one.
        if st.jobs.len() > st.idle && st.threads < self.shared.cap {
            let shared = self.shared.clone();
            let started = std::thread::Builder::new()
                .name("mount-wait".into())
                .spawn(move || helper(&shared));
            match started {
                Ok(_) => st.threads += 1,
                Err(e) if st.threads == 0 => {
                    tracing::warn!("cannot start a mount helper thread: {e}");
                    // Nobody would ever take it: run it here, as without helpers.
                    let job = st.jobs.pop_back();
                    drop(st);
                    if let Some(job) = job {
                        job();
                    }
                    return;
                }
                Err(_) => {}
            }
        }
        drop(st);
        self.shared.more.notify_one();
    }

    /// Waits until every job has ended, at most `within`; whether they all did. A close
    /// that is publishing when the mount goes away finishes instead of being cut short.
    pub(crate) fn drain(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        let mut st = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if st.jobs.is_empty() && st.idle == st.threads {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            st = self
                .shared
                .ended
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

fn helper(shared: &Shared) {
    let mut st = shared.state.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        if let Some(job) = st.jobs.pop_front() {
            drop(st);
            // A job that panics drops its reply (the kernel gets EIO) and must not take its
            // helper with it: the pool would count a thread that no longer runs jobs.
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
                tracing::error!("a mount request panicked");
            }
            st = shared.state.lock().unwrap_or_else(|p| p.into_inner());
            continue;
        }
        st.idle += 1;
        shared.ended.notify_all();
        let (next, waited) = shared
            .more
            .wait_timeout(st, LINGER)
            .unwrap_or_else(|p| p.into_inner());
        st = next;
        st.idle -= 1;
        if waited.timed_out() && st.jobs.is_empty() {
            st.threads -= 1;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Offload;
    use std::sync::mpsc::channel;
    use std::sync::{Arc, Barrier};
    use std::time::Duration;

    #[test]
    fn jobs_that_wait_do_not_hold_up_the_next() {
        let pool = Offload::new(8);
        // Six jobs that all wait for one another can only finish if each got a helper.
        let all = Arc::new(Barrier::new(6));
        let (tx, rx) = channel();
        for _ in 0..6 {
            let (all, tx) = (all.clone(), tx.clone());
            pool.run(move || {
                all.wait();
                tx.send(()).unwrap();
            });
        }
        for _ in 0..6 {
            rx.recv_timeout(Duration::from_secs(10))
                .expect("a job never ran");
        }
    }

    #[test]
    fn a_panicking_job_keeps_its_helper_and_drain_waits_for_the_rest() {
        let pool = Offload::new(1);
        pool.run(|| panic!("on purpose"));
        let (tx, rx) = channel();
        pool.run(move || {
            std::thread::sleep(Duration::from_millis(50));
            tx.send(()).unwrap();
        });
        assert!(pool.drain(Duration::from_secs(10)), "jobs still running");
        assert!(rx.try_recv().is_ok(), "drain returned before the job ended");
    }

    #[test]
    fn beyond_the_cap_jobs_wait_their_turn() {
        let pool = Offload::new(2);
        let (tx, rx) = channel();
        for i in 0..20 {
            let tx = tx.clone();
            pool.run(move || tx.send(i).unwrap());
        }
        let mut got: Vec<i32> = (0..20)
            .map(|_| {
                rx.recv_timeout(Duration::from_secs(10))
                    .expect("a job never ran")
            })
            .collect();
        got.sort();
        assert_eq!(got, (0..20).collect::<Vec<_>>());
        let st = pool.shared.state.lock().unwrap();
        assert!(st.threads <= 2, "{} helpers for a cap of 2", st.threads);
    }
}
