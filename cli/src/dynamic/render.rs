//! Printing replies and ops: indented text for people, protobuf JSON for scripts, one line
//! for logs.

use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MapKey, ReflectMessage, SerializeOptions, Value,
};

use super::readable::{self, Readable};
use super::value::format_bytes;

/// A reply as text (`json == false`, see [`render_text`]) or as one line of protobuf JSON
/// (see [`render_json`]). No trailing newline.
pub fn render_reply(msg: &DynamicMessage, json: bool) -> String {
    if json {
        render_json(msg)
    } else {
        render_text(msg)
    }
}

/// Protobuf JSON on one line, with proto field names and default values included.
///
/// One line so that streams (`watch --json`) are JSON Lines; proto field names because they
/// are the names the flags and the text output use, and protobuf JSON parsers accept them;
/// defaults included so that scripts find every field. Enums are names, bytes base64 and
/// 64-bit integers strings, as the JSON mapping says.
pub fn render_json(msg: &DynamicMessage) -> String {
    let options = SerializeOptions::new()
        .use_proto_field_name(true)
        .skip_default_fields(false);
    let mut buf = Vec::new();
    let mut serializer = serde_json::Serializer::new(&mut buf);
    match msg.serialize_with_options(&mut serializer, &options) {
        Ok(()) => String::from_utf8_lossy(&buf).into_owned(),
        // Writing to a Vec cannot fail and the mapping covers every value, so this is not
        // expected; it still yields valid JSON rather than a panic.
        Err(e) => {
            serde_json::json!({ "error": format!("cannot encode reply as JSON: {e}") }).to_string()
        }
    }
}

/// A message as indented `field: value` lines (no trailing newline; empty when no field is
/// set).
///
/// - Only set fields are shown (proto3 fields at their default are not).
/// - Nested messages are indented by two spaces under `field:`; elements of a repeated
///   message field are `- ` items; repeated scalars are `[a, b]`; maps are `key: value`
///   lines sorted by key.
/// - Bytes are text when printable UTF-8, else `hex:...` (the syntax bytes flags accept);
///   enums are names; strings are printed as they are, continuation lines indented.
/// - A message whose only set field is a repeated message field (a list reply: chat
///   messages, kv heads) prints one block per element, separated by blank lines.
pub fn render_text(msg: &DynamicMessage) -> String {
    render_text_with(msg, &Readable::default())
}

/// [`render_text`] with member names for author keys and people's times
/// for clocks (see [`Readable`]).
pub fn render_text_with(msg: &DynamicMessage, r: &Readable) -> String {
    let fields: Vec<(FieldDescriptor, &Value)> = msg.fields().collect();
    if let [(field, Value::List(items))] = fields.as_slice()
        && !field.is_map()
        && matches!(field.kind(), Kind::Message(_))
    {
        let blocks: Vec<String> = items
            .iter()
            .map(|item| match item {
                Value::Message(m) => {
                    let lines = message_lines(m, 0, r);
                    if lines.is_empty() {
                        "{}".to_owned()
                    } else {
                        lines.join("\n")
                    }
                }
                other => inline_value(&field.kind(), other),
            })
            .collect();
        return blocks.join("\n\n");
    }
    message_lines(msg, 0, r).join("\n")
}

/// An op (or any message) on a single line, for log listings:
/// `post: { text: "hi", mentions: [hex:0a1b] }`. Strings are quoted and escaped so that one
/// op is always exactly one line.
pub fn render_op(msg: &DynamicMessage) -> String {
    let parts: Vec<String> = msg
        .fields()
        .map(|(field, value)| format!("{}: {}", field.name(), inline_field(&field, value)))
        .collect();
    if parts.is_empty() {
        "{}".to_owned()
    } else {
        parts.join(", ")
    }
}

