//! Reads a document's text (JSON or YAML) into the JSON tree the version readers walk,
//! keeping only the fields discovery reads.
//!
//! Why: a `serde_json::Value` costs about 15-19 times the text it comes from (a map entry is
//! ~110 bytes before its key and value), and most of an API document is what no function
//! needs: descriptions, responses, examples, extensions. Reading Microsoft Graph's 20 MB
//! document whole peaked at 383 MB. Outside the maps whose keys are names (`paths`,
//! `properties`, `definitions`, ...), only the fields in [`KEEP`] are built; the rest is
//! skipped while parsing, never allocated. A `$ref` into a skipped part (a response, an
//! example) resolves to nothing, which the readers already report as a warning.
//!
//! Also why: one rule for duplicate keys in JSON and YAML: the last one wins, with a warning.

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::cell::RefCell;
use std::fmt;

use super::template::push_once;

/// The fields discovery reads in an object that is not a map of names (a path item, an
/// operation, a parameter, a schema, `info`, a server, `components`).
const KEEP: [&str; 42] = [
    "openapi",
    "swagger",
    "swaggerVersion",
    "info",
    "title",
    "basePath",
    "servers",
    "url",
    "variables",
    "default",
    "enum",
    "consumes",
    "paths",
    "webhooks",
    "components",
    "definitions",
    "parameters",
    "schemas",
    "requestBodies",
    "pathItems",
    "name",
    "in",
    "required",
    "schema",
    "type",
    "properties",
    "allOf",
    "oneOf",
    "anyOf",
    "requestBody",
    "content",
    "operationId",
    "$ref",
    "get",
    "put",
    "post",
    "delete",
    "options",
    "head",
    "patch",
    "trace",
    // OpenAPI 3.1 schemas may keep the definitions their refs name here.
    "$defs",
];

/// Fields whose value, when an object, maps names (paths, property names, schema names,
/// media types) to objects: all its keys are kept.
const NAME_MAPS: [&str; 11] = [
    "paths",
    "properties",
    "definitions",
    "schemas",
    "parameters",
    "requestBodies",
    "pathItems",
    "content",
    "variables",
    "$defs",
    "webhooks",
];

/// What an object is, which says which of its keys are built.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// Keys are names: all kept (`x-` extensions of `paths` aside).
    Names,
    /// Only [`KEEP`] fields.
    Fields,
    /// The document's root (a field object).
    Root,
}

/// Warnings met while reading (duplicate keys).
pub(crate) struct Sink(RefCell<Vec<String>>);

impl Sink {
    pub(crate) fn new() -> Self {
        Sink(RefCell::new(Vec::new()))
    }
    pub(crate) fn into_warnings(self) -> Vec<String> {
        self.0.into_inner()
    }
}

/// Builds one value; `field` is the key it sits under (`""` for the root and array items).
#[derive(Clone, Copy)]
pub(crate) struct Node<'s> {
    sink: &'s Sink,
    field: &'s str,
    kind: Kind,
}

impl<'s> Node<'s> {
    pub(crate) fn root(sink: &'s Sink) -> Self {
        Node {
            sink,
            field: "",
            kind: Kind::Root,
        }
    }

    /// The seed for the value under `key` of an object of this node's kind.
    fn child<'k>(self, key: &'k str) -> Node<'k>
    where
        's: 'k,
    {
        let kind = if self.kind != Kind::Names && NAME_MAPS.contains(&key) {
            Kind::Names
        } else {
            Kind::Fields
        };
        Node {
            sink: self.sink,
            field: key,
            kind,
        }
    }

    fn keeps(self, key: &str) -> bool {
        match self.kind {
            Kind::Names => !(self.field == "paths" && key.starts_with("x-")),
            Kind::Fields | Kind::Root => KEEP.contains(&key),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON or YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let item = Node {
            field: "",
            kind: Kind::Fields,
            ..self
        };
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(v) = seq.next_element_seed(item)? {
            out.push(v);
        }
        out.shrink_to_fit();
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        // Entries first, then a map of exactly their number: a map grown by doubling holds up
        // to twice the room it needs.
        let mut entries: Vec<(String, Value)> = Vec::new();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            if !self.keeps(&key) {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let value = map.next_value_seed(self.child(&key))?;
            entries.push((key, value));
        }
        let mut out = Map::with_capacity(entries.len());
        for (key, value) in entries {
            if out.contains_key(&key) {
                let under = if self.field.is_empty() {
                    "the top level".to_string()
                } else {
                    format!("'{}'", self.field)
                };
                push_once(
                    &mut self.sink.0.borrow_mut(),
                    format!("duplicate key '{key}' in {under}; the last one is used"),
                );
            }
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

/// A key as text: YAML keys may be numbers (`200:`), booleans or null.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = String;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_any(KeySeed)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a mapping key")
    }
    fn visit_str<E>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_string<E>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
    fn visit_bool<E>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i64<E>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_unit<E>(self) -> Result<String, E> {
        Ok("null".to_string())
    }
    fn visit_none<E>(self) -> Result<String, E> {
        Ok("null".to_string())
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_any(KeySeed)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<String, A::Error> {
        Err(de::Error::custom("a sequence cannot be a mapping key"))
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<String, A::Error> {
        Err(de::Error::custom("a mapping cannot be a mapping key"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(text: &str) -> (Value, Vec<String>) {
        let sink = Sink::new();
        let mut de = serde_json::Deserializer::from_str(text);
        let v = Node::root(&sink).deserialize(&mut de).unwrap();
        (v, sink.into_warnings())
    }

    #[test]
    fn keeps_what_discovery_reads_and_names() {
        let (v, w) = read(
            r#"{"swagger": "2.0", "info": {"title": "t", "description": "long"},
            "paths": {"/a": {"get": {"operationId": "a", "description": "x",
              "responses": {"200": {"description": "ok"}}, "x-big": [1, 2]}}, "x-ext": 1},
            "definitions": {"description": {"properties": {"description": {"type": "string",
              "example": "e"}}}}}"#,
        );
        assert_eq!(
            v,
            json!({"swagger": "2.0", "info": {"title": "t"},
                "paths": {"/a": {"get": {"operationId": "a"}}},
                "definitions": {"description": {"properties": {"description": {"type": "string"}}}}})
        );
        assert!(w.is_empty(), "{w:?}");
    }

    #[test]
    fn duplicate_keys_last_wins_with_a_warning() {
        let (v, w) = read(r#"{"paths": {"/a": {"get": {"operationId": "one"}}, "/a": {}}}"#);
        assert_eq!(v, json!({"paths": {"/a": {}}}));
        assert_eq!(w, ["duplicate key '/a' in 'paths'; the last one is used"]);
    }
}
