//! Shared test plumbing, by concern: child processes (`process`), a raw HTTP client
//! (`http`), SigV4 signing with the AWS signer (`sign`), FUSE mount helpers (`mount`),
//! digests (`digest`), the AWS SDK as a client (`sdk`) and store fixtures (`store`). Every
//! wait is bounded so a hung child fails the test instead of hanging it. The items of the
//! first five are re-exported here, so tests name them `common::http`, `common::Server`...
// Each test crate uses only part of the plumbing.
#![allow(dead_code, unused_imports)]

pub mod contention;
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

/// Whether `path` is one of a running instance's own files in its staging directory
/// (`.minio.sys/tmp/<instance>/owner`, and the health probe's `probe`/`probe.moved` and `ready`), which stay
/// for the instance's lifetime and are no upload's leftovers.
pub fn instance_bookkeeping(path: &Path) -> bool {
    let in_staging = path
        .parent()
        .and_then(Path::parent)
        .is_some_and(|p| p.ends_with(".minio.sys/tmp"));
    in_staging
        && path.file_name().is_some_and(|n| {
            ["owner", "probe", "probe.moved", "ready"]
                .iter()
                .any(|b| n == *b)
        })
}

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

/// A PUT of `body` to `path`, signed by the root pair with an unsigned payload, over the raw client.
pub fn put_object(server: &Server, path: &str, body: &[u8]) -> RawResponse {
    signed(server, "PUT", path, body)
}

/// A GET of `path`, signed by the root pair, over the raw client.
pub fn get_object(server: &Server, path: &str) -> RawResponse {
    signed(server, "GET", path, b"")
}

/// The status `/health/ready` answers.
pub fn ready_status(server: &Server) -> u16 {
    http(&server.address, "GET", "/health/ready", &[], b"").status
}

fn signed(server: &Server, method: &str, path: &str, body: &[u8]) -> RawResponse {
    let headers = signed_headers(
        &server.address,
        method,
        path,
        "",
        &[],
        "UNSIGNED-PAYLOAD",
        SECRET_KEY,
    );
    http(&server.address, method, path, &headers, body)
}
