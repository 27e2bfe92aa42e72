//! Shared test plumbing, by concern: child processes (`process`), a raw HTTP client
//! (`http`), SigV4 signing with the AWS signer (`sign`), FUSE mount helpers (`mount`),
//! digests (`digest`), the AWS SDK as a client (`sdk`) and store fixtures (`store`). Every
//! wait is bounded so a hung child fails the test instead of hanging it. The items of the
//! first five are re-exported here, so tests name them `common::http`, `common::Server`...
// Each test crate uses only part of the plumbing.
#![allow(dead_code, unused_imports)]

pub mod digest;
pub mod http;
pub mod mount;
pub mod process;
pub mod sdk;
pub mod sign;
pub mod store;

pub use digest::*;
pub use http::*;
pub use mount::*;
pub use process::*;
pub use sign::*;

use std::path::Path;

/// Files under `dir`, recursively (for "nothing left behind" checks).
pub fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if let Ok(entries) = std::fs::read_dir(&d) {
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push(p);
                }
            }
        }
    }
    out.sort();
    out
}
