//! A failed call's rich status: the `google.rpc.Status` a server may put, encoded and base64,
//! in the `grpc-status-details-bin` trailer, written as protobuf's JSON the way Envoy's
//! transcoder writes it (`convertGrpcStatus`): `{"code", "message", "details"}`, each detail an
//! `Any` with its `@type` and fields when the type is in the method's descriptors, else its
//! bytes in base64 (`{"@type", "value"}`), so that no detail is lost for a type epoxy does not
//! know.

use base64::Engine;
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};
use serde_json::{Map, Value, json};

/// google/rpc/status.proto's `Status`.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<prost_types::Any>,
}

/// The decoded `grpc-status-details-bin` value: a `google.rpc.Status`.
#[derive(Debug, Clone, PartialEq)]
pub struct Details {
    pub code: i32,
    pub message: String,
    pub details: Vec<prost_types::Any>,
}

impl Details {
    /// Decodes the trailer's value: base64 (gRPC sends binary metadata unpadded; padded is
    /// taken too), then the message. `None` when it is neither (the status keeps its code and
    /// message; a broken detail does not hide the error).
    pub fn from_header(value: &[u8]) -> Option<Details> {
        let text: Vec<u8> = value
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        let raw = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(
                text.strip_suffix(b"==")
                    .or(text.strip_suffix(b"="))
                    .unwrap_or(&text),
            )
            .ok()?;
        let s = RpcStatus::decode(raw.as_slice()).ok()?;
        Some(Details {
            code: s.code,
            message: s.message,
            details: s.details,
        })
    }

    /// The details as protobuf's JSON of `Any`, their types looked up in `pool`, printed with
    /// `print` (a transcoder's `printOptions`).
    pub fn details_json(&self, pool: &DescriptorPool, print: &SerializeOptions) -> Vec<Value> {
        self.details
            .iter()
            .map(|a| any_json(a, pool, print))
            .collect()
    }

    /// The whole status as JSON (what Envoy answers with `convertGrpcStatus`).
    pub fn to_json(&self, pool: &DescriptorPool, print: &SerializeOptions) -> Value {
        let mut m = Map::new();
        m.insert("code".into(), json!(self.code));
        m.insert("message".into(), json!(self.message));
        if !self.details.is_empty() {
            m.insert(
                "details".into(),
                Value::Array(self.details_json(pool, print)),
            );
        }
        Value::Object(m)
    }
}

/// One `Any`: `@type` first, then the message's fields (or, for a type with a JSON form of
/// its own such as `Duration`, `value`); `value` in base64 when the type is unknown or its
/// bytes are not that type.
fn any_json(a: &prost_types::Any, pool: &DescriptorPool, print: &SerializeOptions) -> Value {
    let name = a.type_url.rsplit('/').next().unwrap_or(&a.type_url);
    let decoded = pool.get_message_by_name(name).and_then(|d| {
        let msg = DynamicMessage::decode(d, a.value.as_slice()).ok()?;
        msg.serialize_with_options(serde_json::value::Serializer, print)
            .ok()
    });
    let mut m = Map::new();
    m.insert("@type".into(), json!(a.type_url));
    match decoded {
        Some(Value::Object(fields)) => m.extend(fields),
        Some(other) => {
            m.insert("value".into(), other);
        }
        None => {
            m.insert(
                "value".into(),
                json!(base64::engine::general_purpose::STANDARD.encode(&a.value)),
            );
        }
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(details: Vec<prost_types::Any>, pad: bool) -> Vec<u8> {
        let raw = RpcStatus {
            code: 9,
            message: "no".into(),
            details,
        }
        .encode_to_vec();
        let engine = if pad {
            base64::engine::general_purpose::STANDARD
        } else {
            base64::engine::general_purpose::STANDARD_NO_PAD
        };
        engine.encode(raw).into_bytes()
    }

    #[test]
    fn details_decode_padded_or_not_and_unknown_types_stay_base64() {
        let any = prost_types::Any {
            type_url: "type.googleapis.com/x.v1.Unknown".into(),
            value: vec![8, 1],
        };
        // A well-known type the pool knows: Duration's own JSON form.
        let pool = DescriptorPool::global();
        let duration = prost_types::Any {
            type_url: "type.googleapis.com/google.protobuf.Duration".into(),
            value: prost_types::Duration {
                seconds: 3,
                nanos: 0,
            }
            .encode_to_vec(),
        };
        for pad in [true, false] {
            let d =
                Details::from_header(&encoded(vec![any.clone(), duration.clone()], pad)).unwrap();
            assert_eq!(
                d.to_json(&pool, &SerializeOptions::new()),
                json!({"code": 9, "message": "no", "details": [
                    {"@type": "type.googleapis.com/x.v1.Unknown", "value": "CAE="},
                    {"@type": "type.googleapis.com/google.protobuf.Duration", "value": "3s"},
                ]})
            );
        }
        assert_eq!(Details::from_header(b"not base64!"), None);
        assert_eq!(Details::from_header(b"AAEC"), None, "not a Status");
    }
}
