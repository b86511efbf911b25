//! Behaviour of `read_document` / `transformation` on fixtures copied from the corpus
//! (tests/fixtures) and on small inline documents.

#[path = "common/documents.rs"]
mod documents;
use documents::walk;

use std::path::Path;

use epoxy::api::codec::SyntaxError;
use epoxy::discovery::openapi::{
    DocError, Function, ParamLocation, SpecVersion, read_document, transformation,
};
use serde_json::{Value, json};

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/openapi")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn function<'a>(doc: &'a epoxy::discovery::openapi::ApiDocument, name: &str) -> &'a Function {
    doc.function(name).unwrap_or_else(|| {
        let names: Vec<_> = doc.functions.iter().map(|f| &f.name).collect();
        panic!("no function {name}; have {names:?}")
    })
}

fn names(doc: &epoxy::discovery::openapi::ApiDocument) -> Vec<&str> {
    let mut n: Vec<&str> = doc.functions.iter().map(|f| f.name.as_str()).collect();
    n.sort_unstable();
    n
}

// --- petstore (Gloo's example) -----------------------------------------------------------------

#[test]
fn petstore_functions_match_gloo() {
    let doc = read_document(&fixture("petstore.json")).unwrap();
    assert_eq!(doc.version, SpecVersion::Swagger2);
    assert_eq!(doc.title.as_deref(), Some("Swagger Petstore"));
    assert_eq!(doc.base_path, "/api");
    assert_eq!(
        names(&doc),
        ["addPet", "deletePet", "findPetById", "findPets"]
    );
    assert!(doc.all_warnings().is_empty(), "{:?}", doc.all_warnings());

    let by_id = function(&doc, "findPetById");
    assert_eq!(by_id.method, "GET");
    assert_eq!(by_id.path_template, "/api/pets/{id}");
    assert_eq!(by_id.body, None);
    assert_eq!(
        transformation(by_id),
        json!({
            "body": {},
            "headers": {
                ":method": {"text": "GET"},
                ":path": {"text": "/api/pets/{{ default(id, \"\") }}"},
                "content-length": {"text": "0"},
                "content-type": {},
                "transfer-encoding": {}
            }
        })
    );

    let add = function(&doc, "addPet");
    assert_eq!(
        transformation(add),
        json!({
            "body": {"text": r#"{"id": {{ default(id, "") }},"name": "{{ default(name, "")}}","tag": "{{ default(tag, "")}}"}"#},
            "headers": {
                ":method": {"text": "POST"},
                ":path": {"text": "/api/pets"},
                "content-type": {"text": "application/json"}
            }
        })
    );
    // Keys come out in Gloo's (sorted) order, not just as an equal map.
    assert_eq!(
        serde_json::to_string(&transformation(add)).unwrap(),
        concat!(
            r#"{"body":{"text":"{\"id\": {{ default(id, \"\") }},\"name\": \"{{ default(name, \"\")}}\",\"tag\": \"{{ default(tag, \"\")}}\"}"},"#,
            r#""headers":{":method":{"text":"POST"},":path":{"text":"/api/pets"},"content-type":{"text":"application/json"}}}"#
        )
    );

    let find = function(&doc, "findPets");
    assert_eq!(
        find.path,
        r#"/api/pets?tags={{default(tags, "")}}&limit={{default(limit, "")}}"#
    );
    assert_eq!(find.parameters.len(), 2);
    assert!(
        find.parameters
            .iter()
            .all(|p| p.location == ParamLocation::Query && !p.required)
    );

    let delete = function(&doc, "deletePet");
    assert_eq!(
        transformation(delete),
        json!({"headers": {
            ":method": {"text": "DELETE"},
            ":path": {"text": "/api/pets/{{ default(id, \"\") }}"},
            "content-type": {"text": "application/json"}
        }})
    );
    assert!(delete.parameters[0].required);

    let all = doc.transformations();
    assert_eq!(all.as_object().map(|m| m.len()), Some(4));
    assert_eq!(all["findPetById"], transformation(by_id));
}

#[test]
fn petstore_yaml_equals_json() {
    let json_doc = read_document(&fixture("3.0_json_petstore-expanded.json")).unwrap();
    let yaml_doc = read_document(&fixture("3.0_yaml_petstore-expanded.yaml")).unwrap();
    assert_eq!(json_doc.functions, yaml_doc.functions);
}

// --- OpenAPI 3.0 -------------------------------------------------------------------------------

#[test]
fn openapi30_request_body_and_servers() {
    let doc = read_document(&fixture("3.0_json_petstore-expanded.json")).unwrap();
    assert_eq!(doc.version, SpecVersion::OpenApi30);
    assert_eq!(doc.base_path, "/api"); // servers[0].url = https://petstore.swagger.io/api
    // requestBody -> application/json -> $ref NewPet
    let add = function(&doc, "addPet");
    assert_eq!(
        add.body.as_deref(),
        Some(r#"{"name": "{{ default(name, "")}}","tag": "{{ default(tag, "")}}"}"#)
    );
    assert_eq!(
        add.headers.get("content-type").map(String::as_str),
        Some("application/json")
    );
    assert!(
        add.parameters
            .iter()
            .any(|p| p.location == ParamLocation::Body && p.required)
    );
    // operationId with spaces is kept, as Gloo does.
    assert_eq!(
        function(&doc, "find pet by id").path,
        r#"/api/pets/{{ default(id, "") }}"#
    );
}

#[test]
fn openapi30_refs_to_components() {
    let doc = read_document(
        r##"{"openapi": "3.0.3", "info": {"title": "t", "version": "1"},
        "servers": [{"url": "/v1/"}],
        "paths": {"/items/{itemId}": {
            "parameters": [{"$ref": "#/components/parameters/itemId"}],
            "put": {"operationId": "putItem",
                "parameters": [{"$ref": "#/components/parameters/trace"},
                               {"name": "dry", "in": "query", "schema": {"type": "boolean"}}],
                "requestBody": {"$ref": "#/components/requestBodies/Item"}}}},
        "components": {
            "parameters": {"itemId": {"name": "itemId", "in": "path", "required": true},
                           "trace": {"name": "trace", "in": "header"}},
            "requestBodies": {"Item": {"required": true, "content": {
                "application/json; charset=utf-8": {"schema": {"$ref": "#/components/schemas/Item"}}}}},
            "schemas": {"Item": {"allOf": [{"$ref": "#/components/schemas/Base"},
                {"type": "object", "properties": {"owner": {"$ref": "#/components/schemas/Owner"},
                                                  "size": {"type": "number", "default": 1.5}}}]},
                "Base": {"properties": {"label": {"type": ["string", "null"]}}},
                "Owner": {"type": "object", "properties": {"email": {"type": "string"}}}}}}"##,
    )
    .unwrap();
    assert_eq!(doc.base_path, "/v1");
    let f = function(&doc, "putItem");
    assert_eq!(f.path_template, "/v1/items/{itemId}");
    assert_eq!(
        f.path,
        r#"/v1/items/{{ default(itemId, "") }}?dry={{default(dry, "")}}"#
    );
    assert_eq!(
        f.headers.get("trace").map(String::as_str),
        Some(r#"{{default(trace, "")}}"#)
    );
    assert_eq!(
        f.body.as_deref(),
        Some(
            r#"{"label": "{{ default(label, "")}}","owner": {"email": "{{ default(owner.email, "")}}"},"size": {{ default(size, "1.5") }}}"#
        )
    );
    let locations: Vec<_> = f
        .parameters
        .iter()
        .map(|p| (p.name.as_str(), p.location))
        .collect();
    assert_eq!(
        locations,
        [
            ("itemId", ParamLocation::Path),
            ("trace", ParamLocation::Header),
            ("dry", ParamLocation::Query),
            ("body", ParamLocation::Body)
        ]
    );
    assert!(f.warnings.is_empty(), "{:?}", f.warnings);
}

#[test]
fn openapi30_server_variables() {
    let doc = read_document(&fixture("3.0_json_server-variables.json")).unwrap();
    // https://{name}.example.com:{port}/{basePath} with basePath default v2
    assert_eq!(doc.base_path, "/v2");
    assert_eq!(function(&doc, "post.global").path, "/v2/global");
    // An operation-level server's path wins, with a warning.
    let op = function(&doc, "post.operation");
    assert_eq!(op.path, "/anything/demo/operation");
    assert!(
        op.warnings.iter().any(|w| w.contains("its own server")),
        "{:?}",
        op.warnings
    );
}

#[test]
fn non_json_request_body_is_a_warning() {
    let doc = read_document(&fixture("3.0_json_file-uploads.json")).unwrap();
    let png = function(&doc, "post.anything.image-png");
    assert_eq!(png.body, None);
    assert!(
        png.warnings
            .iter()
            .any(|w| w.contains("[image/png] cannot be templated")),
        "{:?}",
        png.warnings
    );
    // Passed through with the caller's own content-type, not forced to JSON.
    assert_eq!(png.headers.get("content-type"), None);
    assert_eq!(transformation(png)["passthrough"], json!({}));
}

// --- OpenAPI 3.1 -------------------------------------------------------------------------------

#[test]
fn openapi31_documents() {
    let doc = read_document(&fixture("3.1_yaml_train-travel.yaml")).unwrap();
    assert_eq!(doc.version, SpecVersion::OpenApi31);
    assert_eq!(doc.title.as_deref(), Some("Train Travel API"));
    assert_eq!(doc.functions.len(), 7);
    let trips = function(&doc, "get-trips");
    assert!(
        trips
            .path
            .starts_with(r#"/trips?origin={{default(origin, "")}}&destination="#)
    );
    let booking = function(&doc, "create-booking");
    let body = booking.body.as_deref().unwrap_or_default();
    assert!(
        body.contains(r#""passenger_name": "{{ default(passenger_name, "")}}""#),
        "{body}"
    );
    assert!(
        body.contains(r#""has_dog": {{ default(has_dog, "") }}"#),
        "{body}"
    );
    assert!(
        doc.warnings.iter().any(|w| w.contains("webhook")),
        "{:?}",
        doc.warnings
    );

    let pet = read_document(&fixture("3.1_json_petstore.json")).unwrap();
    assert_eq!(pet.version, SpecVersion::OpenApi31);
    assert_eq!(pet.base_path, "/v2");
    assert_eq!(pet.functions.len(), 20);

    // A 3.1 document may have only webhooks: no functions, no error.
    let hooks = read_document(&fixture("3.1_json_webhooks.json")).unwrap();
    assert!(hooks.functions.is_empty());
    assert!(
        hooks.warnings.iter().any(|w| w.contains("no 'paths'")),
        "{:?}",
        hooks.warnings
    );
}

// --- cycles ------------------------------------------------------------------------------------

#[test]
fn circular_schemas_terminate() {
    let doc = read_document(&fixture("3.0_json_circular-request-bodies.json")).unwrap();
    let direct = function(&doc, "directCircular");
    let body = direct.body.as_deref().unwrap_or_default();
    assert!(
        body.contains(r#""parent": {{ default(parent, "") }}"#),
        "{body}"
    );
    assert!(
        direct.warnings.iter().any(|w| w.contains("schema cycle")),
        "{:?}",
        direct.warnings
    );
    let indirect = function(&doc, "indirectCircular");
    assert!(
        indirect
            .body
            .as_deref()
            .unwrap_or_default()
            .contains("employer.ceo"),
        "{:?}",
        indirect.body
    );

    for name in [
        "3.0_json_circular.json",
        "3.0_json_schema-circular.json",
        "2.0_json_schema-circular.json",
    ] {
        let doc = read_document(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!doc.functions.is_empty(), "{name}");
    }
}

#[test]
fn ref_cycles_and_remote_refs_are_warnings() {
    let doc = read_document(
        r##"{"swagger": "2.0", "basePath": "/", "paths": {
            "/a": {"post": {"operationId": "a", "parameters": [
                {"$ref": "#/parameters/loop"},
                {"$ref": "other.yaml#/parameters/x"},
                {"name": "b", "in": "body", "schema": {"$ref": "#/definitions/Self"}}]}},
            "/b": {"$ref": "#/paths/~1b"},
            "/c": {"get": {"operationId": "c", "parameters": [
                {"name": "q", "in": "query"}, {"name": "q", "in": "query", "required": true}]}}},
          "parameters": {"loop": {"$ref": "#/parameters/loop"}},
          "definitions": {"Self": {"type": "object", "properties": {
              "me": {"$ref": "#/definitions/Self"},
              "list": {"type": "array", "items": {"$ref": "#/definitions/Self"}},
              "deep": {"allOf": [{"$ref": "#/definitions/Self"}]}}}}}"##,
    )
    .unwrap();
    assert_eq!(doc.base_path, "");
    let a = function(&doc, "a");
    assert_eq!(a.path, "/a");
    let w = a.warnings.join("\n");
    assert!(w.contains("longer than 32 hops"), "{w}");
    assert!(w.contains("remote $ref 'other.yaml#/parameters/x'"), "{w}");
    assert!(w.contains("schema cycle"), "{w}");
    let body = a.body.as_deref().unwrap_or_default();
    assert!(body.contains(r#""me": {{ default(me, "") }}"#), "{body}");
    assert!(
        doc.warnings.iter().any(|w| w.contains("path '/b' skipped")),
        "{:?}",
        doc.warnings
    );
    // Same name and location twice: one parameter, the later one wins.
    let c = function(&doc, "c");
    assert_eq!(c.parameters.len(), 1);
    assert!(c.parameters[0].required);
}

#[test]
fn wide_schema_fan_out_is_bounded() {
    // Each level has 8 properties pointing at the next level: 8^10 fields if expanded as a tree.
    let mut defs = serde_json::Map::new();
    for level in 0..10 {
        let mut props = serde_json::Map::new();
        for i in 0..8 {
            props.insert(
                format!("p{i}"),
                json!({"$ref": format!("#/definitions/L{}", level + 1)}),
            );
        }
        defs.insert(
            format!("L{level}"),
            json!({"type": "object", "properties": props}),
        );
    }
    defs.insert(
        "L10".into(),
        json!({"type": "object", "properties": {"x": {"type": "string"}}}),
    );
    let doc = json!({"swagger": "2.0", "paths": {"/w": {"post": {"operationId": "w",
        "parameters": [{"name": "b", "in": "body", "schema": {"$ref": "#/definitions/L0"}}]}}},
        "definitions": defs});
    let doc = read_document(&doc.to_string()).unwrap();
    let w = function(&doc, "w");
    assert!(w.body.as_deref().unwrap_or_default().len() < 1_000_000);
    assert!(
        w.warnings
            .iter()
            .any(|w| w.contains("too deep or too large")),
        "{:?}",
        w.warnings
    );
}

// --- unmappable parameters ---------------------------------------------------------------------

#[test]
fn form_data_gives_warnings() {
    // OpenAPI 3: form body properties are listed as formData parameters, each a warning.
    let doc = read_document(&fixture("3.0_json_form-data.json")).unwrap();
    let f = function(&doc, "demoFormData");
    assert_eq!(
        f.warnings,
        [
            "parameter 'client_id' (formData) cannot be mapped; skipped",
            "parameter 'client_secret' (formData) cannot be mapped; skipped",
            "parameter 'scope' (formData) cannot be mapped; skipped",
        ]
    );
    assert_eq!(f.body, None);
    assert!(
        f.parameters
            .iter()
            .all(|p| p.location == ParamLocation::FormData)
    );
    assert!(
        f.parameters
            .iter()
            .find(|p| p.name == "client_id")
            .is_some_and(|p| p.required)
    );

    // Swagger 2: `in: formData`.
    let doc = read_document(
        r#"
swagger: "2.0"
info: {title: up, version: "1"}
consumes: [multipart/form-data]
paths:
  /upload/{id}:
    post:
      operationId: upload
      parameters:
        - {name: id, in: path, type: string}
        - {name: file, in: formData, type: file}
"#,
    )
    .unwrap();
    let up = function(&doc, "upload");
    assert_eq!(
        up.warnings,
        ["parameter 'file' (formData) cannot be mapped; skipped"]
    );
    assert_eq!(up.path, r#"/upload/{{ default(id, "") }}"#);
    assert!(
        doc.warnings
            .iter()
            .any(|w| w.contains("does not include application/json"))
    );
}

#[test]
fn cookie_parameters_give_warnings() {
    let doc = read_document(&fixture("3.0_json_parameters-cookies.json")).unwrap();
    // No operationId: Gloo's fallback name, lower(method) + path with '/' -> '.'.
    let f = function(&doc, "post.post");
    assert_eq!(
        f.warnings,
        [
            "parameter 'foo' (cookie) cannot be mapped; skipped",
            "parameter 'bar' (cookie) cannot be mapped; skipped"
        ]
    );
    assert_eq!(f.path, "/post");
    assert_eq!(f.parameters.len(), 2);
    assert!(
        f.parameters
            .iter()
            .all(|p| p.location == ParamLocation::Cookie)
    );
}

// --- naming ------------------------------------------------------------------------------------

#[test]
fn duplicate_operation_ids_are_made_unique() {
    let doc = read_document(
        r#"
openapi: 3.0.0
info: {title: dup, version: "1"}
paths:
  /a:
    get: {operationId: op}
    post: {operationId: op}
  /b:
    get: {operationId: op}
    put: {operationId: op_2}
  /pets/{id}:
    delete: {}
"#,
    )
    .unwrap();
    let n: Vec<&str> = doc.functions.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(n, ["op", "op_3", "op_4", "op_2", "delete.pets.{id}"]);
    assert!(
        doc.functions[1]
            .warnings
            .iter()
            .any(|w| w == "duplicate function name 'op' renamed to 'op_3'")
    );
    assert!(doc.functions[0].warnings.is_empty());
    assert_eq!(doc.functions[1].method, "POST");
}

// --- errors ------------------------------------------------------------------------------------

#[test]
fn garbage_and_non_api_documents_are_errors() {
    assert_eq!(read_document(""), Err(DocError::Empty));
    assert_eq!(read_document("  \n\t"), Err(DocError::Empty));

    let e = read_document("{\"swagger\": \"2.0\",\n  \"paths\": {,}}").unwrap_err();
    assert!(
        matches!(
            e,
            DocError::Parse(SyntaxError {
                format: "JSON",
                line: Some(2),
                ..
            })
        ),
        "{e:?}"
    );
    assert!(
        e.to_string().starts_with("invalid JSON at line 2, column"),
        "{e}"
    );

    let e = read_document("openapi: 3.0.0\npaths:\n  /a: [\n").unwrap_err();
    assert!(
        matches!(
            e,
            DocError::Parse(SyntaxError {
                format: "YAML",
                line: Some(_),
                ..
            })
        ),
        "{e:?}"
    );

    let e = read_document("\u{0}\u{1}garbage: [}{").unwrap_err();
    assert!(matches!(e, DocError::Parse(_)), "{e:?}");

    let e = read_document("hello world").unwrap_err();
    assert_eq!(
        e.to_string(),
        "not a Swagger 2.0 / OpenAPI 3.x document: the top level is a string, not a mapping"
    );

    // Valid YAML, not an API document (a Kubernetes manifest).
    let e =
        read_document("apiVersion: v1\nkind: Service\nmetadata: {name: petstore}\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "not a Swagger 2.0 / OpenAPI 3.x document: the top-level mapping has no 'swagger' or 'openapi' field"
    );
    assert!(matches!(
        read_document("- a\n- b\n"),
        Err(DocError::NotApiDocument { .. })
    ));

    let e = read_document(r#"{"swagger": "1.2", "paths": {}}"#).unwrap_err();
    assert_eq!(
        e.to_string(),
        "unsupported 'swagger' version '1.2' (supported: Swagger 2.0, OpenAPI 3.0, 3.1)"
    );
    assert!(matches!(
        read_document("openapi: 4.0.0\n"),
        Err(DocError::UnsupportedVersion {
            field: "openapi",
            ..
        })
    ));
    let e = read_document(r#"{"openapi": "3.0.0", "paths": []}"#).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid document at /paths: must be a mapping, found a sequence"
    );

    // YAML numbers as versions are accepted.
    assert_eq!(
        read_document("swagger: 2.0\npaths: {}\n").unwrap().version,
        SpecVersion::Swagger2
    );
}

#[test]
fn odd_shapes_never_panic() {
    let inputs = [
        r##"{"swagger": "2.0", "paths": {"/a": null, "/b": {"get": 5}, "/c": {"get": {"parameters": {}}}}}"##,
        r##"{"swagger": "2.0", "basePath": 7, "paths": {"/a": {"get": {"parameters": [1, {"in": "query"}, {"name": "x", "in": "nowhere"}]}}}}"##,
        r##"{"openapi": "3.1.0", "servers": "x", "paths": {"/{": {"post": {"requestBody": {"content": {"application/json": {}}}}}}}"##,
        r##"{"openapi": "3.0.0", "servers": [{"url": "http://h/{v}"}], "paths": {"/a}{b": {"get": {"requestBody": {"$ref": 3}}}}}"##,
        r##"{"openapi": "3.0.0", "servers": [{}], "paths": {"/a": {"post": {"requestBody": {"content": {"application/json": {"schema": {"oneOf": [{"$ref": "#/x"}]}}}}}}}}"##,
        r##"{"openapi": "3.0.0", "paths": {"/a": {"post": {"requestBody": {"content": {"application/json": {"schema": {"$ref": "#"}}}}}}}}"##,
        r##"{"openapi": "3.0.0", "paths": {"/a": {"get": {"parameters": [{"name": "Content-Type", "in": "header"}, {"name": "x", "in": "body", "schema": {}}]}}}}"##,
    ];
    for input in inputs {
        let doc = read_document(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        for f in &doc.functions {
            let _ = transformation(f);
        }
    }
}

#[test]
fn deep_nesting_is_bounded() {
    let deep_json = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(matches!(read_document(&deep_json), Err(DocError::Parse(_))));
    let deep_yaml = format!("a: {}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(read_document(&deep_yaml).is_err());
    let mut deep_block = String::from("openapi: 3.0.0\nx:\n");
    for i in 0..300 {
        deep_block.push_str(&" ".repeat(i + 1));
        deep_block.push_str("- \n");
    }
    assert!(matches!(
        read_document(&deep_block),
        Err(DocError::Parse(SyntaxError { format: "YAML", .. }))
    ));
    // A billion-laughs style alias bomb is refused by the YAML budget, not expanded.
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let prev = format!("*a{}", i - 1);
        bomb.push_str(&format!("a{i}: &a{i} [{}]\n", vec![prev; 10].join(", ")));
    }
    let e = read_document(&bomb).unwrap_err();
    assert!(
        e.to_string()
            .contains("document too large or nested too deeply"),
        "{e}"
    );
    // Just under the limits: must parse on a test thread's small stack, in debug builds.
    for depth in [30, epoxy::discovery::openapi::MAX_NESTING - 4] {
        let json_doc = format!(
            r#"{{"openapi": "3.0.0", "paths": {{}}, "x": {}{}}}"#,
            "{\"a\": ".repeat(depth),
            "}".repeat(depth)
        );
        assert!(read_document(&json_doc).is_ok(), "json depth {depth}");
        let mut yaml_doc = String::from("openapi: 3.0.0\npaths: {}\nx:\n");
        for i in 0..depth {
            yaml_doc.push_str(&" ".repeat(i + 1));
            yaml_doc.push_str("a:\n");
        }
        assert!(read_document(&yaml_doc).is_ok(), "yaml depth {depth}");
    }
    // Just over: a clear error, not a crash.
    let too_deep = format!(r#"{{"x": {}{}}}"#, "[".repeat(70), "]".repeat(70));
    let e = read_document(&too_deep).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid JSON at line 1, column 70: nested deeper than 64 levels"
    );
}

// --- corpus walk -------------------------------------------------------------------------------

/// Every document of the corpus (the oas-examples copy and the real-world excerpts in
/// tests/fixtures/openapi-corpus) yields functions or a clear error, never a panic.
#[test]
fn corpus_never_panics() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/openapi-corpus");
    let mut files = Vec::new();
    walk(&root, &mut files);
    assert!(
        files.len() >= 120,
        "the corpus copy is missing: {}",
        root.display()
    );
    // Our own fixtures take part too.
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/openapi"),
        &mut files,
    );
    files.sort();
    let mut errors = Vec::new();
    for path in &files {
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        match std::panic::catch_unwind(|| read_document(&text)) {
            Ok(Ok(doc)) => {
                for f in &doc.functions {
                    assert!(
                        !f.name.is_empty() && !f.path.is_empty(),
                        "{}",
                        path.display()
                    );
                    let t: Value = transformation(f);
                    assert!(t["headers"][":method"]["text"].is_string());
                }
            }
            Ok(Err(e)) => {
                assert!(!e.to_string().is_empty());
                errors.push(format!("{}: {e}", path.display()));
            }
            Err(_) => panic!("read_document panicked on {}", path.display()),
        }
    }
    eprintln!("{} documents, {} errors", files.len(), errors.len());
    for e in &errors {
        eprintln!("  {e}");
    }
    // The corpus documents are all valid; none should be refused.
    assert!(errors.is_empty(), "{errors:#?}");
}

/// Many parameters, bad entries and duplicate names stay fast (no quadratic work) and
/// warnings stay bounded.
#[test]
fn large_documents_stay_linear() {
    let params: Vec<Value> = (0..20_000)
        .map(|i| json!({"name": format!("p{i}"), "in": if i % 2 == 0 { "query" } else { "nowhere" }}))
        .collect();
    let mut paths = serde_json::Map::new();
    paths.insert(
        "/big".into(),
        json!({"get": {"operationId": "big", "parameters": params}}),
    );
    for i in 0..5_000 {
        paths.insert(format!("/d{i}"), json!({"get": {"operationId": "same"}}));
    }
    let doc = json!({"openapi": "3.0.0", "paths": paths}).to_string();
    let start = std::time::Instant::now();
    let doc = read_document(&doc).unwrap();
    assert!(
        start.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
    let big = function(&doc, "big");
    assert_eq!(big.parameters.len(), 10_000);
    assert!(big.warnings.len() <= 101);
    assert_eq!(
        big.warnings.last().map(String::as_str),
        Some("further warnings suppressed")
    );
    assert_eq!(doc.functions.len(), 5_001);
    assert_eq!(doc.functions[5_000].name, "same_5000");
}

// --- real-world conventions (tests/fixtures/openapi-corpus/real-world) ------------------------

fn real_world(name: &str) -> epoxy::discovery::openapi::ApiDocument {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/openapi-corpus/real-world")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    read_document(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Every template a function has, as text.
fn templates(f: &Function) -> Vec<String> {
    let t = transformation(f);
    let mut out: Vec<String> = t["headers"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|v| v["text"].as_str().map(str::to_string))
        .collect();
    out.extend(t["body"]["text"].as_str().map(str::to_string));
    out
}

#[test]
fn aws_fragment_is_fixed_query_not_path() {
    let doc = real_world("aws-sts.yaml");
    let f = function(&doc, "GET_AssumeRole");
    // `#Action=AssumeRole` is not path: Action is sent once, fixed, with the documented
    // Version (its only enum value) as the default.
    assert_eq!(
        f.path,
        "/?RoleArn={{default(RoleArn, \"\")}}&RoleSessionName={{default(RoleSessionName, \"\")}}\
         &Version={{default(Version, \"2011-06-15\")}}&Action=AssumeRole"
    );
    assert_eq!(f.headers["X-Amz-Date"], "{{default(X-Amz-Date, \"\")}}");
    let q = function(&doc, "GetPolicy");
    assert_eq!(
        q.path,
        "/2015-03-31/functions/{{ default(FunctionName, \"\") }}/policy?Qualifier={{default(Qualifier, \"\")}}"
    );
    assert!(doc.all_warnings().is_empty(), "{:?}", doc.all_warnings());
}

#[test]
fn query_in_the_path_key_joins_with_ampersand() {
    let doc = real_world("weather-alerts.yaml");
    let f = function(&doc, "alertsAt");
    assert_eq!(
        f.path,
        "/api/alerts?lat={{ default(lat, \"\") }}&lon={{ default(lon, \"\") }}&limit={{default(limit, \"\")}}"
    );
    assert_eq!(f.path.matches('?').count(), 1);
}

#[test]
fn every_body_property_name_renders() {
    let doc = real_world("msgraph-users.json");
    let f = function(&doc, "users.user.UpdateUser");
    let body = f.body.as_deref().unwrap();
    for want in [
        r#""@odata.type": "{{ default(var("@odata.type"), "")}}""#,
        r#""start-date": "{{ default(start-date, "")}}""#,
        r#""1st": {{ default(var("1st"), "") }}"#,
        r#""a/b": "{{ default(var("a/b"), "")}}""#,
        r#""$count": {{ default(var("$count"), "") }}"#,
        r#""with space": "{{ default(var("with space"), "")}}""#,
        r#""\u007b\u007bx}}": "{{ default(var("\u007b\u007bx\u007d\u007d"), "")}}""#,
        r#""passwordProfile": {"@odata.type": "{{ default(var("passwordProfile", "@odata.type"), "")}}""#,
    ] {
        assert!(body.contains(want), "{want}\nnot in\n{body}");
    }
    // Each template compiles in the gateway, as discovery writes it.
    for f in &doc.functions {
        let t: epoxy::api::Transformation = serde_json::from_value(transformation(f)).unwrap();
        epoxy::gateway::function::Templates::compile(&t)
            .unwrap_or_else(|e| panic!("{}: {e}", f.name));
    }
    assert!(
        templates(function(&doc, "users.user.GetUser"))
            .iter()
            .any(|t| t.contains("var(\"$select\")"))
    );
}

#[test]
fn swagger2_non_json_body_passes_through() {
    let doc = real_world("docker-build.json");
    for name in ["ImageBuild", "PutContainerArchive"] {
        let f = function(&doc, name);
        assert_eq!(f.body, None, "{name}");
        assert!(
            !f.headers.contains_key("content-type"),
            "{name}: {:?}",
            f.headers
        );
        let t = transformation(f);
        assert_eq!(t["passthrough"], json!({}), "{name}: {t}");
    }
    assert_eq!(
        function(&doc, "ImagePush").headers["X-Registry-Auth"],
        "{{default(X-Registry-Auth, \"\")}}"
    );
}

#[test]
fn duplicate_keys_one_rule_for_json_and_yaml() {
    for name in ["duplicates.yaml", "duplicates.json"] {
        let doc = real_world(name);
        assert_eq!(names(&doc), ["listPets"], "{name}");
        assert_eq!(
            doc.warnings,
            ["duplicate key 'get' in '/pets'; the last one is used"],
            "{name}"
        );
    }
}
