//! Building the request message from matched flags.

use std::collections::HashMap;

use clap::ArgMatches;
use prost_reflect::{DynamicMessage, MethodDescriptor, Value};

use super::DynError;
use super::names::arg_id;

/// Builds `method`'s request message from the matches of its subcommand (the `ArgMatches`
/// of the method's subcommand, not of the top-level command).
///
/// The values were already parsed and type checked by the flags' value parsers while clap
/// matched the command line, so bad user input never reaches this function: it is rejected
/// by `Command::try_get_matches_from` with an error naming the flag and the expected type.
/// Fields whose flag was not given stay unset. Repeated flags become list elements in
/// command-line order; map entries are merged (a repeated key keeps its last value).
///
/// The errors are programming errors of the caller: [`DynError::ForeignMatches`] when the
/// matches are from another command (detected in debug builds, where clap checks argument
/// ids; release builds see no flags and return an empty request).
pub fn parse_request(
    method: &MethodDescriptor,
    matches: &ArgMatches,
) -> Result<DynamicMessage, DynError> {
    let input = method.input();
    let mut request = DynamicMessage::new(input.clone());
    for field in input.fields() {
        let id = arg_id(&field);
        let values: Vec<Value> = match matches.try_get_many::<Value>(&id) {
            Ok(Some(values)) => values.cloned().collect(),
            Ok(None) => continue,
            Err(_) => {
                return Err(DynError::ForeignMatches {
                    method: method.full_name().to_owned(),
                    field: field.name().to_owned(),
                });
            }
        };
        let value = if field.is_map() {
            let mut merged = HashMap::new();
            for value in values {
                if let Value::Map(entries) = value {
                    merged.extend(entries);
                }
            }
            Value::Map(merged)
        } else if field.is_list() {
            Value::List(values)
        } else {
            // A singular flag is `ArgAction::Set`, so clap refuses a second occurrence;
            // taking the last value is only a fallback.
            match values.into_iter().next_back() {
                Some(value) => value,
                None => continue,
            }
        };
        request
            .try_set_field(&field, value)
            .map_err(|_| DynError::FieldType {
                field: field.name().to_owned(),
            })?;
    }
    Ok(request)
}
