//! Plugin messages as protobuf JSON, from the plugin's own descriptor: a
//! plugin nobody here has heard of gets an HTTP API with no code. The
//! mapping is the CLI's `--json` one: proto field names, defaults included,
//! bytes as base64, 64-bit integers as strings.

use prost::Message as _;
use prost_reflect::{
    Cardinality, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, SerializeOptions,
};
use serde_json::{Value, json};

use crate::error::ApiError;
use lattice_host::runtime::{MethodInfo, PluginInfo};

/// A request body (protobuf JSON; empty means the empty message) encoded
/// as the method's input message.
pub fn encode_request(m: &MethodInfo, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let msg = DynamicMessage::deserialize(m.input.clone(), &mut de)
        .and_then(|msg| de.end().map(|()| msg))
        .map_err(|e| {
            ApiError::invalid(format!(
                "request body is not a {} in protobuf JSON: {e}",
                m.input.full_name()
            ))
        })?;
    Ok(msg.encode_to_vec())
}

/// Encoded bytes of `desc` as JSON (`null` if they do not decode).
pub fn decode(desc: &MessageDescriptor, bytes: &[u8]) -> Value {
    match DynamicMessage::decode(desc.clone(), bytes) {
        Ok(msg) => to_json(&msg),
        Err(_) => Value::Null,
    }
}

pub fn to_json(msg: &DynamicMessage) -> Value {
    let options = SerializeOptions::new()
        .use_proto_field_name(true)
        .skip_default_fields(false);
    msg.serialize_with_options(serde_json::value::Serializer, &options)
        .unwrap_or(Value::Null)
}

/// A plugin's methods and their request fields, for forms and for anyone
/// writing a client: enough to build any request without the descriptor.
pub fn schema(info: &PluginInfo) -> Value {
    let methods: Vec<Value> = info
        .methods
        .iter()
        .map(|m| {
            json!({
                "name": m.name,
                "query": m.is_query,
                "input": m.input.full_name(),
                "output": m.output.full_name(),
                "fields": fields(&m.input, 0),
            })
        })
        .collect();
    json!({
        "plugin": info.name,
        "version": info.version,
        "service": info.service.full_name(),
        "op_type": info.op_type.full_name(),
        "methods": methods,
    })
}

/// Fields of a message; nested messages are described a few levels down
/// (a recursive type would otherwise never end).
fn fields(msg: &MessageDescriptor, depth: usize) -> Vec<Value> {
    msg.fields().map(|f| field(&f, depth)).collect()
}

fn field(f: &FieldDescriptor, depth: usize) -> Value {
    let (kind, extra) = match f.kind() {
        Kind::Message(m) if f.is_map() => ("map", json!({ "message": m.full_name() })),
        Kind::Message(m) if depth < 3 => (
            "message",
            json!({ "message": m.full_name(), "fields": fields(&m, depth + 1) }),
        ),
        Kind::Message(m) => ("message", json!({ "message": m.full_name() })),
        Kind::Enum(e) => (
            "enum",
            json!({ "values": e.values().map(|v| v.name().to_string()).collect::<Vec<_>>() }),
        ),
        Kind::String => ("string", Value::Null),
        Kind::Bytes => ("bytes", Value::Null),
        Kind::Bool => ("bool", Value::Null),
        Kind::Double | Kind::Float => ("float", Value::Null),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => ("int64", Value::Null),
        Kind::Uint64 | Kind::Fixed64 => ("uint64", Value::Null),
        Kind::Uint32 | Kind::Fixed32 => ("uint32", Value::Null),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => ("int32", Value::Null),
    };
    let mut v = json!({
        "name": f.name(),
        "json_name": f.json_name(),
        "kind": kind,
        "repeated": f.cardinality() == Cardinality::Repeated && !f.is_map(),
    });
    if let (Value::Object(o), Value::Object(e)) = (&mut v, extra) {
        o.extend(e);
    }
    v
}
