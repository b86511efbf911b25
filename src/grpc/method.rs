//! A gRPC method found in an upstream's descriptors, ready to call with JSON: the request
//! message built from a JSON object by the proto3 JSON mapping, the responses written back as
//! JSON. The descriptors are decoded and the method looked up once per configuration.

use prost::Message;
use prost_reflect::{
    DescriptorPool, DynamicMessage, MessageDescriptor, MethodDescriptor, SerializeOptions,
};

/// A method of a service, with its message types.
#[derive(Debug, Clone)]
pub struct Method {
    /// The call's path without the leading slash: `package.Service/Method`.
    pub path: String,
    pub input: MessageDescriptor,
    pub output: MessageDescriptor,
    /// The server answers with a stream of messages (answered as a JSON array).
    pub server_streaming: bool,
}

/// Decodes base64 `descriptors` (a `FileDescriptorSet`, as Gloo's YAML carries it).
pub fn pool(descriptors: &str) -> Result<DescriptorPool, String> {
    use base64::Engine;
    let text: String = descriptors.split_whitespace().collect();
    let raw = base64::engine::general_purpose::STANDARD
        .decode(text.as_bytes())
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(text.as_bytes()))
        .map_err(|e| format!("descriptors are not base64: {e}"))?;
    pool_of_bytes(&raw)
}

/// Decodes a binary `FileDescriptorSet`.
pub fn pool_of_bytes(raw: &[u8]) -> Result<DescriptorPool, String> {
    DescriptorPool::decode(raw).map_err(|e| format!("descriptors are not a FileDescriptorSet: {e}"))
}

impl Method {
    /// `package.service/function` in `pool`.
    pub fn find(
        pool: &DescriptorPool,
        package: &str,
        service: &str,
        function: &str,
    ) -> Result<Method, String> {
        let full = if package.is_empty() {
            service.to_string()
        } else {
            format!("{package}.{service}")
        };
        let svc = pool
            .get_service_by_name(&full)
            .ok_or_else(|| format!("the descriptors define no service `{full}`"))?;
        let m = svc
            .methods()
            .find(|m| m.name() == function)
            .ok_or_else(|| format!("service `{full}` has no method `{function}`"))?;
        Method::of(&m)
    }

    /// A method of a service in a pool.
    pub fn of(m: &MethodDescriptor) -> Result<Method, String> {
        let path = format!("{}/{}", m.parent_service().full_name(), m.name());
        if m.is_client_streaming() {
            return Err(format!(
                "`{path}` takes a stream of requests, which a JSON call cannot send"
            ));
        }
        Ok(Method {
            path,
            input: m.input(),
            output: m.output(),
            server_streaming: m.is_server_streaming(),
        })
    }

    /// The request message for a JSON object, encoded.
    pub fn request(&self, json: serde_json::Value) -> Result<Vec<u8>, String> {
        let msg = DynamicMessage::deserialize(self.input.clone(), json)
            .map_err(|e| format!("the body is not a `{}`: {e}", self.input.full_name()))?;
        Ok(msg.encode_to_vec())
    }

    /// The request message for a JSON object given as text, encoded: parsed straight into the
    /// message (no JSON tree in between; the common call, whose route adds no variables).
    pub fn request_from_text(&self, json: &[u8]) -> Result<Vec<u8>, String> {
        let mut de = serde_json::Deserializer::from_slice(json);
        let msg = DynamicMessage::deserialize(self.input.clone(), &mut de)
            .and_then(|m| de.end().map(|()| m))
            .map_err(|e| format!("the body is not a `{}`: {e}", self.input.full_name()))?;
        Ok(msg.encode_to_vec())
    }

    /// The answer's messages written as JSON text (what `response` gives, without building
    /// a JSON tree first).
    pub fn response_text(&self, messages: &[bytes::Bytes]) -> Result<Vec<u8>, String> {
        let decode = |m: &bytes::Bytes| {
            DynamicMessage::decode(self.output.clone(), m.as_ref())
                .map_err(|e| format!("an answer is not a `{}`: {e}", self.output.full_name()))
        };
        // `DynamicMessage`'s own `Serialize` is the canonical mapping (`SerializeOptions`'
        // defaults, as `response` uses).
        let written = if self.server_streaming {
            let msgs = messages.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
            serde_json::to_vec(&msgs)
        } else {
            let [one] = messages else {
                return Err(format!(
                    "a unary method answered with {} messages",
                    messages.len()
                ));
            };
            serde_json::to_vec(&decode(one)?)
        };
        written.map_err(|e| e.to_string())
    }

    /// The answer's messages as JSON: the message for a unary method, an array of them for a
    /// server stream.
    pub fn response(&self, messages: &[bytes::Bytes]) -> Result<serde_json::Value, String> {
        self.response_with(messages, &SerializeOptions::new())
    }

    /// The answer's messages as JSON written with `opts`.
    pub fn response_with(
        &self,
        messages: &[bytes::Bytes],
        opts: &SerializeOptions,
    ) -> Result<serde_json::Value, String> {
        let mut out = Vec::with_capacity(messages.len());
        for m in messages {
            let msg = DynamicMessage::decode(self.output.clone(), m.as_ref())
                .map_err(|e| format!("an answer is not a `{}`: {e}", self.output.full_name()))?;
            let v = msg
                .serialize_with_options(serde_json::value::Serializer, opts)
                .map_err(|e| e.to_string())?;
            out.push(v);
        }
        if self.server_streaming {
            Ok(serde_json::Value::Array(out))
        } else if out.len() == 1 {
            Ok(out.remove(0))
        } else {
            Err(format!(
                "a unary method answered with {} messages",
                out.len()
            ))
        }
    }
}
