//! The `lattice` command line.
//!
//! The binary's static commands (`node`, `mesh`, `store`, ...) live elsewhere; this library
//! holds the parts that are useful on their own and testable without a node:
//!
//! - [`dynamic`]: the subcommands built at run time from a plugin's protobuf descriptor
//!   (`lattice chat post --text hi`), how their flags are parsed into a request message,
//!   and how replies and ops are printed.

pub mod dynamic;
