//! CLI names for methods and fields.
//!
//! Names are derived deterministically from the descriptor so that building the command,
//! looking a method up by name and parsing its matches all agree without sharing state.

use std::collections::HashSet;

use prost_reflect::{FieldDescriptor, MessageDescriptor, MethodDescriptor, ServiceDescriptor};

use super::DynError;

/// Kebab-case of a proto identifier: `SetFilter` -> `set-filter`, `after_hlc` -> `after-hlc`,
/// `afterHlc` -> `after-hlc`, `GetHTTPStatus` -> `get-http-status`.
///
/// Word breaks are at `_`, at a lower-case letter or digit followed by an upper-case letter,
/// and before the last capital of an acronym that is followed by a lower-case letter.
pub fn kebab_case(ident: &str) -> String {
    let chars: Vec<char> = ident.chars().collect();
    let mut out = String::with_capacity(ident.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c == '_' || c == '-' || c.is_whitespace() {
            if !out.is_empty() && !out.ends_with('-') {
                out.push('-');
            }
            continue;
        }
        if c.is_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_is_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            let boundary = prev.is_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_uppercase() && next_is_lower);
            if boundary && !out.is_empty() && !out.ends_with('-') {
                out.push('-');
            }
        }
        out.extend(c.to_lowercase());
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

/// Picks `base`, else `base-{suffix}`, else `base-{suffix}-2`, ... : the first one not taken.
///
/// Renaming instead of dropping keeps every method and field reachable even when a plugin's
/// names collide with each other or with the CLI's own.
fn unique(base: String, suffix: &str, taken: &mut HashSet<String>) -> String {
    let base = if base.is_empty() {
        suffix.to_owned()
    } else {
        base
    };
    let mut candidate = base.clone();
    let mut n = 1;
    while taken.contains(&candidate) {
        candidate = if n == 1 {
            format!("{base}-{suffix}")
        } else {
            format!("{base}-{suffix}-{n}")
        };
        n += 1;
    }
    taken.insert(candidate.clone());
    candidate
}

/// The subcommand name of every method of `service`, in declaration order.
///
/// `help` is reserved by clap for its help subcommand, so a method `Help` is `help-method`.
pub fn method_cli_names(service: &ServiceDescriptor) -> Vec<(String, MethodDescriptor)> {
    let mut taken: HashSet<String> = HashSet::from(["help".to_owned()]);
    service
        .methods()
        .map(|m| (unique(kebab_case(m.name()), "method", &mut taken), m))
        .collect()
}

/// The method whose subcommand name is `cli_name` (e.g. `set-filter`).
pub fn method_by_cli_name(service: &ServiceDescriptor, cli_name: &str) -> Option<MethodDescriptor> {
    method_cli_names(service)
        .into_iter()
        .find(|(name, _)| name == cli_name)
        .map(|(_, m)| m)
}

/// Like [`method_by_cli_name`], but an unknown name is a [`DynError::UnknownMethod`] that
/// lists the valid names: "unknown method `foo` for `chat`; valid: post, reply, ...".
///
/// `plugin` is only used in the message (the plugin or store name the user typed).
pub fn find_method(
    plugin: &str,
    service: &ServiceDescriptor,
    cli_name: &str,
) -> Result<MethodDescriptor, DynError> {
    let names = method_cli_names(service);
    if let Some((_, m)) = names.iter().find(|(name, _)| name == cli_name) {
        return Ok(m.clone());
    }
    Err(DynError::UnknownMethod {
        plugin: plugin.to_owned(),
        method: cli_name.to_owned(),
        valid: names.into_iter().map(|(name, _)| name).collect(),
    })
}

/// The flag name (without `--`) of every field of `message`, in declaration order.
///
/// `reserved` are flags the caller defines itself (its global flags); `help` is always
/// reserved. A field that would collide gets a `-field` suffix.
pub(crate) fn flag_names(
    message: &MessageDescriptor,
    reserved: &[&str],
) -> Vec<(String, FieldDescriptor)> {
    let mut taken: HashSet<String> = reserved.iter().map(|s| (*s).to_owned()).collect();
    taken.insert("help".to_owned());
    message
        .fields()
        .map(|f| (unique(kebab_case(f.name()), "field", &mut taken), f))
        .collect()
}

/// The clap argument id of a field.
///
/// Ids are the proto field name under a `req.` prefix: unique within a message, stable
/// whatever the flag was renamed to, and unable to clash with the ids of the caller's own
/// (global) arguments, which clap propagates into every subcommand.
pub(crate) fn arg_id(field: &FieldDescriptor) -> String {
    format!("req.{}", field.name())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kebab_case_examples() {
        assert_eq!(kebab_case("Messages"), "messages");
        assert_eq!(kebab_case("SetFilter"), "set-filter");
        assert_eq!(kebab_case("after_hlc"), "after-hlc");
        assert_eq!(kebab_case("afterHlc"), "after-hlc");
        assert_eq!(kebab_case("GetHTTPStatus"), "get-http-status");
        assert_eq!(kebab_case("HTTP"), "http");
        assert_eq!(kebab_case("v2Thing"), "v2-thing");
        assert_eq!(kebab_case("__weird__name_"), "weird-name");
        assert_eq!(kebab_case("ID"), "id");
    }

    #[test]
    fn unique_renames_instead_of_dropping() {
        let mut taken = HashSet::from(["help".to_owned()]);
        assert_eq!(unique("help".into(), "field", &mut taken), "help-field");
        assert_eq!(unique("help".into(), "field", &mut taken), "help-field-2");
        assert_eq!(unique("text".into(), "field", &mut taken), "text");
        assert_eq!(unique("text".into(), "field", &mut taken), "text-field");
        assert_eq!(unique(String::new(), "field", &mut taken), "field");
    }
}
