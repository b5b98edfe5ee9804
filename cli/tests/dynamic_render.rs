//! Replies and ops -> text and JSON.

mod dynamic_common;

use dynamic_common::{chat, kinds, kv, pool, request};
use lattice_cli::dynamic::{
    parse_bytes, render_json, render_op, render_reply, render_text, terminal_safe,
};
use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor, ReflectMessage};

fn message(name: &str) -> MessageDescriptor {
    pool().get_message_by_name(name).expect("message exists")
}

/// Builds a message from protobuf JSON (proto or JSON field names).
fn from_json(name: &str, json: &str) -> DynamicMessage {
    let mut de = serde_json::Deserializer::from_str(json);
    let msg = DynamicMessage::deserialize(message(name), &mut de).expect("valid JSON");
    de.end().expect("nothing after the JSON");
    msg
}

const AUTHOR_A: &str = "AAECAwQFBgcICQoLDA0ODw=="; // bytes 00..0f, base64 in protobuf JSON
const ID_1: &str = "3q2+7w=="; // de ad be ef

fn chat_page() -> DynamicMessage {
    from_json(
        "lattice.chat.v1.MessagesReply",
        &format!(
            r#"{{"messages":[
                {{"id":"{ID_1}","author":"{AUTHOR_A}","hlc":"1001","text":"hello, room"}},
                {{"id":"AQI=","author":"{AUTHOR_A}","hlc":"1002","text":"two\nlines",
                  "reply_to":"{ID_1}",
                  "reactions":[{{"emoji":"👍","count":2}},{{"emoji":"🎉","count":1}}]}}
            ]}}"#
        ),
    )
}

#[test]
fn chat_messages_render_one_block_per_message() {
    let text = render_reply(&chat_page(), false);
    let expected = "\
id: hex:deadbeef
author: hex:000102030405060708090a0b0c0d0e0f
hlc: 1001
text: hello, room

id: hex:0102
author: hex:000102030405060708090a0b0c0d0e0f
hlc: 1002
text: two
  lines
reply_to: hex:deadbeef
reactions:
  - emoji: 👍
    count: 2
  - emoji: 🎉
    count: 1";
    assert_eq!(text, expected);
}

#[test]
fn printed_ids_paste_back_into_bytes_flags() {
    let text = render_text(&chat_page());
    let id = text
        .lines()
        .find_map(|l| l.strip_prefix("id: "))
        .expect("an id line");
    let req = request(&chat(), &["reply", "--to", id, "--text", "agreed"]);
    let to = req.get_field_by_name("to").expect("field");
    assert_eq!(
        parse_bytes(id).expect("parses"),
        vec![0xde, 0xad, 0xbe, 0xef]
    );
    assert_eq!(
        to.as_bytes().map(|b| b.to_vec()),
        Some(vec![0xde, 0xad, 0xbe, 0xef])
    );
}

#[test]
fn chat_messages_as_json() {
    let json = render_reply(&chat_page(), true);
    assert!(!json.contains('\n'), "one line: {json}");
    let value: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    let first = &value["messages"][0];
    assert_eq!(first["text"], "hello, room");
    assert_eq!(first["hlc"], "1001", "64-bit integers are strings");
    assert_eq!(first["id"], ID_1, "bytes are base64");
    // Defaults are included so scripts can rely on every field being there...
    assert_eq!(first["reactions"], serde_json::json!([]));
    // ...except unset optional fields, which have no value at all.
    assert!(first.get("reply_to").is_none(), "{first}");
    // Proto field names, not lowerCamelCase JSON names.
    assert_eq!(value["messages"][1]["reply_to"], ID_1);
    assert!(value["messages"][1].get("replyTo").is_none());
}

#[test]
fn kv_heads_render_as_items() {
    let reply = from_json(
        "lattice.kv.v1.GetReply",
        &format!(
            r#"{{"key":"Y29uZmln","heads":[
                {{"value":"b24=","author":"{AUTHOR_A}","hlc":"7"}},
                {{"value":"","author":"{AUTHOR_A}","hlc":"9","deleted":true}}
            ]}}"#
        ),
    );
    let expected = "\
key: config
heads:
  - value: on
    author: hex:000102030405060708090a0b0c0d0e0f
    hlc: 7
    deleted: false
  - value: \"\"
    author: hex:000102030405060708090a0b0c0d0e0f
    hlc: 9
    deleted: true";
    assert_eq!(render_text(&reply), expected);

    let json: serde_json::Value = serde_json::from_str(&render_json(&reply)).expect("valid JSON");
    assert_eq!(json["heads"][1]["deleted"], true);
    assert_eq!(json["heads"][0]["deleted"], false, "defaults included");
    assert_eq!(json["key"], "Y29uZmln");
}

