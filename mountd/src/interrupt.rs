//! Whether the process behind a request was interrupted by a signal. fuser answers the
//! kernel's FUSE_INTERRUPT with ENOSYS, after which the kernel sends none and keeps the
//! process waiting for the answer; so the mount's long waits (tool locks, writers waiting for
//! readers) go in bounded slices and look at the requester between them: a signal that would
//! end its system call ends the wait with EINTR, and nothing is granted to it afterwards.

use std::time::Duration;

/// How long one slice of a wait lasts before the requester is looked at again.
pub const SLICE: Duration = Duration::from_millis(100);

/// Signals whose default action is to ignore the signal or to stop the process: pending,
/// they end a system call only when the process catches them.
const QUIET: [u32; 8] = [
    libc::SIGCHLD as u32,
    libc::SIGCONT as u32,
    libc::SIGSTOP as u32,
    libc::SIGTSTP as u32,
    libc::SIGTTIN as u32,
    libc::SIGTTOU as u32,
    libc::SIGURG as u32,
    libc::SIGWINCH as u32,
];

/// Whether thread `pid` (as the kernel names the requester) has a signal pending that ends
/// its system call: one it catches, or one whose default action ends the process. A
/// requester that is gone counts as interrupted; pid 0 (unknown) never does.
pub fn interrupted(pid: u32) -> bool {
    if pid == 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/status")) {
        Ok(status) => interrupting(&status),
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

/// The decision on the text of `/proc/PID/status`.
fn interrupting(status: &str) -> bool {
    let mask = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or(0)
    };
    let pending = (mask("SigPnd:") | mask("ShdPnd:")) & !mask("SigBlk:") & !mask("SigIgn:");
    let quiet = QUIET.iter().fold(0u64, |m, s| m | 1 << (s - 1)) & !mask("SigCgt:");
    pending & !quiet != 0
}

#[cfg(test)]
mod tests {
    use super::interrupting;

    fn status(pnd: u64, shd: u64, blk: u64, ign: u64, cgt: u64) -> String {
        format!(
            "Name:\tx\nSigQ:\t0/1\nSigPnd:\t{pnd:016x}\nShdPnd:\t{shd:016x}\n\
             SigBlk:\t{blk:016x}\nSigIgn:\t{ign:016x}\nSigCgt:\t{cgt:016x}\n"
        )
    }

    const fn bit(sig: i32) -> u64 {
        1 << (sig - 1)
    }

    #[test]
    fn which_pending_signals_interrupt() {
        assert!(!interrupting(&status(0, 0, 0, 0, 0)));
        // Fatal by default, to the thread or to the process.
        assert!(interrupting(&status(bit(libc::SIGKILL), 0, 0, 0, 0)));
        assert!(interrupting(&status(0, bit(libc::SIGTERM), 0, 0, 0)));
        // Caught (Ctrl-C with a handler).
        assert!(interrupting(&status(
            0,
            bit(libc::SIGINT),
            0,
            0,
            bit(libc::SIGINT)
        )));
        // Blocked or ignored: no.
        assert!(!interrupting(&status(
            0,
            bit(libc::SIGINT),
            bit(libc::SIGINT),
            0,
            0
        )));
        assert!(!interrupting(&status(
            0,
            bit(libc::SIGHUP),
            0,
            bit(libc::SIGHUP),
            0
        )));
        // Ignored by default unless caught.
        assert!(!interrupting(&status(0, bit(libc::SIGCHLD), 0, 0, 0)));
        assert!(interrupting(&status(
            0,
            bit(libc::SIGCHLD),
            0,
            0,
            bit(libc::SIGCHLD)
        )));
        assert!(!interrupting(&status(bit(libc::SIGWINCH), 0, 0, 0, 0)));
    }

    #[test]
    fn a_missing_process_is_interrupted_and_an_unknown_one_is_not() {
        assert!(!super::interrupted(0));
        assert!(super::interrupted(u32::MAX - 1));
        assert!(!super::interrupted(std::process::id()));
    }
}
