//! Turning flag text into protobuf values, and bytes back into text.
//!
//! The same functions back the clap value parsers (so bad values are rejected while the
//! command line is matched, with clap naming the flag) and [`parse_value`] for callers
//! without clap.

use std::collections::HashMap;
use std::io::Read;
use std::str::FromStr;

use prost_reflect::{
    DynamicMessage, EnumDescriptor, FieldDescriptor, Kind, MapKey, MessageDescriptor, Value,
};

use super::names::kebab_case;
use super::{DynError, ValueError};

/// The proto name of a kind, as shown in help and errors: `uint32`, `enum chat.Order`,
/// `message chat.Filter`.
pub(crate) fn kind_name(kind: &Kind) -> String {
    match kind {
        Kind::Double => "double".into(),
        Kind::Float => "float".into(),
        Kind::Int32 => "int32".into(),
        Kind::Int64 => "int64".into(),
        Kind::Uint32 => "uint32".into(),
        Kind::Uint64 => "uint64".into(),
        Kind::Sint32 => "sint32".into(),
        Kind::Sint64 => "sint64".into(),
        Kind::Fixed32 => "fixed32".into(),
        Kind::Fixed64 => "fixed64".into(),
        Kind::Sfixed32 => "sfixed32".into(),
        Kind::Sfixed64 => "sfixed64".into(),
        Kind::Bool => "bool".into(),
        Kind::String => "string".into(),
        Kind::Bytes => "bytes".into(),
        Kind::Message(m) => format!("message {}", m.full_name()),
        Kind::Enum(e) => format!("enum {}", e.full_name()),
    }
}

/// The field's type as written in a .proto file: `repeated string`, `map<string, bytes>`,
/// `optional uint32`.
pub(crate) fn field_type_name(field: &FieldDescriptor) -> String {
    let bare = |kind: &Kind| match kind {
        Kind::Message(m) => m.full_name().to_owned(),
        Kind::Enum(e) => e.full_name().to_owned(),
        other => kind_name(other),
    };
    if field.is_map()
        && let Kind::Message(entry) = field.kind()
    {
        return format!(
            "map<{}, {}>",
            bare(&entry.map_entry_key_field().kind()),
            bare(&entry.map_entry_value_field().kind())
        );
    }
    let kind = bare(&field.kind());
    if field.is_list() {
        format!("repeated {kind}")
    } else if field.supports_presence()
        && field.containing_oneof().is_some_and(|o| o.is_synthetic())
    {
        format!("optional {kind}")
    } else {
        kind
    }
}

/// The expected-type text of an error: the kind, with the range for numbers.
pub(crate) fn expected(kind: &Kind) -> String {
    match kind {
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            format!("{} ({} to {})", kind_name(kind), i32::MIN, i32::MAX)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            format!("{} ({} to {})", kind_name(kind), i64::MIN, i64::MAX)
        }
        Kind::Uint32 | Kind::Fixed32 => format!("{} (0 to {})", kind_name(kind), u32::MAX),
        Kind::Uint64 | Kind::Fixed64 => format!("{} (0 to {})", kind_name(kind), u64::MAX),
        Kind::Bool => "bool (true or false)".into(),
        Kind::Bytes => "bytes (text, hex:HEX or @PATH)".into(),
        Kind::Message(m) => format!("a JSON value for message {}", m.full_name()),
        Kind::Enum(e) => {
            let names: Vec<String> = e.values().map(|v| v.name().to_owned()).collect();
            format!("enum {} (one of {})", e.full_name(), names.join(", "))
        }
        other => kind_name(other),
    }
}

fn bad(kind: &Kind, reason: impl ToString) -> ValueError {
    ValueError {
        expected: expected(kind),
        reason: reason.to_string(),
    }
}

fn number<T>(kind: &Kind, text: &str) -> Result<T, ValueError>
where
    T: FromStr,
    T::Err: ToString,
{
    text.parse::<T>().map_err(|e| bad(kind, e))
}

/// Floats reject finite input that overflows to infinity (`1e39` for a `float`): silently
/// storing `inf` would not be what the user typed.
fn float<T>(kind: &Kind, text: &str, is_infinite: fn(&T) -> bool) -> Result<T, ValueError>
where
    T: FromStr,
    T::Err: ToString,
{
    let v: T = number(kind, text)?;
    if is_infinite(&v) && !text.to_ascii_lowercase().contains("inf") {
        return Err(bad(kind, "out of range"));
    }
    Ok(v)
}

