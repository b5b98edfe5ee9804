//! Flags -> request messages: every field kind, bad values, round trips.

mod dynamic_common;

use std::collections::HashMap;

use clap::error::ErrorKind;
use dynamic_common::{chat, kinds, kv, matches, rejected, request};
use lattice_cli::dynamic::{DynError, parse_request, parse_value};
use prost::Message;
use prost_reflect::{DynamicMessage, MapKey, ReflectMessage, Value};

fn field(msg: &DynamicMessage, name: &str) -> Value {
    msg.get_field_by_name(name)
        .unwrap_or_else(|| panic!("no field {name}"))
        .into_owned()
}

#[test]
fn post_with_every_flag_kind() {
    let req = request(
        &chat(),
        &[
            "post",
            "--text",
            "hello, world",
            "--urgent",
            "--mentions",
            "hex:0a0b",
            "--mentions",
            "alice",
            "--format",
            "markdown",
            "--labels",
            "lang=en",
            "--labels",
            "mood=a=b",
        ],
    );
    assert_eq!(req.descriptor().name(), "PostRequest");
    // Commas are not separators.
    assert_eq!(field(&req, "text"), Value::String("hello, world".into()));
    assert_eq!(field(&req, "urgent"), Value::Bool(true));
    assert_eq!(
        field(&req, "mentions"),
        Value::List(vec![
            Value::Bytes(vec![0x0a, 0x0b].into()),
            Value::Bytes(b"alice".to_vec().into()),
        ])
    );
    assert_eq!(field(&req, "format"), Value::EnumNumber(1));
    assert_eq!(
        field(&req, "labels"),
        Value::Map(HashMap::from([
            (MapKey::String("lang".into()), Value::String("en".into())),
            // Split at the first `=` only.
            (MapKey::String("mood".into()), Value::String("a=b".into())),
        ]))
    );
}

#[test]
fn omitted_flags_leave_fields_unset() {
    let req = request(&chat(), &["post", "--text", "hi"]);
    let set: Vec<String> = req.fields().map(|(f, _)| f.name().to_owned()).collect();
    assert_eq!(set, ["text"]);
    assert_eq!(req.encode_to_vec(), b"\x0a\x02hi");
}

#[test]
fn bool_flag_forms() {
    let req = request(&chat(), &["post", "--urgent=false"]);
    assert_eq!(field(&req, "urgent"), Value::Bool(false));
    let req = request(&chat(), &["post", "--urgent=yes"]);
    assert_eq!(field(&req, "urgent"), Value::Bool(true));

    // The value needs `=`: a separate word is not consumed (and is an unexpected argument).
    let err = rejected(&chat(), &["post", "--urgent", "false"]);
    assert_eq!(err.kind(), ErrorKind::UnknownArgument);

    let err = rejected(&chat(), &["post", "--urgent=maybe"]);
    assert_eq!(err.kind(), ErrorKind::ValueValidation);
    assert!(
        err.to_string()
            .contains("for '--urgent[=<BOOL>]': expected bool (true or false)"),
        "{err}"
    );

    // Repeated and optional bools.
    let req = request(
        &kinds(),
        &["everything", "--flags", "--flags=false", "--maybe=false"],
    );
    assert_eq!(
        field(&req, "flags"),
        Value::List(vec![Value::Bool(true), Value::Bool(false)])
    );
    // Proto3 optional: explicitly false is present (and encoded).
    let maybe = req.descriptor().get_field_by_name("maybe").expect("field");
    assert!(req.has_field(&maybe));
    assert_eq!(field(&req, "maybe"), Value::Bool(false));
}

#[test]
fn optional_scalars_keep_presence_of_zero() {
    let req = request(&chat(), &["messages", "--after", "0", "--limit", "20"]);
    let after = req.descriptor().get_field_by_name("after").expect("field");
    assert!(req.has_field(&after), "optional field set to 0 is present");
    assert_eq!(field(&req, "limit"), Value::U32(20));

    let req = request(&chat(), &["messages", "--limit", "0"]);
    assert!(!req.has_field(&after));
    // A non-optional zero is the default: nothing on the wire.
    assert!(req.encode_to_vec().is_empty());

    let req = request(&kinds(), &["everything", "--count", "0"]);
    assert_eq!(req.encode_to_vec(), [0xb8, 0x01, 0x00]);
}

