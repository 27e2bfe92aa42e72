//! nasgate: serve a shared NAS as S3 (and FUSE) from many hosts at once, under one lock
//! discipline. The map of the code is `docs/ARCHITECTURE.md`; building, testing and debugging
//! are in `docs/DEVELOPMENT.md`.

pub mod access;
pub mod config;
pub mod console;
pub mod debug;
pub mod lock;
pub mod metrics;
#[cfg(unix)]
pub mod mount;
pub mod ops;
pub mod platform;
pub mod s3;
pub mod server;
pub mod store;
pub mod time;
