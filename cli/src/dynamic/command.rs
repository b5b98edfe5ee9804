//! Building clap commands from a service descriptor.

use std::collections::HashMap;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{Arg, ArgAction, ArgGroup, Command};
use prost_reflect::prost_types::method_options::IdempotencyLevel;
use prost_reflect::{FieldDescriptor, Kind, MethodDescriptor, ServiceDescriptor, Value};

use super::ValueError;
use super::comments::{comment, summary};
use super::names::{arg_id, flag_names, method_cli_names};
use super::value::{
    enum_aliases, enum_number, expected, field_type_name, kind_name, parse_kind, parse_map_entry,
};

/// The command for plugin (or store) `name`: one subcommand per method of `service`.
///
/// Same as [`build_command_with`] with no reserved flags.
pub fn build_command(name: &str, service: &ServiceDescriptor) -> Command {
    build_command_with(name, service, &[])
}

/// The command for plugin (or store) `name`: one subcommand per method of `service`, named by
/// [`method_cli_names`](super::method_cli_names) and built by [`method_command`].
///
/// `reserved_flags` are the long names (without `--`) of flags the caller adds itself, in
/// particular global ones such as `json` or `data-dir`: clap propagates globals into every
/// subcommand and rejects duplicates, so a request field with such a name is renamed
/// (`--json-field`) instead.
///
/// The returned command does not require a subcommand: the caller decides what the bare
/// `lattice chat` does (e.g. the interactive client) and can add `subcommand_required`.
pub fn build_command_with(
    name: &str,
    service: &ServiceDescriptor,
    reserved_flags: &[&str],
) -> Command {
    let mut cmd = Command::new(name.to_owned());
    cmd = match comment(&service.parent_file(), service.path()) {
        Some(doc) => cmd
            .about(summary(&doc))
            .long_about(format!("{doc}\n\nPlugin service: {}", service.full_name())),
        None => cmd.about(format!("Methods of {}", service.full_name())),
    };
    for (cli_name, method) in method_cli_names(service) {
        cmd = cmd.subcommand(method_command(&cli_name, &method, reserved_flags));
    }
    cmd
}

/// Whether `method` is a query: marked `option idempotency_level = NO_SIDE_EFFECTS;`.
///
/// Queries run against the local state (`query` export); all other methods are commands
/// that go through `prepare` and produce an op.
pub fn is_query(method: &MethodDescriptor) -> bool {
    method
        .method_descriptor_proto()
        .options
        .as_ref()
        .is_some_and(|o| o.idempotency_level() == IdempotencyLevel::NoSideEffects)
}

/// The subcommand for one method: named `cli_name`, with one flag per field of the request
/// message (see the module docs for the flag syntax) and help from the proto comments.
pub fn method_command(
    cli_name: &str,
    method: &MethodDescriptor,
    reserved_flags: &[&str],
) -> Command {
    let query = is_query(method);
    let input = method.input();
    let method_doc = comment(&method.parent_file(), method.path());
    let input_doc = comment(&input.parent_file(), input.path());

    let mut about = method_doc
        .as_deref()
        .map(summary)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("Call {}", method.name()));
    if query {
        about.push_str(" (query)");
    }
    let mut long = Vec::new();
    long.extend(method_doc.clone());
    if input_doc.is_some() && input_doc != method_doc {
        long.extend(input_doc);
    }
    long.push(
        if query {
            "Query: reads the store's state and writes nothing."
        } else {
            "Command: the plugin validates the request; the resulting op is signed, logged and replicated."
        }
        .to_owned(),
    );
    long.push(format!(
        "Method: {}({}) returns {}",
        method.full_name(),
        input.full_name(),
        method.output().full_name()
    ));

    let mut cmd = Command::new(cli_name.to_owned())
        .about(about)
        .long_about(long.join("\n\n"));

    let flags = flag_names(&input, reserved_flags);
    let flag_of: HashMap<String, String> = flags
        .iter()
        .map(|(flag, field)| (field.name().to_owned(), flag.clone()))
        .collect();
    for (flag, field) in &flags {
        cmd = cmd.arg(field_arg(field, flag, &flag_of));
    }
    for oneof in input.oneofs().filter(|o| !o.is_synthetic()) {
        let ids: Vec<String> = oneof.fields().map(|f| arg_id(&f)).collect();
        cmd = cmd.group(
            ArgGroup::new(format!("oneof.{}", oneof.name()))
                .args(ids)
                .multiple(false),
        );
    }
    cmd
}