/// The boolean spellings clap's `BoolishValueParser` accepts (case-insensitive), so users
/// meet the same words here as in other clap tools.
pub(crate) fn parse_bool(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "t" | "yes" | "y" | "on" | "1" => Some(true),
        "false" | "f" | "no" | "n" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// Parses `text` as one value of `kind` (one element, for repeated fields).
pub(crate) fn parse_kind(kind: &Kind, text: &str) -> Result<Value, ValueError> {
    Ok(match kind {
        Kind::Double => Value::F64(float(kind, text, |v: &f64| v.is_infinite())?),
        Kind::Float => Value::F32(float(kind, text, |v: &f32| v.is_infinite())?),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(number(kind, text)?),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(number(kind, text)?),
        Kind::Uint32 | Kind::Fixed32 => Value::U32(number(kind, text)?),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(number(kind, text)?),
        Kind::Bool => Value::Bool(parse_bool(text).ok_or_else(|| bad(kind, ""))?),
        Kind::String => Value::String(text.to_owned()),
        Kind::Bytes => Value::Bytes(parse_bytes(text)?.into()),
        Kind::Enum(e) => Value::EnumNumber(enum_number(e, text).ok_or_else(|| bad(kind, ""))?),
        Kind::Message(m) => Value::Message(parse_message(m, text)?),
    })
}

/// Parses one `KEY=VALUE` occurrence of a map flag into a one-entry [`Value::Map`]; the
/// request builder merges the entries of all occurrences.
pub(crate) fn parse_map_entry(
    key_kind: &Kind,
    value_kind: &Kind,
    text: &str,
) -> Result<Value, ValueError> {
    let Some((key, value)) = text.split_once('=') else {
        return Err(ValueError {
            expected: format!(
                "KEY=VALUE with a {} key and a {} value",
                kind_name(key_kind),
                kind_name(value_kind)
            ),
            reason: "no `=` found".into(),
        });
    };
    let key = match parse_kind(key_kind, key)? {
        Value::Bool(b) => MapKey::Bool(b),
        Value::I32(v) => MapKey::I32(v),
        Value::I64(v) => MapKey::I64(v),
        Value::U32(v) => MapKey::U32(v),
        Value::U64(v) => MapKey::U64(v),
        Value::String(s) => MapKey::String(s),
        // protoc only allows integral, bool and string keys.
        _ => return Err(bad(key_kind, "not a valid map key type")),
    };
    let value = parse_kind(value_kind, value)?;
    Ok(Value::Map(HashMap::from([(key, value)])))
}

/// Parses the text of one occurrence of `field`'s flag, exactly as the command line does:
/// for a repeated field one element, for a map field one `KEY=VALUE` entry (as a one-entry
/// [`Value::Map`]).
///
/// For front ends that take field values as text without going through clap (the
/// interactive chat client, scripts); errors name the field's kebab-case flag.
pub fn parse_value(field: &FieldDescriptor, text: &str) -> Result<Value, DynError> {
    let result = if field.is_map() {
        match field.kind() {
            Kind::Message(entry) => parse_map_entry(
                &entry.map_entry_key_field().kind(),
                &entry.map_entry_value_field().kind(),
                text,
            ),
            other => parse_kind(&other, text),
        }
    } else {
        parse_kind(&field.kind(), text)
    };
    result.map_err(|reason| DynError::InvalidValue {
        flag: kebab_case(field.name()),
        value: text.to_owned(),
        reason,
    })
}

/// Parses a `bytes` flag: `hex:0A1b` (hex, either case), `@PATH` (file contents; `@-` is
/// standard input), `text:ANY` (ANY verbatim, to escape the other prefixes), else the UTF-8
/// text itself.
pub fn parse_bytes(text: &str) -> Result<Vec<u8>, ValueError> {
    let err = |reason: String| ValueError {
        expected: expected(&Kind::Bytes),
        reason,
    };
    if let Some(hex_text) = text.strip_prefix("hex:") {
        hex::decode(hex_text).map_err(|e| err(format!("bad hex after `hex:`: {e}")))
    } else if let Some(id) = whole_id(text) {
        Ok(id)
    } else if let Some(path) = text.strip_prefix('@') {
        if path == "-" {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .map_err(|e| err(format!("cannot read standard input: {e}")))?;
            Ok(buf)
        } else {
            std::fs::read(path).map_err(|e| err(format!("cannot read `{path}`: {e}")))
        }
    } else if let Some(verbatim) = text.strip_prefix("text:") {
        Ok(verbatim.as_bytes().to_vec())
    } else {
        Ok(text.as_bytes().to_vec())
    }
}

/// A 32-byte id or key in a form the CLI prints: 64 hex digits (what text
/// output shows after `hex:`) or base64 (what `--json` shows).
fn whole_id(text: &str) -> Option<Vec<u8>> {
    if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return hex::decode(text).ok();
    }
    if text.len() == 44 && text.ends_with('=') {
        use base64::Engine as _;
        return base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()
            .filter(|b| b.len() == 32);
    }
    None
}

