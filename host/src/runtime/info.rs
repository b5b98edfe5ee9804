//! A plugin's validated self-description: what `describe` returned, checked
//! against its own descriptor set, with each method classified as a query or
//! a command.

use prost_reflect::{DescriptorPool, MessageDescriptor, ServiceDescriptor};

use super::error::LoadError;

const MAX_NAME: usize = 128;
const MAX_DESCRIPTOR_SET: usize = 1 << 20;

/// What `describe` returned, before validation (version-independent).
pub(crate) struct RawInfo {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) descriptor_set: Vec<u8>,
    pub(crate) service: String,
    pub(crate) op_type: String,
    pub(crate) state_version: u32,
}

/// One method of the plugin's service.
#[derive(Debug, Clone)]
pub struct MethodInfo {
    /// The method's name as written in the .proto (`Put`, `Messages`).
    pub name: String,
    pub input: MessageDescriptor,
    pub output: MessageDescriptor,
    /// Marked `option idempotency_level = NO_SIDE_EFFECTS;`: served by
    /// `query` on read-only state; otherwise a command served by `prepare`.
    pub is_query: bool,
}

/// A validated description of a plugin.
#[derive(Debug, Clone)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    /// Schema version of the plugin's state (for future migrations).
    pub state_version: u32,
    /// The `lattice:plugin` WIT version the plugin was built against.
    pub api_version: &'static str,
    /// blake3 of the wasm blob: the plugin's content address.
    pub hash: [u8; 32],
    /// Size of the wasm blob in bytes.
    pub size: usize,
    /// The serialized `FileDescriptorSet`, as the plugin returned it.
    pub descriptor_set: Vec<u8>,
    pub pool: DescriptorPool,
    pub service: ServiceDescriptor,
    /// The message every op payload decodes as.
    pub op_type: MessageDescriptor,
    pub methods: Vec<MethodInfo>,
}

impl PluginInfo {
    pub fn method(&self, name: &str) -> Option<&MethodInfo> {
        self.methods.iter().find(|m| m.name == name)
    }
}

/// Decodes a plugin's `FileDescriptorSet` (at load, and in the CLI that
/// builds commands from it), refusing what the decoder cannot take.
///
/// prost-reflect 0.16.5 panics (an index out of bounds while it labels the
/// error) on a file whose `syntax` is neither `proto2` nor `proto3`, so
/// that rule is checked first on the raw set: a hostile descriptor is a
/// typed refusal, not a crash. Found by the `cli_descriptor` fuzz target.
pub fn decode_descriptor_set(bytes: &[u8]) -> Result<DescriptorPool, String> {
    use prost::Message as _;
    let set = prost_types::FileDescriptorSet::decode(bytes).map_err(|e| e.to_string())?;
    for f in &set.file {
        if let Some(syntax) = f.syntax.as_deref()
            && !matches!(syntax, "proto2" | "proto3")
        {
            return Err(format!(
                "file `{}` has syntax `{syntax}`; only proto2 and proto3 are supported",
                f.name()
            ));
        }
    }
    DescriptorPool::decode(bytes).map_err(|e| e.to_string())
}

fn check_name(field: &'static str, value: &str) -> Result<(), LoadError> {
    if value.is_empty() || value.len() > MAX_NAME || value.chars().any(|c| c.is_control()) {
        return Err(LoadError::BadInfo {
            field,
            reason: format!("must be 1..={MAX_NAME} bytes without control characters"),
        });
    }
    Ok(())
}

pub(crate) fn validate_info(
    raw: RawInfo,
    api_version: &'static str,
    hash: [u8; 32],
    size: usize,
) -> Result<PluginInfo, LoadError> {
    check_name("name", &raw.name)?;
    check_name("version", &raw.version)?;
    if raw.descriptor_set.len() > MAX_DESCRIPTOR_SET {
        return Err(LoadError::BadInfo {
            field: "descriptor-set",
            reason: format!(
                "{} bytes, more than {MAX_DESCRIPTOR_SET}",
                raw.descriptor_set.len()
            ),
        });
    }
    let pool = decode_descriptor_set(&raw.descriptor_set).map_err(LoadError::BadDescriptor)?;
    let service = pool
        .get_service_by_name(&raw.service)
        .ok_or_else(|| LoadError::UnknownService(raw.service.clone()))?;
    let op_type = pool
        .get_message_by_name(&raw.op_type)
        .ok_or_else(|| LoadError::UnknownOpType(raw.op_type.clone()))?;
    let methods = service
        .methods()
        .map(|m| {
            let level = m
                .method_descriptor_proto()
                .options
                .as_ref()
                .map(|o| o.idempotency_level());
            MethodInfo {
                name: m.name().to_string(),
                input: m.input(),
                output: m.output(),
                is_query: level
                    == Some(prost_types::method_options::IdempotencyLevel::NoSideEffects),
            }
        })
        .collect();
    Ok(PluginInfo {
        name: raw.name,
        version: raw.version,
        state_version: raw.state_version,
        api_version,
        hash,
        size,
        descriptor_set: raw.descriptor_set,
        pool,
        service,
        op_type,
        methods,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    /// The `cli_descriptor` fuzz target's crash: a file with an unknown
    /// syntax made prost-reflect panic instead of returning its error.
    #[test]
    fn an_unknown_syntax_is_refused_not_a_panic() {
        let set = prost_types::FileDescriptorSet {
            file: vec![prost_types::FileDescriptorProto {
                name: Some("x.proto".into()),
                syntax: Some("editions".into()),
                ..Default::default()
            }],
        };
        let err = decode_descriptor_set(&set.encode_to_vec()).unwrap_err();
        assert!(err.contains("syntax `editions`"), "{err}");
        assert!(decode_descriptor_set(&[0xff, 0xff]).is_err());
    }
}
