//! Independent readers as oracles for discovery's OpenAPI reader: on every OpenAPI document the
//! project ships (tests/fixtures/openapi, the corpus under tests/fixtures/openapi-corpus, the
//! demo's petstore), `openapiv3` (OpenAPI 3.0) and `oas3` (OpenAPI 3.1) list the operations and
//! their `operationId`s, and epoxy's `read_document` must yield one function per operation,
//! named by that id (Gloo's `method + path` name where there is none).
//!
//! A typed oracle refuses a whole document at the first field its model dislikes (see
//! docs/architecture.md, "Why the OpenAPI readers walk `serde_json::Value`"): such a document is
//! reported as refused, with the oracle's reason, and is not counted as agreement. Swagger 2.0
//! has no oracle here (neither crate reads it).

#[path = "common/documents.rs"]
mod documents;
use documents::walk;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use epoxy::discovery::openapi::{ApiDocument, SpecVersion, read_document};
use serde_json::Value;

/// One operation as an oracle lists it.
#[derive(Debug)]
struct Op {
    method: String,
    path: String,
    id: Option<String>,
}

/// What an oracle made of one document.
enum Verdict {
    Read(Vec<Op>),
    Refused(String),
}

/// Every OpenAPI/Swagger document the project ships.
fn documents() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    walk(&root.join("tests/fixtures/openapi"), &mut files);
    walk(&root.join("tests/fixtures/openapi-corpus"), &mut files);
    files.push(root.join("src/demo/swagger.json"));
    files.sort();
    files
}

/// The document as a JSON tree for the oracles: JSON as it is, YAML through serde-saphyr
/// (the last of repeated keys wins, as serde_json does, so both spellings read the same).
fn tree(path: &Path, text: &str) -> Result<Value, String> {
    if path.extension().and_then(|e| e.to_str()) == Some("json") {
        return serde_json::from_str(text).map_err(|e| e.to_string());
    }
    let options = serde_saphyr::options! {
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::LastWins,
    };
    serde_saphyr::from_str_with_options(text, options).map_err(|e| e.to_string())
}

fn openapiv3_ops(tree: Value) -> Verdict {
    match serde_json::from_value::<openapiv3::OpenAPI>(tree) {
        Ok(api) => {
            let unresolved = api.paths.paths.values().filter(|i| i.as_item().is_none());
            if let Some(count) = Some(unresolved.count()).filter(|n| *n > 0) {
                return Verdict::Refused(format!(
                    "{count} path item(s) are $refs it does not follow"
                ));
            }
            Verdict::Read(
                api.operations()
                    .map(|(path, method, op)| Op {
                        method: method.to_ascii_uppercase(),
                        path: path.to_string(),
                        id: op.operation_id.clone(),
                    })
                    .collect(),
            )
        }
        Err(e) => Verdict::Refused(e.to_string()),
    }
}

fn oas3_ops(tree: Value) -> Verdict {
    match serde_json::from_value::<oas3::OpenApiV3Spec>(tree) {
        Ok(spec) => Verdict::Read(
            spec.operations()
                .map(|(path, method, op)| Op {
                    method: method.as_str().to_string(),
                    path,
                    id: op.operation_id.clone(),
                })
                .collect(),
        ),
        Err(e) => Verdict::Refused(e.to_string()),
    }
}

/// Gloo's name for an operation without an id: `lower(method) + path with '/' -> '.'`.
fn expected_name(op: &Op) -> String {
    match &op.id {
        Some(id) if !id.trim().is_empty() => id.clone(),
        _ => format!(
            "{}{}",
            op.method.to_ascii_lowercase(),
            op.path.replace('/', ".")
        ),
    }
}

