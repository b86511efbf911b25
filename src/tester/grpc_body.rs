//! A JSON body to start from when calling a gRPC function: every field of the request message
//! under its proto3 JSON name, with its zero value (what the tester prefills, as it does from
//! Swagger for a REST function).

use crate::api::Destination;
use crate::api::resource::Upstream;
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
            && o.fields()
                .next()
                .is_some_and(|first| first.number() != f.number())
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
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 | Kind::Uint64 | Kind::Fixed64 => {
            Value::String("0".into())
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use prost_types::field_descriptor_proto::{Label, Type};
    use prost_types::{
        DescriptorProto, EnumDescriptorProto, EnumValueDescriptorProto, FieldDescriptorProto,
        FileDescriptorProto, FileDescriptorSet, OneofDescriptorProto,
    };

    fn field(name: &str, number: i32, ty: Type, type_name: Option<&str>) -> FieldDescriptorProto {
        FieldDescriptorProto {
            name: Some(name.into()),
            number: Some(number),
            label: Some(Label::Optional as i32),
            r#type: Some(ty as i32),
            type_name: type_name.map(str::to_string),
            ..Default::default()
        }
    }

    /// A pet shop's `Pet`: scalars, a 64-bit id, an enum, a nested message, a list, a map and a
    /// oneof, with snake_case names.
    fn pool_b64() -> String {
        let mut tags = field("tags", 3, Type::String, None);
        tags.label = Some(Label::Repeated as i32);
        let mut labels = field("labels", 8, Type::Message, Some(".t.v1.Pet.LabelsEntry"));
        labels.label = Some(Label::Repeated as i32);
        let (mut by_phone, mut by_mail) = (
            field("by_phone", 9, Type::String, None),
            field("by_mail", 10, Type::String, None),
        );
        by_phone.oneof_index = Some(0);
        by_mail.oneof_index = Some(0);
        let pet = DescriptorProto {
            name: Some("Pet".into()),
            field: vec![
                field("id", 1, Type::Int64, None),
                field("name", 2, Type::String, None),
                tags,
                field("kind", 4, Type::Enum, Some(".t.v1.Kind")),
                field("owner_name", 5, Type::String, None),
                field("home", 6, Type::Message, Some(".t.v1.Address")),
                field("weight", 7, Type::Double, None),
                labels,
                by_phone,
                by_mail,
                field("age", 11, Type::Int32, None),
                field("vaccinated", 12, Type::Bool, None),
            ],
            nested_type: vec![DescriptorProto {
                name: Some("LabelsEntry".into()),
                field: vec![
                    field("key", 1, Type::String, None),
                    field("value", 2, Type::String, None),
                ],
                options: Some(prost_types::MessageOptions {
                    map_entry: Some(true),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            oneof_decl: vec![OneofDescriptorProto {
                name: Some("contact".into()),
                ..Default::default()
            }],
            ..Default::default()
        };
        let address = DescriptorProto {
            name: Some("Address".into()),
            field: vec![field("street", 1, Type::String, None)],
            ..Default::default()
        };
        let kind = EnumDescriptorProto {
            name: Some("Kind".into()),
            value: ["KIND_UNSPECIFIED", "DOG"]
                .iter()
                .enumerate()
                .map(|(i, n)| EnumValueDescriptorProto {
                    name: Some(n.to_string()),
                    number: Some(i as i32),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let file = FileDescriptorProto {
            name: Some("t.proto".into()),
            package: Some("t.v1".into()),
            syntax: Some("proto3".into()),
            message_type: vec![pet, address],
            enum_type: vec![kind],
            service: vec![prost_types::ServiceDescriptorProto {
                name: Some("Pets".into()),
                method: vec![prost_types::MethodDescriptorProto {
                    name: Some("CreatePet".into()),
                    input_type: Some(".t.v1.Pet".into()),
                    output_type: Some(".t.v1.Pet".into()),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .encode(FileDescriptorSet { file: vec![file] }.encode_to_vec())
    }

    #[test]
    fn the_body_has_every_field_at_its_zero_value_under_its_json_name() {
        let method =
            Method::find(&pool(&pool_b64()).unwrap(), "t.v1", "Pets", "CreatePet").unwrap();
        let body = template(&method.input);
        assert_eq!(
            body,
            serde_json::json!({
                "id": "0", "name": "", "tags": [], "kind": "KIND_UNSPECIFIED", "ownerName": "",
                "home": {}, "weight": 0.0, "labels": {}, "byPhone": "", "age": 0,
                "vaccinated": false
            })
        );
        // What is prefilled is a valid request: the gateway's own encoder takes it.
        assert!(method.request(body).is_ok());
    }

    #[test]
    fn a_destination_finds_its_method_or_says_why_not() {
        let up: Upstream = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "shop", "namespace": "gloo-system"},
            "spec": {"static": {"hosts": [{"addr": "127.0.0.1", "port": 1}],
                     "serviceSpec": {"grpc": {"descriptors": pool_b64()}}}}
        }))
        .unwrap();
        let dest = |f: &str| -> crate::api::Destination {
            serde_json::from_value(serde_json::json!({
                "upstream": {"name": "shop"},
                "destinationSpec": {"grpc": {"package": "t.v1", "service": "Pets", "function": f}}
            }))
            .unwrap()
        };
        let body = for_destination(&dest("CreatePet"), &up).unwrap();
        assert_eq!(body["ownerName"], "");
        let err = for_destination(&dest("Nope"), &up).unwrap_err();
        assert!(err.contains("no method `Nope`"), "{err}");
    }
}
