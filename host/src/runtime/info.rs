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
    let pool = DescriptorPool::decode(raw.descriptor_set.as_slice())
        .map_err(|e| LoadError::BadDescriptor(e.to_string()))?;
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
