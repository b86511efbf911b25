//! Printing resources: aligned tables, YAML documents, JSON (a List for several).

use super::OutputFormat;
use crate::api::Resource;
use crate::api::status::Status;
use serde_json::{Value, json};

/// A resource's value with its derived status attached, as `get -o yaml|json` shows it.
pub fn with_status(r: &Resource, status: &Status) -> Value {
    let mut v = match r {
        // Key material is never printed: a Secret shows its keys, not their values.
        Resource::Secret(s) => s.redacted_value(),
        _ => r.to_value(),
    };
    if let Value::Object(m) = &mut v {
        m.insert(
            "status".into(),
            serde_json::to_value(status).unwrap_or(Value::Null),
        );
    }
    v
}

/// Prints values as YAML (documents separated by `---`) or JSON (one object, or a List).
pub fn print_values(values: Vec<Value>, format: OutputFormat, single: bool) {
    match format {
        OutputFormat::Json => {
            let out = if single && values.len() == 1 {
                values.into_iter().next().unwrap_or(Value::Null)
            } else {
                json!({"apiVersion": "v1", "kind": "List", "items": values})
            };
            println!("{}", crate::api::codec::to_json(&out));
        }
        _ => print!("{}", crate::api::codec::to_yaml_stream(&values)),
    }
}

/// An aligned text table with a header row.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let n = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate().take(n) {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
        let mut out = String::new();
        for r in std::iter::once(&self.header).chain(self.rows.iter()) {
            let mut line = String::new();
            for (i, c) in r.iter().enumerate().take(n) {
                if i + 1 == n {
                    line.push_str(c);
                } else {
                    line.push_str(&format!("{:w$}  ", c, w = widths[i]));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}