#[test]
fn all_scalar_kinds() {
    let req = request(
        &kinds(),
        &[
            "everything",
            "--f-double",
            "-1.5e3",
            "--f-float",
            "0.25",
            "--f-int32",
            "-2147483648",
            "--f-int64",
            "-9223372036854775808",
            "--f-uint32",
            "4294967295",
            "--f-uint64",
            "18446744073709551615",
            "--f-sint32",
            "-7",
            "--f-sint64",
            "-8",
            "--f-fixed32",
            "9",
            "--f-fixed64",
            "10",
            "--f-sfixed32",
            "-11",
            "--f-sfixed64",
            "-12",
            "--f-bool",
            "--f-string=-starts-with-a-dash",
            "--f-bytes=text:@x",
            "--color",
            "dark-blue",
        ],
    );
    let expect = [
        ("f_double", Value::F64(-1500.0)),
        ("f_float", Value::F32(0.25)),
        ("f_int32", Value::I32(i32::MIN)),
        ("f_int64", Value::I64(i64::MIN)),
        ("f_uint32", Value::U32(u32::MAX)),
        ("f_uint64", Value::U64(u64::MAX)),
        ("f_sint32", Value::I32(-7)),
        ("f_sint64", Value::I64(-8)),
        ("f_fixed32", Value::U32(9)),
        ("f_fixed64", Value::U64(10)),
        ("f_sfixed32", Value::I32(-11)),
        ("f_sfixed64", Value::I64(-12)),
        ("f_bool", Value::Bool(true)),
        ("f_string", Value::String("-starts-with-a-dash".into())),
        ("f_bytes", Value::Bytes(b"@x".to_vec().into())),
        ("color", Value::EnumNumber(2)),
    ];
    for (name, value) in expect {
        assert_eq!(field(&req, name), value, "{name}");
    }
}

#[test]
fn bad_values_name_the_flag_and_the_type() {
    let cases: [(&[&str], &str); 9] = [
        (
            &["messages", "--limit", "abc"],
            "invalid value 'abc' for '--limit <UINT32>': expected uint32 (0 to 4294967295): invalid digit found in string",
        ),
        (
            &["messages", "--limit", "4294967296"],
            "invalid value '4294967296' for '--limit <UINT32>': expected uint32 (0 to 4294967295): number too large to fit in target type",
        ),
        (
            &["messages", "--limit", "-1"],
            "for '--limit <UINT32>': expected uint32 (0 to 4294967295): invalid digit found in string",
        ),
        (
            &["search", "--offset", "2147483648"],
            "for '--offset <INT32>': expected int32 (-2147483648 to 2147483647)",
        ),
        (
            &["messages", "--order", "sideways"],
            "invalid value 'sideways' for '--order <ORDER>'",
        ),
        (
            &["post", "--mentions", "hex:xyz"],
            "for '--mentions <BYTES>': expected bytes (text, hex:HEX or @PATH): bad hex after `hex:`",
        ),
        (
            &["post", "--mentions", "@/no/such/file"],
            "cannot read `/no/such/file`",
        ),
        (
            &["set-filter", "--filter", "{\"wrds\":[]}"],
            "for '--filter <JSON>': expected a JSON value for message lattice.chat.v1.Filter: unrecognized field name 'wrds'",
        ),
        (
            &["post", "--labels", "novalue"],
            "for '--labels <KEY=VALUE>': expected KEY=VALUE with a string key and a string value: no `=` found",
        ),
    ];
    for (args, expected) in cases {
        let err = rejected(&chat(), args);
        let text = err.to_string();
        assert!(text.contains(expected), "{args:?}: {text}");
        assert!(text.starts_with("error: "), "{text}");
        assert_ne!(err.exit_code(), 0);
    }
    let err = rejected(&kinds(), &["everything", "--f-float", "1e39"]);
    assert!(
        err.to_string()
            .contains("for '--f-float <FLOAT>': expected float: out of range"),
        "{err}"
    );
    let err = rejected(&kinds(), &["everything", "--by-id", "x=\"{}\""]);
    assert!(err.to_string().contains("expected int32"), "{err}");
}

#[test]
fn enum_names_are_case_insensitive_with_prefix_optional() {
    for spelling in [
        "ORDER_NEWEST_FIRST",
        "order_newest_first",
        "NEWEST_FIRST",
        "newest_first",
        "newest-first",
        "order-newest-first",
    ] {
        let req = request(&chat(), &["messages", "--order", spelling]);
        assert_eq!(field(&req, "order"), Value::EnumNumber(1), "{spelling}");
    }
    let req = request(&kv(), &["get", "--key", "a", "--mode", "lww"]);
    assert_eq!(field(&req, "mode"), Value::EnumNumber(1));
    let req = request(
        &kinds(),
        &["everything", "--colors", "red", "--colors", "GREEN"],
    );
    assert_eq!(
        field(&req, "colors"),
        Value::List(vec![Value::EnumNumber(0), Value::EnumNumber(1)])
    );
}

#[test]
fn bytes_from_a_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("value.bin");
    std::fs::write(&path, [0u8, 159, 146, 150]).expect("write");
    let arg = format!("@{}", path.display());
    let req = request(&kv(), &["put", "--key", "k", "--value", &arg]);
    assert_eq!(
        field(&req, "value"),
        Value::Bytes(vec![0u8, 159, 146, 150].into())
    );
    assert_eq!(field(&req, "key"), Value::Bytes(b"k".to_vec().into()));
}

