//! mountd: the FUSE front of nasgate. It will show the share's objects as a POSIX tree and
//! route every open, read and write through the store's locks; see the FUSE issue.

/// Why a mount could not be started.
#[derive(Debug)]
pub enum MountError {
    /// This build does not mount yet.
    NotAvailable,
}

impl std::fmt::Display for MountError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MountError::NotAvailable => {
                f.write_str("the FUSE mount (--mount) is not available in this version yet")
            }
        }
    }
}

impl std::error::Error for MountError {}
