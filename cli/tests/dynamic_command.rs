//! The shape of the generated commands: names, help text, query marks, clap errors.

mod dynamic_common;

use clap::error::ErrorKind;
use dynamic_common::{chat, kinds, kv, long_help, rejected};
use lattice_cli::dynamic::{
    DynError, build_command, build_command_with, find_method, is_query, method_by_cli_name,
    method_cli_names,
};

#[test]
fn one_subcommand_per_method_in_kebab_case() {
    let cmd = build_command("chat", &chat());
    let names: Vec<&str> = cmd.get_subcommands().map(|c| c.get_name()).collect();
    assert_eq!(
        names,
        ["post", "reply", "react", "set-filter", "messages", "search"]
    );
    assert_eq!(cmd.get_name(), "chat");
}

#[test]
fn queries_are_detected_and_marked() {
    let service = chat();
    let queries: Vec<String> = service
        .methods()
        .filter(is_query)
        .map(|m| m.name().to_owned())
        .collect();
    assert_eq!(queries, ["Messages", "Search"]);

    let cmd = build_command("chat", &service);
    let about = |name: &str| {
        cmd.find_subcommand(name)
            .and_then(|c| c.get_about())
            .map(|a| a.to_string())
            .unwrap_or_default()
    };
    assert_eq!(about("messages"), "List messages in causal order. (query)");
    assert_eq!(about("post"), "Post a message to the room.");
    assert!(long_help(&service, "messages").contains("Query: reads the store's state"));
    assert!(long_help(&service, "post").contains("Command: the plugin validates the request"));
}

#[test]
fn help_shows_method_message_and_field_comments() {
    let help = long_help(&chat(), "post");
    for expected in [
        "Post a message to the room.",
        // The second paragraph of the method comment is in the long help.
        "checked\nagainst the room's word filter.",
        // The request message's comment.
        "A new message for the room.",
        // Field comments and flags.
        "--text <TEXT>",
        "The message text.",
        "--urgent[=<BOOL>]",
        "Mark the message as urgent: every member is notified.",
        "--mentions <BYTES>",
        "Members to mention, by public key.",
        "Repeat the flag for more elements",
        "hex:0A1B",
        "--labels <KEY=VALUE>",
        "Method: lattice.chat.v1.Chat.Post(lattice.chat.v1.PostRequest) returns lattice.chat.v1.PostReply",
    ] {
        assert!(help.contains(expected), "missing {expected:?} in:\n{help}");
    }
}

#[test]
fn enum_values_are_listed_with_their_comments() {
    let help = long_help(&chat(), "post");
    assert!(help.contains("--format <FORMAT>"), "{help}");
    assert!(help.contains("FORMAT_PLAIN"), "{help}");
    assert!(help.contains("Plain text, shown as is."), "{help}");
    assert!(help.contains("FORMAT_MARKDOWN"), "{help}");

    // Short help lists the names too.
    let mut cmd = build_command("chat", &chat());
    cmd.build();
    let short = cmd
        .find_subcommand_mut("post")
        .map(|c| c.render_help().to_string())
        .unwrap_or_default();
    assert!(
        short.contains("[possible values: FORMAT_PLAIN, FORMAT_MARKDOWN]"),
        "{short}"
    );
}

#[test]
fn numeric_help_shows_type_and_range_and_optional() {
    let help = long_help(&chat(), "messages");
    assert!(help.contains("--after <UINT64>"), "{help}");
    assert!(
        help.contains("Type: optional uint64 (0 to 18446744073709551615)"),
        "{help}"
    );
    assert!(
        help.contains("Optional: left unset when the flag is not given."),
        "{help}"
    );
    assert!(help.contains("Type: uint32 (0 to 4294967295)"), "{help}");
}

#[test]
fn oneof_fields_share_a_heading_and_exclude_each_other() {
    let help = long_help(&chat(), "search");
    assert!(help.contains("One of `by` (at most one)"), "{help}");
    assert!(
        help.contains("Cannot be combined with --text, --range."),
        "{help}"
    );

    let err = rejected(&chat(), &["search", "--author", "hex:01", "--text", "x"]);
    assert_eq!(err.kind(), ErrorKind::ArgumentConflict);
    let msg = err.to_string();
    assert!(msg.contains("--author") && msg.contains("--text"), "{msg}");
}

#[test]
fn nested_message_help_lists_json_fields() {
    let help = long_help(&chat(), "set-filter");
    assert!(help.contains("--filter <JSON>"), "{help}");
    assert!(
        help.contains("Fields: words (repeated string), action (lattice.chat.v1.Filter.Action)"),
        "{help}"
    );
}

