//! The whole `lattice SELECTOR …` command tree of a plugin: its methods
//! ([`build_command_with`]) plus the flags every plugin command takes.
//!
//! In the library (not the binary) so the fuzz target `cli_descriptor`
//! builds exactly the tree the CLI parses, from arbitrary descriptors.

use clap::{Arg, ArgAction, Command};
use prost_reflect::ServiceDescriptor;

use super::build_command_with;

/// Flags the plugin tree adds itself (or inherits from `lattice`): a request
/// field with one of these names is renamed (`--json-field`).
pub const RESERVED: &[&str] = &["store", "json", "data-dir", "verbose"];

/// The tree as a subcommand of `lattice`: one subcommand per method, plus
/// `--store`. Shell completion nests it under the static tree (whose global
/// flags it then inherits), so what completes is what parses.
pub fn plugin_command(selector: &str, service: &ServiceDescriptor) -> Command {
    build_command_with(selector, service, RESERVED)
        .arg(
            Arg::new("store")
                .long("store")
                .value_name("NAME")
                .help("The store to use when several share this type")
                .global(true),
        )
        .subcommand_required(true)
}

/// [`plugin_command`] parsed on its own, so it also takes the global flags.
pub fn standalone_command(selector: &str, service: &ServiceDescriptor) -> Command {
    plugin_command(selector, service)
        .arg(
            Arg::new("json")
                .long("json")
                .action(ArgAction::SetTrue)
                .help("Print the reply as JSON")
                .global(true),
        )
        .arg(
            Arg::new("data-dir")
                .long("data-dir")
                .value_name("DIR")
                .help("Data directory")
                .global(true),
        )
        .arg(
            Arg::new("verbose")
                .short('v')
                .long("verbose")
                .action(ArgAction::Count)
                .global(true),
        )
        .bin_name(format!("lattice {selector}"))
}