/// Whether `text` could be a short id prefix (like git's): 4 to 63 hex
/// digits, with or without `hex:`. Resolved against the store's entries by
/// the caller, for fields that name entries.
pub fn id_prefix(text: &str) -> Option<String> {
    let t = text.strip_prefix("hex:").unwrap_or(text);
    (t.len() >= 4 && t.len() < 64 && t.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| t.to_ascii_lowercase())
}

/// Shows bytes the way [`parse_bytes`] reads them: printable UTF-8 as itself (with a `text:`
/// prefix if it would otherwise look like `hex:`, `@` or `text:`), anything else as
/// `hex:...`. So any bytes printed by the CLI can be pasted back into a bytes flag (ids from
/// `messages` into `reply --to`).
///
/// The text/binary guess is by content only: 32-byte ids and keys are practically never
/// valid UTF-8 without control characters, but a short binary value can be and then prints
/// as (odd) text; it still parses back to the same bytes.
pub fn format_bytes(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) if !s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') => {
            if s.starts_with("hex:") || s.starts_with('@') || s.starts_with("text:") {
                format!("text:{s}")
            } else {
                s.to_owned()
            }
        }
        _ => format!("hex:{}", hex::encode(bytes)),
    }
}

/// The shared `PREFIX_` of an enum's value names (`ORDER_` for `enum Order`), if every value
/// has it: the proto style guide asks for it, and it is noise on a command line.
fn enum_prefix(e: &EnumDescriptor) -> Option<String> {
    let prefix = format!("{}_", kebab_case(e.name()).replace('-', "_").to_uppercase());
    e.values()
        .all(|v| v.name().len() > prefix.len() && v.name().starts_with(&prefix))
        .then_some(prefix)
}

/// Extra spellings accepted for an enum value: without the enum's prefix, and with `-`
/// instead of `_` (`ORDER_NEWEST_FIRST` -> `NEWEST_FIRST`, `newest-first`,
/// `order-newest-first`). Matching is case-insensitive.
pub(crate) fn enum_aliases(e: &EnumDescriptor, name: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |alias: String| {
        if !alias.eq_ignore_ascii_case(name) && !out.iter().any(|a| a.eq_ignore_ascii_case(&alias))
        {
            out.push(alias);
        }
    };
    if let Some(stripped) = enum_prefix(e).and_then(|p| name.strip_prefix(&p).map(str::to_owned)) {
        add(stripped.to_lowercase());
        add(stripped.to_lowercase().replace('_', "-"));
    }
    add(name.to_lowercase().replace('_', "-"));
    out
}

/// The number of the enum value named `text`: exact names first (case-insensitive), then
/// the aliases of [`enum_aliases`], in declaration order.
pub(crate) fn enum_number(e: &EnumDescriptor, text: &str) -> Option<i32> {
    e.values()
        .find(|v| v.name().eq_ignore_ascii_case(text))
        .or_else(|| {
            e.values().find(|v| {
                enum_aliases(e, v.name())
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(text))
            })
        })
        .map(|v| v.number())
}