#[test]
fn enums_maps_and_scalars_render_readably() {
    let req = request(
        &kinds(),
        &[
            "everything",
            "--color",
            "dark_blue",
            "--numbers",
            "3",
            "--numbers",
            "4",
            "--colors",
            "green",
            "--by-id",
            r#"2={"name":"two"}"#,
            "--by-id",
            r#"1={"name":"one","n":1}"#,
            "--blobs",
            "b=hex:00",
            "--blobs",
            "a=x",
            "--inner",
            "{}",
            "--f-double",
            "1e300",
            "--f-float",
            "1",
            "--f-string",
            "@not-a-file-for-strings",
        ],
    );
    // Zero, false and empty are values and are shown, not dropped.
    let expected = "\
f_double: 1e300
f_float: 1.0
f_int32: 0
f_int64: 0
f_uint32: 0
f_uint64: 0
f_sint32: 0
f_sint64: 0
f_fixed32: 0
f_fixed64: 0
f_sfixed32: 0
f_sfixed64: 0
f_bool: false
f_string: @not-a-file-for-strings
f_bytes: \"\"
color: DARK_BLUE
inner:
  name: \"\"
  n: 0
numbers: [3, 4]
colors: [GREEN]
by_id:
  1:
    name: one
    n: 1
  2:
    name: two
    n: 0
blobs:
  a: x
  b: hex:00";
    assert_eq!(render_text(&req), expected);
    let json: serde_json::Value = serde_json::from_str(&render_json(&req)).expect("valid JSON");
    assert_eq!(json["color"], "DARK_BLUE");
    assert_eq!(json["by_id"]["1"]["name"], "one");
}

#[test]
fn ops_render_on_one_line() {
    let op = from_json(
        "lattice.chat.v1.Op",
        r#"{"post":{"text":"hi\nthere","mentions":["3q2+7w=="],"labels":{"b":"2","a":"1"},"format":"FORMAT_MARKDOWN"}}"#,
    );
    assert_eq!(
        render_op(&op),
        r#"post: { text: "hi\nthere", mentions: [hex:deadbeef], format: FORMAT_MARKDOWN, labels: { "a": "1", "b": "2" } }"#
    );
    let op = from_json(
        "lattice.chat.v1.Op",
        r#"{"set_filter":{"words":["x"],"action":"ACTION_MASK"}}"#,
    );
    assert_eq!(
        render_op(&op),
        r#"set_filter: { words: ["x"], action: ACTION_MASK }"#
    );
    assert_eq!(
        render_op(&DynamicMessage::new(message("lattice.chat.v1.Op"))),
        "{}"
    );
}

#[test]
fn empty_replies_render_as_nothing() {
    let empty = DynamicMessage::new(message("lattice.chat.v1.Empty"));
    assert_eq!(render_text(&empty), "");
    assert_eq!(render_json(&empty), "{}");
    let page = DynamicMessage::new(message("lattice.chat.v1.MessagesReply"));
    assert_eq!(render_text(&page), "");
    assert_eq!(render_json(&page), r#"{"messages":[]}"#);
}

#[test]
fn json_output_parses_back_to_the_same_message() {
    // encode -> decode -> JSON -> parse: what `--json` prints is a faithful copy.
    let page = chat_page();
    let wire = page.encode_to_vec();
    let decoded = DynamicMessage::decode(page.descriptor(), wire.as_slice()).expect("decodes");
    assert_eq!(decoded, page);
    let json = render_json(&decoded);
    let back = from_json("lattice.chat.v1.MessagesReply", &json);
    // Compared on the wire: JSON with defaults included sets default-valued fields
    // explicitly, which `DynamicMessage`'s `==` tells apart from absent ones.
    assert_eq!(back.encode_to_vec(), wire);
    assert_eq!(render_text(&back), render_text(&page));

    let put = request(&kv(), &["put", "--key", "a", "--value", "hex:00ff"]);
    let back = from_json("lattice.kv.v1.PutRequest", &render_json(&put));
    assert_eq!(back.encode_to_vec(), put.encode_to_vec());
    assert_eq!(put.encode_to_vec(), b"\x0a\x01a\x12\x02\x00\xff");
}

/// A forged op's text reaches the renderer with every control intact
/// (`prepare` is skipped by a modified client): nothing that acts on a
/// terminal is printed raw, in the block form or the one-line form.
#[test]
fn controls_in_peer_text_are_spelled_out() {
    let evil = "a\u{1b}]8;;http://x\u{7}b\u{1b}[2J\u{9b}c\u{7f}\u{202e}d\u{2066}e\tf";
    let msg = from_json(
        "lattice.chat.v1.MessagesReply",
        &format!(
            r#"{{"messages":[{{"id":"{ID_1}","author":"{AUTHOR_A}","hlc":"1","text":{}}}]}}"#,
            serde_json::to_string(evil).unwrap()
        ),
    );
    for shown in [render_text(&msg), render_op(&msg)] {
        for c in [
            '\u{1b}', '\u{7}', '\u{9b}', '\u{7f}', '\u{202e}', '\u{2066}',
        ] {
            assert!(!shown.contains(c), "{c:?} raw in {shown:?}");
        }
    }
    assert_eq!(
        terminal_safe(evil),
        "a\\u{1b}]8;;http://x\\u{7}b\\u{1b}[2J\\u{9b}c\\u{7f}\\u{202e}d\\u{2066}e\tf"
    );
    assert_eq!(terminal_safe("plain\ntext"), "plain\ntext");
}
