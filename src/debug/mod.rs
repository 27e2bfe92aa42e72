//! Test and debugging harnesses, kept out of the layers they drive: line protocols behind the
//! hidden `nasgate debug-locks` and `nasgate debug-store` subcommands, through which the
//! integration tests race and crash real processes on one share (an operator can use them
//! to poke at a share by hand). Nothing in the serving path calls into this module.

pub mod locks;
pub mod store;
