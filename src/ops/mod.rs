//! Operations: the share self-test, and (later) health, metrics and logging setup.

pub mod check;
pub mod maintenance;
pub mod mounts;