/// Every field with a value: set fields, and scalars at their default
/// (`0`, `false`, `""` are values too). Only fields that can be absent
/// stay out when they are: unset `optional`s, oneof members and messages.
fn message_lines(msg: &DynamicMessage, indent: usize, r: &Readable) -> Vec<String> {
    let mut out = Vec::new();
    for field in msg.descriptor().fields() {
        let absent = !msg.has_field(&field)
            && (field.supports_presence()
                || field.is_list()
                || field.is_map()
                || matches!(field.kind(), Kind::Message(_)));
        if !absent {
            let value = msg.get_field(&field);
            push_field(&mut out, indent, &field, &value, r);
        }
    }
    out
}

fn push_field(
    out: &mut Vec<String>,
    indent: usize,
    field: &FieldDescriptor,
    value: &Value,
    r: &Readable,
) {
    let pad = " ".repeat(indent);
    let name = field.name();
    let kind = field.kind();
    match value {
        Value::Map(map) => {
            out.push(format!("{pad}{name}:"));
            let value_kind = map_value_kind(&kind);
            let mut entries: Vec<(&MapKey, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            for (key, value) in entries {
                push_named(out, indent + 2, &map_key_text(key), &value_kind, value, r);
            }
        }
        Value::List(items) => match &kind {
            Kind::Message(_) => {
                out.push(format!("{pad}{name}:"));
                for item in items {
                    push_item(out, indent + 2, &kind, item, r);
                }
            }
            _ if readable::is_author(field) => {
                let shown: Vec<String> = items
                    .iter()
                    .map(|v| match v {
                        Value::Bytes(b) => r.author(b),
                        other => inline_value(&kind, other),
                    })
                    .collect();
                out.push(format!("{pad}{name}: [{}]", shown.join(", ")));
            }
            _ => {
                let shown: Vec<String> = items.iter().map(|v| inline_value(&kind, v)).collect();
                out.push(format!("{pad}{name}: [{}]", shown.join(", ")));
            }
        },
        Value::U64(t) if r.time.is_some() && readable::is_clock(field) => {
            let time = r.time.map(|f| f(*t)).unwrap_or_default();
            out.push(format!("{pad}{name}: {time}"));
        }
        Value::Bytes(b) if !r.names.is_empty() && readable::is_author(field) => {
            out.push(format!("{pad}{name}: {}", r.author(b)));
        }
        Value::String(s) if s.is_empty() => out.push(format!("{pad}{name}: \"\"")),
        Value::Bytes(b) if b.is_empty() => out.push(format!("{pad}{name}: \"\"")),
        other => push_named(out, indent, name, &kind, other, r),
    }
}

/// `name: value` for a singular value: nested messages on the following lines, multi-line
/// text with indented continuation lines.
fn push_named(
    out: &mut Vec<String>,
    indent: usize,
    name: &str,
    kind: &Kind,
    value: &Value,
    r: &Readable,
) {
    let pad = " ".repeat(indent);
    match value {
        Value::Message(m) => {
            let lines = message_lines(m, indent + 2, r);
            if lines.is_empty() {
                out.push(format!("{pad}{name}: {{}}"));
            } else {
                out.push(format!("{pad}{name}:"));
                out.extend(lines);
            }
        }
        other => {
            let text = scalar_text(kind, other);
            let mut lines = text.split('\n');
            out.push(format!("{pad}{name}: {}", lines.next().unwrap_or("")));
            for line in lines {
                out.push(format!("{pad}  {line}"));
            }
        }
    }
}

/// One `- ` element of a repeated message field.
fn push_item(out: &mut Vec<String>, indent: usize, kind: &Kind, item: &Value, r: &Readable) {
    let pad = " ".repeat(indent);
    match item {
        Value::Message(m) => {
            let lines = message_lines(m, indent + 2, r);
            match lines.split_first() {
                None => out.push(format!("{pad}- {{}}")),
                Some((first, rest)) => {
                    out.push(format!("{pad}- {}", &first[indent + 2..]));
                    out.extend(rest.iter().cloned());
                }
            }
        }
        other => out.push(format!("{pad}- {}", inline_value(kind, other))),
    }
}

fn map_value_kind(kind: &Kind) -> Kind {
    match kind {
        Kind::Message(entry) => entry.map_entry_value_field().kind(),
        other => other.clone(),
    }
}

fn map_key_text(key: &MapKey) -> String {
    match key {
        MapKey::Bool(v) => v.to_string(),
        MapKey::I32(v) => v.to_string(),
        MapKey::I64(v) => v.to_string(),
        MapKey::U32(v) => v.to_string(),
        MapKey::U64(v) => v.to_string(),
        MapKey::String(v) => terminal_safe(v),
    }
}

/// `s` with every character that would act on a terminal instead of being
/// shown spelled out as `\u{..}`: C0 and C1 controls (ESC starts colour,
/// cursor, title and hyperlink sequences), DEL, and the bidirectional
/// overrides and isolates that reorder what is displayed. Newlines and tabs
/// stay. Text in replies and ops comes from any member of the mesh: a
/// modified client can put anything in a string field, and printing it raw
/// would let that member rewrite the reader's screen.
pub fn terminal_safe(s: &str) -> String {
    if !s.chars().any(is_unsafe) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unsafe(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

fn is_unsafe(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn enum_text(kind: &Kind, number: i32) -> String {
    kind.as_enum()
        .and_then(|e| e.get_value(number))
        .map(|v| v.name().to_owned())
        .unwrap_or_else(|| number.to_string())
}

/// A scalar for the multi-line text form: strings as they are, but
/// terminal-safe ([`terminal_safe`]).
fn scalar_text(kind: &Kind, value: &Value) -> String {
    match value {
        Value::String(s) => terminal_safe(s),
        Value::Bytes(b) => format_bytes(b),
        other => inline_value(kind, other),
    }
}

/// A value on one line: strings (and text bytes) quoted and escaped, messages in braces.
fn inline_value(kind: &Kind, value: &Value) -> String {
    match value {
        Value::Bool(v) => v.to_string(),
        Value::I32(v) => v.to_string(),
        Value::I64(v) => v.to_string(),
        Value::U32(v) => v.to_string(),
        Value::U64(v) => v.to_string(),
        // Debug, not Display: `1e300` instead of three hundred digits, and `1.0` stays a float.
        Value::F32(v) => format!("{v:?}"),
        Value::F64(v) => format!("{v:?}"),
        // Debug escapes controls; `terminal_safe` also catches the
        // bidirectional controls Debug may leave as they are.
        Value::String(s) => terminal_safe(&format!("{s:?}")),
        Value::Bytes(b) => {
            let shown = format_bytes(b);
            if shown.starts_with("hex:") {
                shown
            } else {
                terminal_safe(&format!("{shown:?}"))
            }
        }
        Value::EnumNumber(n) => enum_text(kind, *n),
        Value::Message(m) => {
            let parts: Vec<String> = m
                .fields()
                .map(|(f, v)| format!("{}: {}", f.name(), inline_field(&f, v)))
                .collect();
            if parts.is_empty() {
                "{}".to_owned()
            } else {
                format!("{{ {} }}", parts.join(", "))
            }
        }
        Value::List(items) => {
            let parts: Vec<String> = items.iter().map(|v| inline_value(kind, v)).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::Map(map) => {
            let value_kind = map_value_kind(kind);
            let mut entries: Vec<(&MapKey, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let parts: Vec<String> = entries
                .into_iter()
                .map(|(k, v)| {
                    let key = match k {
                        MapKey::String(s) => terminal_safe(&format!("{s:?}")),
                        other => map_key_text(other),
                    };
                    format!("{key}: {}", inline_value(&value_kind, v))
                })
                .collect();
            if parts.is_empty() {
                "{}".to_owned()
            } else {
                format!("{{ {} }}", parts.join(", "))
            }
        }
    }
}

fn inline_field(field: &FieldDescriptor, value: &Value) -> String {
    inline_value(&field.kind(), value)
}
