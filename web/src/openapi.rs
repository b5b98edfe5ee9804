//! `GET /api/openapi.json`: an OpenAPI 3.1 description of this node's API,
//! generated from the stores' plugin descriptors, so a generic client (or
//! a person with Swagger UI) can call any plugin without reading its
//! `.proto`. One path per (store, method); request and reply messages as
//! JSON Schemas in protobuf JSON form.

use std::collections::BTreeMap;

use prost_reflect::{Cardinality, FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value, json};

use lattice_host::node::StoreHandle;

/// The description for `stores` (those the token reaches).
pub fn document(stores: &[StoreHandle]) -> Value {
    let mut schemas = BTreeMap::new();
    let mut paths = Map::new();
    for s in stores {
        let info = s.plugin.info();
        for m in &info.methods {
            let input = reference(&m.input, &mut schemas);
            let output = reference(&m.output, &mut schemas);
            let path = format!("/api/stores/{}/call/{}", s.name, m.name);
            let kind = if m.is_query { "query" } else { "command" };
            paths.insert(
                path,
                json!({ "post": {
                    "summary": format!("{} {} of store `{}` ({} plugin)", kind, m.name, s.name, info.name),
                    "operationId": format!("{}_{}", s.name, m.name),
                    "tags": [s.name],
                    "requestBody": { "required": false, "content": { "application/json": { "schema": input } } },
                    "responses": {
                        "200": { "description": "done", "content": { "application/json": { "schema": {
                            "type": "object",
                            "properties": {
                                "reply": output,
                                "entry": { "description": "the op's log entry (commands)" },
                                "op": { "description": "the op, decoded" },
                                "store": { "type": "object" },
                            },
                        }}}},
                        "default": { "$ref": "#/components/responses/Error" },
                    },
                }}),
            );
        }
    }
    for (p, summary) in [
        ("/api/node", "this node"),
        ("/api/meshes", "meshes of this node"),
        ("/api/peers", "known peers and their last syncs"),
        ("/api/stores", "stores and plugins"),
        ("/api/events", "committed ops as Server-Sent Events"),
    ] {
        paths.insert(
            p.to_string(),
            json!({ "get": { "summary": summary, "responses": {
                "200": { "description": "ok" },
                "default": { "$ref": "#/components/responses/Error" },
            }}}),
        );
    }
    json!({
        "openapi": "3.1.0",
        "info": { "title": "Lattice node API", "version": env!("CARGO_PKG_VERSION"),
                  "description": "See docs/web.md. Every route needs a bearer token (`lattice token create`)." },
        "security": [{ "bearer": [] }],
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "responses": { "Error": { "description": "an error", "content": { "application/json": { "schema": {
                "type": "object", "required": ["error", "kind"],
                "properties": { "error": { "type": "string" }, "kind": { "type": "string" } },
            }}}}},
            "schemas": schemas,
        },
    })
}

fn reference(m: &MessageDescriptor, schemas: &mut BTreeMap<String, Value>) -> Value {
    let name = m.full_name().to_string();
    if !schemas.contains_key(&name) {
        // Placeholder first: a recursive message refers to itself.
        schemas.insert(name.clone(), Value::Null);
        let mut props = Map::new();
        for f in m.fields() {
            props.insert(f.name().to_string(), field(&f, schemas));
        }
        schemas.insert(
            name.clone(),
            json!({ "type": "object", "properties": props }),
        );
    }
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn field(f: &FieldDescriptor, schemas: &mut BTreeMap<String, Value>) -> Value {
    let one = match f.kind() {
        Kind::Message(m) if f.is_map() => {
            let value = m.map_entry_value_field();
            return json!({ "type": "object", "additionalProperties": scalar(&value, schemas) });
        }
        _ => scalar(f, schemas),
    };
    if f.cardinality() == Cardinality::Repeated {
        json!({ "type": "array", "items": one })
    } else {
        one
    }
}

fn scalar(f: &FieldDescriptor, schemas: &mut BTreeMap<String, Value>) -> Value {
    match f.kind() {
        Kind::Message(m) => reference(&m, schemas),
        Kind::Enum(e) => {
            json!({ "type": "string", "enum": e.values().map(|v| v.name().to_string()).collect::<Vec<_>>() })
        }
        Kind::String => json!({ "type": "string" }),
        Kind::Bytes => json!({ "type": "string", "contentEncoding": "base64" }),
        Kind::Bool => json!({ "type": "boolean" }),
        Kind::Double | Kind::Float => json!({ "type": "number" }),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 | Kind::Uint32 | Kind::Fixed32 => {
            json!({ "type": "integer" })
        }
        // Protobuf JSON writes 64-bit integers as strings (and reads both).
        _ => json!({ "type": ["string", "integer"], "format": "int64" }),
    }
}