#[test]
fn nested_messages_take_json() {
    let req = request(
        &chat(),
        &[
            "set-filter",
            "--filter",
            r#"{"words":["spam","eggs"],"action":"ACTION_MASK"}"#,
        ],
    );
    let Value::Message(filter) = field(&req, "filter") else {
        panic!("filter is a message");
    };
    assert_eq!(
        field(&filter, "words"),
        Value::List(vec![
            Value::String("spam".into()),
            Value::String("eggs".into())
        ])
    );
    assert_eq!(field(&filter, "action"), Value::EnumNumber(1));

    // Repeated messages: one JSON object per occurrence; JSON names work as well as proto names.
    let req = request(
        &kinds(),
        &[
            "everything",
            "--inner",
            r#"{"name":"a","n":1}"#,
            "--inners",
            r#"{"name":"b"}"#,
            "--inners",
            "{}",
            "--by-id",
            r#"7={"name":"seven"}"#,
            "--blobs",
            "k=hex:ff",
            "--at",
            "2024-01-02T03:04:05Z",
        ],
    );
    let Value::List(inners) = field(&req, "inners") else {
        panic!("list")
    };
    assert_eq!(inners.len(), 2);
    let Value::Map(by_id) = field(&req, "by_id") else {
        panic!("map")
    };
    let Some(Value::Message(seven)) = by_id.get(&MapKey::I32(7)) else {
        panic!("entry 7: {by_id:?}")
    };
    assert_eq!(field(seven, "name"), Value::String("seven".into()));
    assert_eq!(
        field(&req, "blobs"),
        Value::Map(HashMap::from([(
            MapKey::String("k".into()),
            Value::Bytes(vec![0xff].into())
        )]))
    );
    // A Timestamp takes its bare RFC 3339 string.
    let Value::Message(at) = field(&req, "at") else {
        panic!("timestamp")
    };
    assert_eq!(field(&at, "seconds"), Value::I64(1_704_164_645));
}

#[test]
fn oneof_member_is_set() {
    let req = request(&chat(), &["search", "--range", r#"{"from":"5","to":9}"#]);
    let range_field = req.descriptor().get_field_by_name("range").expect("field");
    assert!(req.has_field(&range_field));
    let Value::Message(range) = field(&req, "range") else {
        panic!("range")
    };
    assert_eq!(field(&range, "from"), Value::U64(5));
    assert_eq!(field(&range, "to"), Value::U64(9));

    let req = request(&chat(), &["search", "--offset", "-3", "--text", "x"]);
    assert_eq!(field(&req, "offset"), Value::I32(-3));
    assert_eq!(field(&req, "text"), Value::String("x".into()));
}

#[test]
fn request_round_trips_through_the_wire() {
    let req = request(
        &kinds(),
        &[
            "everything",
            "--f-double",
            "2.5",
            "--f-sint64",
            "-99",
            "--f-string",
            "ünïcode ✓",
            "--f-bytes",
            "hex:00ff",
            "--color",
            "green",
            "--numbers",
            "1",
            "--numbers",
            "-2",
            "--inner",
            r#"{"name":"x","n":-1}"#,
            "--maybe",
            "--by-id",
            "1={}",
        ],
    );
    let bytes = req.encode_to_vec();
    let back = DynamicMessage::decode(req.descriptor(), bytes.as_slice()).expect("decodes");
    assert_eq!(back, req);
}

#[test]
fn parse_value_without_clap_reports_the_flag() {
    let desc = chat()
        .methods()
        .find(|m| m.name() == "Messages")
        .expect("method")
        .input();
    let limit = desc.get_field_by_name("limit").expect("field");
    assert_eq!(parse_value(&limit, "5").expect("parses"), Value::U32(5));
    let err = parse_value(&limit, "five").unwrap_err();
    assert!(matches!(err, DynError::InvalidValue { .. }));
    assert_eq!(
        err.to_string(),
        "invalid value `five` for `--limit`: expected uint32 (0 to 4294967295): invalid digit found in string"
    );
}

#[test]
fn parse_request_with_foreign_matches() {
    let (_, post_matches) = matches(&chat(), &["post", "--text", "hi"]).expect("parses");
    let messages = chat()
        .methods()
        .find(|m| m.name() == "Messages")
        .expect("method");
    let result = parse_request(&messages, &post_matches);
    if cfg!(debug_assertions) {
        // clap checks argument ids in debug builds.
        assert!(
            matches!(result, Err(DynError::ForeignMatches { .. })),
            "{result:?}"
        );
    } else {
        // Release builds cannot tell: no flag of `messages` was given.
        let req = result.expect("empty request");
        assert_eq!(req.fields().count(), 0);
    }
}
