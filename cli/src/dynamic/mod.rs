//! Plugin subcommands built at run time from the plugin's protobuf descriptor.
//!
//! Every state machine plugin exports a `FileDescriptorSet` naming a `service`. For a plugin
//! (or a store running it) the CLI builds one clap subcommand per service method and one
//! flag per field of that method's request message, so a plugin nobody compiled into the
//! `lattice` binary still gets a complete, documented command line:
//!
//! ```text
//! lattice chat post --text hi
//! lattice chat messages --limit 20 --json
//! lattice kv put --key a --value b
//! ```
//!
//! # Names
//!
//! - Method `SetFilter` becomes the subcommand `set-filter`; field `after_hlc` (or
//!   `afterHlc`) becomes the flag `--after-hlc`. Both are kebab-case of the proto name.
//! - If two names collide after kebab-casing, or a field would shadow `--help` or one of the
//!   caller's global flags (see [`build_command_with`]), the later one gets a `-field`
//!   (flags) or `-method` (subcommands) suffix, then `-2`, `-3`, ... Nothing is dropped.
//! - Help text is the proto comment: a method's comment (and its request message's) is the
//!   subcommand's about text, a field's comment is its flag's help. Methods marked
//!   `option idempotency_level = NO_SIDE_EFFECTS;` are **queries**: they only read state
//!   and are shown with `(query)`. All other methods are **commands** that write an op.
//!
//! # Flag values
//!
//! | proto type | flag syntax |
//! |---|---|
//! | `bool` | `--urgent` sets true; `--urgent=false` sets false (the value needs `=`); also accepts `yes`/`no`, `on`/`off`, `1`/`0` |
//! | integers | decimal, range checked against the proto type (`--limit 20`, `--offset -5`) |
//! | `float`, `double` | decimal or exponent (`1.5`, `2e-3`, `inf`, `NaN`); a finite value too large for `float` is an error |
//! | `string` | the text as given |
//! | `bytes` | UTF-8 text as given; `hex:0a1b` for hex; `@PATH` reads the file (`@-` reads stdin); `text:` escapes text that itself starts with `hex:`, `@` or `text:` |
//! | enum | a value name, case-insensitive; the enum's common prefix may be left out and `-` may stand for `_` (`--order ORDER_NEWEST_FIRST`, `--order newest_first`, `--order newest-first`). Help lists the names |
//! | message | one JSON object in the protobuf JSON mapping (`--filter '{"words":["x"]}'`); proto field names and JSON names are both accepted. Well-known types take their JSON form (`--at 2024-01-01T00:00:00Z` for a `Timestamp`) |
//! | `repeated T` | repeat the flag, one element per occurrence (`--tag a --tag b`). Commas are **not** separators, so a chat text may contain them |
//! | `map<K, V>` | repeat `--label KEY=VALUE` (split at the first `=`); the value uses V's syntax |
//! | `oneof` | its fields are ordinary flags, at most one of which may be given |
//!
//! A value that starts with `-` (other than a number) needs `=`: `--text=-1 for this`.
//!
//! A flag that is not given leaves its field unset: proto3 `optional` fields then have no
//! value at all, other fields read as their default. `--limit 0` on an `optional` field sets
//! it (to zero). Proto2 `required` fields are required flags.
//!
//! Bad values are reported by clap while parsing the command line, as one line naming the
//! flag and the expected type:
//! `error: invalid value 'abc' for '--limit <UINT32>': expected uint32 (0 to 4294967295): invalid digit found in string`.
//!
//! # Output
//!
//! [`render_reply`] prints a reply for people: one `field: value` line per set field, nested
//! messages indented, bytes as text when they are printable UTF-8 and as `hex:...` otherwise
//! (so an id printed by `messages` can be pasted into `reply --to`), enums by name. A reply
//! whose only field is a list of messages (chat messages, kv heads) prints one block per
//! element, blocks separated by a blank line. Scalars at their default (`0`, `false`, `""`)
//! are shown; unset `optional` fields, oneof members and messages are not.
//! [`render_text_with`] also shows author keys as member names and clocks (`hlc`, `*_hlc`)
//! as local times (see [`Readable`]).
//!
//! With `--json` it prints the protobuf JSON mapping on one line (JSON Lines, so `watch
//! --json` output is a stream of objects) using the **proto field names** (`after_hlc`, not
//! `afterHlc`): the same names the flags and the text output use, and every protobuf JSON
//! parser accepts them. Fields at their default value are included, so scripts always find
//! every field; 64-bit integers are JSON strings, as the mapping requires.

mod command;
mod comments;
mod names;
mod readable;
mod render;
mod request;
mod tree;
mod value;

use std::fmt;

pub use command::{build_command, build_command_with, is_query, method_command};
pub use comments::summary_at;
pub use names::{find_method, kebab_case, method_by_cli_name, method_cli_names};
pub use readable::{Readable, is_entry_ref};
pub use render::{
    render_json, render_op, render_reply, render_text, render_text_with, terminal_safe,
};
pub use request::parse_request;
pub use tree::{RESERVED, plugin_command, standalone_command};
pub use value::{format_bytes, id_prefix, parse_bytes, parse_value};

/// Errors of the dynamic-command layer.
///
/// Malformed flag values are normally caught earlier, by clap, when the command line is
/// matched against the [`clap::Command`] from [`build_command`]; `InvalidValue` is what
/// [`parse_value`] returns to callers that parse text without clap.
#[derive(Debug, thiserror::Error)]
pub enum DynError {
    /// A flag's text could not be turned into a value of the field's type.
    #[error("invalid value `{value}` for `--{flag}`: {reason}")]
    InvalidValue {
        /// The flag (without `--`).
        flag: String,
        /// The text as given.
        value: String,
        /// Which type was expected and why the text is not one.
        reason: ValueError,
    },
    /// A method name that the plugin's service does not have.
    #[error("unknown method `{method}` for `{plugin}`; valid: {}", valid.join(", "))]
    UnknownMethod {
        /// The plugin or store name as typed.
        plugin: String,
        /// The method name as typed.
        method: String,
        /// The CLI names of all methods of the service.
        valid: Vec<String>,
    },
    /// [`parse_request`] was given matches that were not produced by this method's command
    /// (a programming error in the caller, reported rather than panicking).
    #[error(
        "internal error: the parsed arguments are not those of method `{method}` (field `{field}`)"
    )]
    ForeignMatches {
        /// Full name of the method.
        method: String,
        /// The field whose flag was missing from the matches.
        field: String,
    },
    /// Setting a parsed value on the request failed (a type mismatch between the descriptor
    /// and the matches; again a programming error, never user input).
    #[error("internal error: value for field `{field}` does not fit its type")]
    FieldType {
        /// The field's proto name.
        field: String,
    },
}

/// Why a flag value was rejected: the expected type and, when useful, the parser's reason.
///
/// Kept separate from [`DynError`] because clap adds the flag name itself: this is the part
/// after `for '--flag <TYPE>': ` in its error line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueError {
    /// The expected type, e.g. `uint32 (0 to 4294967295)`.
    pub expected: String,
    /// What was wrong, e.g. `invalid digit found in string`; may be empty.
    pub reason: String,
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.reason.is_empty() {
            write!(f, "expected {}", self.expected)
        } else {
            write!(f, "expected {}: {}", self.expected, self.reason)
        }
    }
}

impl std::error::Error for ValueError {}