fn json_message(desc: &MessageDescriptor, text: &str) -> Result<DynamicMessage, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let msg = DynamicMessage::deserialize(desc.clone(), &mut de)?;
    de.end()?;
    Ok(msg)
}

/// Parses a message flag as protobuf JSON. Well-known types whose JSON form is a string
/// (`Timestamp`, `Duration`, `FieldMask`, `StringValue`...) also take the bare string, so
/// `--at 2024-01-01T00:00:00Z` works without shell-quoting JSON quotes.
fn parse_message(desc: &MessageDescriptor, text: &str) -> Result<DynamicMessage, ValueError> {
    match json_message(desc, text) {
        Ok(msg) => Ok(msg),
        Err(e) => {
            if desc.full_name().starts_with("google.protobuf.")
                && let Ok(quoted) = serde_json::to_string(text)
                && let Ok(msg) = json_message(desc, &quoted)
            {
                return Ok(msg);
            }
            Err(bad(&Kind::Message(desc.clone()), e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_prefixes() {
        assert_eq!(parse_bytes("hi").unwrap(), b"hi");
        assert_eq!(parse_bytes("hex:00FFab").unwrap(), vec![0, 0xff, 0xab]);
        assert_eq!(parse_bytes("text:hex:00").unwrap(), b"hex:00");
        assert_eq!(parse_bytes("").unwrap(), b"");
        let err = parse_bytes("hex:0g").unwrap_err();
        assert!(err.to_string().contains("bad hex"), "{err}");
        let err = parse_bytes("@/definitely/not/here").unwrap_err();
        assert!(
            err.to_string()
                .contains("cannot read `/definitely/not/here`"),
            "{err}"
        );
    }

    #[test]
    fn format_bytes_round_trips_through_parse_bytes() {
        let samples: Vec<Vec<u8>> = vec![
            b"hello world".to_vec(),
            b"two\nlines".to_vec(),
            vec![0, 1, 2, 0xff],
            vec![0xc3, 0x28],
            "héllo ✓".as_bytes().to_vec(),
            b"hex:abcd".to_vec(),
            b"@file".to_vec(),
            b"text:x".to_vec(),
            b"bell\x07".to_vec(),
            Vec::new(),
        ];
        for s in samples {
            let shown = format_bytes(&s);
            assert_eq!(parse_bytes(&shown).unwrap(), s, "shown as {shown:?}");
        }
        assert_eq!(format_bytes(&[0xde, 0xad, 0xbe, 0xef]), "hex:deadbeef");
        // A short binary value can happen to be valid UTF-8: it prints as text, and still
        // round-trips (above).
        assert_eq!(format_bytes(&[0xde, 0xad]), "\u{7ad}");
        assert_eq!(format_bytes(b"@me"), "text:@me");
    }

    #[test]
    fn numbers_are_range_checked() {
        assert_eq!(parse_kind(&Kind::Uint32, "7").unwrap(), Value::U32(7));
        assert_eq!(parse_kind(&Kind::Sint64, "-7").unwrap(), Value::I64(-7));
        let err = parse_kind(&Kind::Uint32, "4294967296").unwrap_err();
        assert_eq!(
            err.to_string(),
            "expected uint32 (0 to 4294967295): number too large to fit in target type"
        );
        assert!(parse_kind(&Kind::Uint64, "-1").is_err());
        assert!(parse_kind(&Kind::Int32, "2147483648").is_err());
        assert!(parse_kind(&Kind::Int32, "1.5").is_err());
        assert_eq!(parse_kind(&Kind::Double, "2e-3").unwrap(), Value::F64(2e-3));
        assert_eq!(
            parse_kind(&Kind::Float, "inf").unwrap(),
            Value::F32(f32::INFINITY)
        );
        let err = parse_kind(&Kind::Float, "1e39").unwrap_err();
        assert_eq!(err.to_string(), "expected float: out of range");
        assert!(parse_kind(&Kind::Double, "1e309").is_err());
    }

    #[test]
    fn bools() {
        assert_eq!(parse_bool("TRUE"), Some(true));
        assert_eq!(parse_bool("off"), Some(false));
        assert_eq!(parse_bool("maybe"), None);
        assert_eq!(
            parse_kind(&Kind::Bool, "maybe").unwrap_err().to_string(),
            "expected bool (true or false)"
        );
    }
}