#[test]
fn help_and_unknown_flags_are_clap_errors() {
    let err = rejected(&chat(), &["post", "--help"]);
    assert_eq!(err.kind(), ErrorKind::DisplayHelp);
    assert_eq!(err.exit_code(), 0);
    assert!(err.render().to_string().contains("The message text."));

    let err = rejected(&chat(), &["post", "--txt", "hi"]);
    assert_eq!(err.kind(), ErrorKind::UnknownArgument);
    assert_ne!(err.exit_code(), 0);
    assert!(
        err.to_string().contains("--text"),
        "suggests the right flag: {err}"
    );

    let err = rejected(&chat(), &["post", "--text", "a", "--text", "b"]);
    assert_eq!(err.kind(), ErrorKind::ArgumentConflict);

    let err = rejected(&chat(), &["pots"]);
    assert_eq!(err.kind(), ErrorKind::InvalidSubcommand);
}

#[test]
fn method_lookup_by_cli_name() {
    let service = chat();
    let m = method_by_cli_name(&service, "set-filter").expect("found");
    assert_eq!(m.name(), "SetFilter");
    assert!(method_by_cli_name(&service, "SetFilter").is_none());

    let err = find_method("general", &service, "foo").unwrap_err();
    assert!(matches!(err, DynError::UnknownMethod { .. }));
    assert_eq!(
        err.to_string(),
        "unknown method `foo` for `general`; valid: post, reply, react, set-filter, messages, search"
    );
    assert_eq!(
        find_method("general", &service, "post").unwrap().name(),
        "Post"
    );
}

#[test]
fn colliding_names_are_renamed_not_dropped() {
    let service = kinds();
    let names: Vec<String> = method_cli_names(&service)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        names,
        ["everything", "help-method", "no-comment", "require"]
    );

    let cmd = build_command_with("kinds", &service, &["json"]);
    let sub = cmd.find_subcommand("help-method").expect("renamed method");
    let longs: Vec<&str> = sub.get_arguments().filter_map(|a| a.get_long()).collect();
    assert_eq!(
        longs,
        [
            "help-field",
            "json-field",
            "display-name",
            "display-name-field"
        ]
    );

    // Without reserving `json`, the field keeps its name.
    let cmd = build_command("kinds", &service);
    let sub = cmd.find_subcommand("help-method").expect("renamed method");
    assert!(sub.get_arguments().any(|a| a.get_long() == Some("json")));
}

#[test]
fn reserved_global_flags_coexist_with_fields() {
    // A caller's global `--json` next to a request field `json`: clap would reject the
    // duplicate (a panic in debug builds) unless the field is renamed.
    let cmd = clap::Command::new("lattice")
        .arg(
            clap::Arg::new("json")
                .long("json")
                .global(true)
                .action(clap::ArgAction::SetTrue),
        )
        .subcommand(build_command_with("kinds", &kinds(), &["json"]));
    let m = cmd
        .try_get_matches_from(["lattice", "kinds", "help-method", "--json", "--json-field"])
        .expect("parses");
    let (_, kinds_m) = m.subcommand().expect("kinds");
    let (_, method_m) = kinds_m.subcommand().expect("method");
    assert!(method_m.get_flag("json"));
    let method = method_by_cli_name(&kinds(), "help-method").expect("method");
    let req = lattice_cli::dynamic::parse_request(&method, method_m).expect("request");
    assert_eq!(
        req.get_field_by_name("json").map(|v| v.as_bool()),
        Some(Some(true))
    );
}

#[test]
fn proto2_required_fields_are_required_flags() {
    let err = rejected(&kinds(), &["require"]);
    assert_eq!(err.kind(), ErrorKind::MissingRequiredArgument);
    assert!(err.to_string().contains("--must <TEXT>"), "{err}");
    let req = dynamic_common::request(&kinds(), &["require", "--must", "x"]);
    assert_eq!(
        req.get_field_by_name("must")
            .and_then(|v| v.as_str().map(str::to_owned)),
        Some("x".to_owned())
    );
}

#[test]
fn missing_comments_fall_back_to_types() {
    let service = kinds();
    let cmd = build_command("kinds", &service);
    let sub = cmd.find_subcommand("no-comment").expect("exists");
    assert_eq!(
        sub.get_about().map(|a| a.to_string()),
        Some("Call NoComment".to_owned())
    );
    let help = long_help(&service, "everything");
    assert!(help.contains("--f-double <DOUBLE>"), "{help}");
    assert!(help.contains("--by-id <KEY=VALUE>"), "{help}");
    assert!(
        help.contains("Type: map<int32, test.kinds.Inner>"),
        "{help}"
    );
}

#[test]
fn every_service_builds_a_valid_command() {
    // `debug_assert` runs clap's own consistency checks (duplicate ids/flags, bad groups);
    // in debug builds they panic, so this covers all fixture services.
    for service in [chat(), kv(), kinds()] {
        build_command("p", &service).debug_assert();
        build_command_with("p", &service, &["json", "data-dir", "store"]).debug_assert();
    }
}
