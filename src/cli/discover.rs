//! `epoxy discover openapi FILE|URL`: the functions a document yields, without the store.

use super::OutputFormat;
use super::output::Table;
use crate::discovery::openapi::{ApiDocument, read_document};
use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use clap::Subcommand;
use http_body_util::{BodyExt, Empty, Limited};
use serde_json::{Value, json};

#[derive(Subcommand, Debug)]
pub enum DiscoverCommand {
    /// Read a Swagger 2.0 / OpenAPI 3.x document (file, `-`, or http(s) URL) and list its functions
    Openapi {
        /// A file, `-` for standard input, or a URL
        source: String,
        #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Table)]
        output: OutputFormat,
    },
}

async fn read_source(source: &str) -> Result<String> {
    if source.starts_with("http://") || source.starts_with("https://") {
        let client: crate::net::Client<Empty<Bytes>> = crate::net::client();
        let uri: http::Uri = source
            .parse()
            .with_context(|| format!("`{source}` is not a URL"))?;
        let resp = tokio::time::timeout(std::time::Duration::from_secs(10), client.get(uri))
            .await
            .map_err(|_| anyhow!("{source}: no answer within 10s"))?
            .map_err(|e| anyhow!("{source}: {e}"))?;
        if !resp.status().is_success() {
            bail!("{source}: {}", resp.status());
        }
        let body = Limited::new(resp.into_body(), 64 * 1024 * 1024)
            .collect()
            .await
            .map_err(|e| anyhow!("{source}: {e}"))?;
        return String::from_utf8(body.to_bytes().to_vec())
            .map_err(|_| anyhow!("{source}: not UTF-8 text"));
    }
    if source == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .context("reading standard input")?;
        return Ok(s);
    }
    std::fs::read_to_string(source).with_context(|| format!("reading {source}"))
}

/// The `-o json` shape: `{"functions": [{"name", "method", "path", ...}], "warnings": [...]}`.
pub fn document_json(doc: &ApiDocument) -> Value {
    json!({
        "title": doc.title,
        "basePath": doc.base_path,
        "functions": doc.functions.iter().map(|f| json!({
            "name": f.name,
            "method": f.method,
            "path": f.path_template,
            "pathTemplate": f.path,
            "parameters": f.parameters.iter().map(|p| json!({"name": p.name, "in": p.location.as_str(), "required": p.required})).collect::<Vec<_>>(),
            "headers": f.headers,
            "body": f.body,
            "warnings": f.warnings,
        })).collect::<Vec<_>>(),
        "warnings": doc.warnings,
    })
}

pub async fn run(c: DiscoverCommand) -> Result<()> {
    let DiscoverCommand::Openapi { source, output } = c;
    let text = read_source(&source).await?;
    let doc = read_document(&text).map_err(|e| anyhow!("{source}: {e}"))?;
    match output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&document_json(&doc))?),
        OutputFormat::Yaml => print!("{}", crate::api::parse::value_to_yaml(&document_json(&doc))),
        OutputFormat::Table => {
            let mut t = Table::new(&["FUNCTION", "METHOD", "PATH", "PARAMETERS", "WARNINGS"]);
            for f in &doc.functions {
                let params: Vec<String> = f
                    .parameters
                    .iter()
                    .map(|p| format!("{} ({})", p.name, p.location.as_str()))
                    .collect();
                t.row(vec![
                    f.name.clone(),
                    f.method.clone(),
                    f.path_template.clone(),
                    params.join(", "),
                    f.warnings.len().to_string(),
                ]);
            }
            print!("{}", t.render());
            for w in doc.all_warnings() {
                eprintln!("warning: {w}");
            }
        }
    }
    Ok(())
}