/// One request field as a clap argument. Values are parsed into [`prost_reflect::Value`]s by
/// the argument's value parser, so clap reports bad values with the flag's name.
fn field_arg(field: &FieldDescriptor, flag: &str, flag_of: &HashMap<String, String>) -> Arg {
    let kind = field.kind();
    let doc = comment(&field.parent_file(), field.path());
    let repeated = field.is_list() || field.is_map();

    let mut arg = Arg::new(arg_id(field))
        .long(flag.to_owned())
        .action(if repeated {
            ArgAction::Append
        } else {
            ArgAction::Set
        })
        .required(field.is_required());
    let mut notes = vec![format!("Type: {}", field_type_name(field))];

    if field.is_map() {
        let (key_kind, value_kind) = match &kind {
            Kind::Message(entry) => (
                entry.map_entry_key_field().kind(),
                entry.map_entry_value_field().kind(),
            ),
            // A map field's kind is always its entry message; fall back to string pairs.
            _ => (Kind::String, Kind::String),
        };
        notes.push(format!(
            "Give `--{flag} KEY=VALUE` once per entry (split at the first `=`); the value is {}.",
            expected(&value_kind)
        ));
        arg = arg
            .num_args(1)
            .value_name("KEY=VALUE")
            .value_parser(move |s: &str| parse_map_entry(&key_kind, &value_kind, s));
    } else {
        match &kind {
            Kind::Bool => {
                notes.push(format!(
                    "`--{flag}` sets true, `--{flag}=false` sets false."
                ));
                arg = arg
                    .num_args(0..=1)
                    .require_equals(true)
                    .default_missing_value("true")
                    .value_name("BOOL")
                    .value_parser(|s: &str| parse_kind(&Kind::Bool, s));
            }
            Kind::Enum(e) => {
                let values: Vec<PossibleValue> = e
                    .values()
                    .map(|v| {
                        let mut pv = PossibleValue::new(v.name().to_owned())
                            .aliases(enum_aliases(e, v.name()));
                        if let Some(doc) = comment(&v.parent_file(), v.path()) {
                            pv = pv.help(summary(&doc));
                        }
                        pv
                    })
                    .collect();
                notes.push(
                    "Value names are case-insensitive; the enum's common prefix may be left out \
                     and `-` may stand for `_`."
                        .into(),
                );
                let e = e.clone();
                let value_name = kebab_case_upper(e.name());
                arg = arg
                    .num_args(1)
                    .ignore_case(true)
                    .value_name(value_name)
                    .value_parser(PossibleValuesParser::new(values).try_map(move |s: String| {
                        enum_number(&e, &s)
                            .map(Value::EnumNumber)
                            .ok_or_else(|| ValueError {
                                expected: expected(&Kind::Enum(e.clone())),
                                reason: String::new(),
                            })
                    }));
            }
            Kind::Message(m) => {
                if m.full_name().starts_with("google.protobuf.") {
                    notes.push(format!(
                        "The protobuf JSON form of {} (a bare string is fine where that form \
                         is a string, e.g. a Timestamp).",
                        m.full_name()
                    ));
                } else {
                    let fields: Vec<String> = m
                        .fields()
                        .map(|f| format!("{} ({})", f.name(), field_type_name(&f)))
                        .collect();
                    notes.push(format!(
                        "A JSON object in the protobuf JSON mapping, e.g. --{flag} '{{\"{}\": ...}}'. \
                         Fields: {}.",
                        m.fields().next().map(|f| f.name().to_owned()).unwrap_or_default(),
                        if fields.is_empty() {
                            "none".to_owned()
                        } else {
                            fields.join(", ")
                        }
                    ));
                }
                let kind = kind.clone();
                arg = arg
                    .num_args(1)
                    .value_name("JSON")
                    .value_parser(move |s: &str| parse_kind(&kind, s));
            }
            Kind::Bytes => {
                notes.push(
                    "Bytes: UTF-8 text as given; `hex:0A1B` for hex; `@PATH` reads a file \
                     (`@-` reads stdin); `text:...` passes text that starts with one of these \
                     prefixes."
                        .into(),
                );
                arg = arg
                    .num_args(1)
                    .value_name("BYTES")
                    .value_parser(|s: &str| parse_kind(&Kind::Bytes, s));
            }
            Kind::String => {
                arg = arg
                    .num_args(1)
                    .value_name("TEXT")
                    .value_parser(|s: &str| parse_kind(&Kind::String, s));
            }
            numeric => {
                notes[0] = format!("Type: {}", {
                    let t = field_type_name(field);
                    let range = expected(numeric);
                    // `expected` has the range in parentheses after the kind name.
                    match range.split_once(' ') {
                        Some((_, r)) => format!("{t} {r}"),
                        None => t,
                    }
                });
                let kind = numeric.clone();
                arg = arg
                    .num_args(1)
                    .value_name(kind_name(numeric).to_uppercase())
                    // Also for unsigned kinds: `-1` then gets "expected uint32 (0 to ...)"
                    // instead of being taken for an unknown short flag.
                    .allow_negative_numbers(true)
                    .value_parser(move |s: &str| parse_kind(&kind, s));
            }
        }
    }

    if field.is_list() {
        notes.push(format!(
            "Repeat the flag for more elements (`--{flag} A --{flag} B`); commas do not separate elements."
        ));
    }
    match field.containing_oneof() {
        Some(o) if o.is_synthetic() => {
            notes.push("Optional: left unset when the flag is not given.".into());
        }
        Some(o) => {
            let others: Vec<String> = o
                .fields()
                .filter(|f| f.name() != field.name())
                .filter_map(|f| flag_of.get(f.name()).map(|fl| format!("--{fl}")))
                .collect();
            let heading = format!("One of `{}` (at most one)", o.name());
            arg = arg.help_heading(heading);
            if !others.is_empty() {
                notes.push(format!("Cannot be combined with {}.", others.join(", ")));
            }
        }
        None => {}
    }

    let mut help = doc
        .as_deref()
        .map(summary)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| field_type_name(field));
    if repeated {
        help.push_str(" [repeatable]");
    }
    let long_help = match doc {
        Some(doc) => format!("{doc}\n\n{}", notes.join("\n")),
        None => notes.join("\n"),
    };
    arg.help(help).long_help(long_help)
}

/// `ReadMode` -> `READ_MODE`: the value name shown for an enum flag (`--mode <READ_MODE>`).
fn kebab_case_upper(name: &str) -> String {
    super::names::kebab_case(name)
        .replace('-', "_")
        .to_uppercase()
}