/// Where epoxy and the oracle differ, if they do: one function per operation, each with the
/// operation's method and its id (a repeated id may carry epoxy's `_N` suffix).
fn disagreement(doc: &ApiDocument, ops: &[Op]) -> Option<String> {
    if doc.functions.len() != ops.len() {
        let ours: Vec<_> = doc
            .functions
            .iter()
            .map(|f| format!("{} {}", f.method, f.name))
            .collect();
        let theirs: Vec<_> = ops
            .iter()
            .map(|o| format!("{} {}", o.method, expected_name(o)))
            .collect();
        return Some(format!(
            "{} functions, the oracle has {} operations\n  epoxy: {ours:?}\n  oracle: {theirs:?}",
            doc.functions.len(),
            ops.len()
        ));
    }
    let mut repeats: HashMap<String, usize> = HashMap::new();
    for op in ops {
        *repeats.entry(expected_name(op)).or_default() += 1;
    }
    let mut unused: Vec<&epoxy::discovery::openapi::Function> = doc.functions.iter().collect();
    // Exact names first, so a renamed duplicate cannot take an exact match's place.
    let mut pending = Vec::new();
    for op in ops {
        let name = expected_name(op);
        match unused
            .iter()
            .position(|f| f.method == op.method && f.name == name)
        {
            Some(i) => {
                unused.swap_remove(i);
            }
            None => pending.push((op, name)),
        }
    }
    for (op, name) in pending {
        let renamed = |f: &&epoxy::discovery::openapi::Function| {
            f.method == op.method
                && repeats[&name] > 1
                && f.name
                    .strip_prefix(&format!("{name}_"))
                    .is_some_and(|n| n.parse::<usize>().is_ok())
        };
        match unused.iter().position(renamed) {
            Some(i) => {
                unused.swap_remove(i);
            }
            None => {
                return Some(format!(
                    "no function for {} {} (operationId {:?})",
                    op.method, op.path, op.id
                ));
            }
        }
    }
    None
}

#[test]
fn oracles_agree_on_operations_and_ids() {
    let files = documents();
    assert!(
        files.len() >= 130,
        "fixtures missing: {} documents",
        files.len()
    );
    let (mut agreed, mut operations) = (HashMap::<&str, usize>::new(), 0usize);
    let (mut refused, mut no_oracle, mut failures) = (Vec::new(), Vec::new(), Vec::new());
    for path in &files {
        let shown = path
            .strip_prefix(env!("CARGO_MANIFEST_DIR"))
            .unwrap_or(path)
            .display()
            .to_string();
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{shown}: {e}"));
        let doc = match read_document(&text) {
            Ok(doc) => doc,
            Err(e) => {
                failures.push(format!("{shown}: epoxy refused it: {e}"));
                continue;
            }
        };
        let (oracle, verdict) = match doc.version {
            SpecVersion::Swagger2 => {
                no_oracle.push(shown);
                continue;
            }
            SpecVersion::OpenApi30 => ("openapiv3", tree(path, &text).map(openapiv3_ops)),
            SpecVersion::OpenApi31 => ("oas3", tree(path, &text).map(oas3_ops)),
        };
        match verdict {
            Err(e) => failures.push(format!("{shown}: the oracle's input did not parse: {e}")),
            Ok(Verdict::Refused(why)) => {
                // The point of the tree reader: a document a typed model refuses whole still
                // yields its functions.
                if doc.functions.is_empty() {
                    failures.push(format!(
                        "{shown}: {oracle} refuses it and epoxy reads nothing"
                    ));
                }
                refused.push(format!(
                    "{shown}: {oracle} refuses it ({why}); epoxy reads {} function(s)",
                    doc.functions.len()
                ));
            }
            Ok(Verdict::Read(ops)) => match disagreement(&doc, &ops) {
                Some(d) => failures.push(format!("{shown} ({oracle}): {d}")),
                None => {
                    *agreed.entry(oracle).or_default() += 1;
                    operations += ops.len();
                }
            },
        }
    }
    eprintln!(
        "{} documents: openapiv3 agrees on {}, oas3 on {} ({operations} operations); \
         {} refused by a typed oracle (not counted as agreement); {} Swagger 2.0 without an oracle",
        files.len(),
        agreed.get("openapiv3").copied().unwrap_or(0),
        agreed.get("oas3").copied().unwrap_or(0),
        refused.len(),
        no_oracle.len()
    );
    for r in &refused {
        eprintln!("  refused: {r}");
    }
    for s in &no_oracle {
        eprintln!("  no oracle (Swagger 2.0): {s}");
    }
    assert!(failures.is_empty(), "{failures:#?}");
    // Each oracle has to have actually checked documents for the agreement to mean anything.
    assert!(
        agreed.get("openapiv3").copied().unwrap_or(0) > 0,
        "openapiv3 checked nothing"
    );
    assert!(
        agreed.get("oas3").copied().unwrap_or(0) > 0,
        "oas3 checked nothing"
    );
}
