//! A JSON body to start from when calling a gRPC function: every field of the request message
//! under its proto3 JSON name, with its zero value (what the tester prefills, as it does from
//! Swagger for a REST function).

use crate::api::{Destination, Upstream};
use crate::grpc::method::{Method, pool};
use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value};

/// The body for the gRPC method `dest` calls on `upstream`, or why there is none (no
/// descriptors, an unknown method).
pub fn for_destination(dest: &Destination, upstream: &Upstream) -> Result<Value, String> {
    let g = dest
        .destination_spec
        .as_ref()
        .and_then(|s| s.grpc.as_ref())
        .ok_or("not a gRPC destination")?;
    let descriptors = upstream
        .spec
        .service_spec()
        .and_then(|s| s.grpc.as_ref())
        .map(|s| s.descriptors.as_str())
        .filter(|d| !d.trim().is_empty())
        .ok_or_else(|| {
            format!(
                "upstream {} has no serviceSpec.grpc.descriptors",
                upstream.metadata.name
            )
        })?;
    let method = Method::find(&pool(descriptors)?, &g.package, &g.service, &g.function)?;
    Ok(template(&method.input))
}

/// `message` as proto3 JSON with every field at its zero value: nested messages are empty
/// objects, lists `[]`, maps `{}`, 64-bit integers `"0"` (proto3 JSON writes them as strings),
/// enums their first value's name; of a oneof, only its first field (setting two is an error).
pub fn template(message: &MessageDescriptor) -> Value {
    let mut out = Map::new();
    for f in message.fields() {
        if let Some(o) = f.containing_oneof()
            && !o.is_synthetic()
            && o.fields().next().is_some_and(|first| first.number() != f.number())
        {
            continue;
        }
        out.insert(f.json_name().to_string(), zero(&f));
    }
    Value::Object(out)
}

fn zero(f: &FieldDescriptor) -> Value {
    if f.is_map() {
        return Value::Object(Map::new());
    }
    if f.is_list() {
        return Value::Array(Vec::new());
    }
    match f.kind() {
        Kind::Bool => Value::Bool(false),
        Kind::String | Kind::Bytes => Value::String(String::new()),
        Kind::Int64
        | Kind::Sint64
        | Kind::Sfixed64
        | Kind::Uint64
        | Kind::Fixed64 => Value::String("0".into()),
        Kind::Double | Kind::Float => Value::from(0.0),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 | Kind::Uint32 | Kind::Fixed32 => {
            Value::from(0)
        }
        Kind::Enum(e) => Value::String(e.default_value().name().to_string()),
        Kind::Message(m) => well_known(&m).unwrap_or_else(|| Value::Object(Map::new())),
    }
}

/// The zero value of the well-known types whose JSON is not an object.
fn well_known(m: &MessageDescriptor) -> Option<Value> {
    Some(match m.full_name() {
        "google.protobuf.Timestamp" => Value::String("1970-01-01T00:00:00Z".into()),
        "google.protobuf.Duration" => Value::String("0s".into()),
        "google.protobuf.FieldMask" => Value::String(String::new()),
        "google.protobuf.Value" => Value::Null,
        "google.protobuf.ListValue" => Value::Array(Vec::new()),
        "google.protobuf.BoolValue" => Value::Bool(false),
        "google.protobuf.StringValue" | "google.protobuf.BytesValue" => {
            Value::String(String::new())
        }
        "google.protobuf.Int64Value" | "google.protobuf.UInt64Value" => Value::String("0".into()),
        "google.protobuf.Int32Value" | "google.protobuf.UInt32Value" => Value::from(0),
        "google.protobuf.DoubleValue" | "google.protobuf.FloatValue" => Value::from(0.0),
        _ => return None,
    })
}
