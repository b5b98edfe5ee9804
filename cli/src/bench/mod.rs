//! `lattice bench`: measurements on real components (this binary's node,
//! daemons and sockets), printed as text or JSON lines.

pub mod api;
pub mod irc;
pub mod report;
pub mod web;

pub use report::Report;
