//! `epoxy discover openapi FILE|URL`: the functions a document yields, and `epoxy discover
//! grpc HOST:PORT`: the services a gRPC server's reflection lists; neither touches the store.

use super::OutputFormat;
use super::output::Table;
use crate::api::codec;
use crate::discovery::openapi::{ApiDocument, read_document};
use anyhow::{Context, Result, anyhow, bail};
use clap::Subcommand;
use http_body_util::{BodyExt, Limited};
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
    /// Ask a gRPC server (HTTP/2, cleartext unless --tls) for its services by reflection and
    /// list them
    Grpc {
        /// The server's address, HOST:PORT (over TLS, its certificate must be valid for HOST)
        address: String,
        /// Speak TLS to the server, its certificate verified against --ca, else the usual
        /// public roots
        #[arg(long)]
        tls: bool,
        /// The CA certificate (PEM) the server's certificate is verified against; implies --tls
        #[arg(long, value_name = "FILE")]
        ca: Option<std::path::PathBuf>,
        /// How long each reflection call may take, in seconds
        #[arg(long, default_value_t = 5)]
        timeout: u64,
        #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Table)]
        output: OutputFormat,
    },
}

/// The `-o json` shape of reflection's answer: what discovery would write into the upstream
/// (`serviceSpec.grpc`), services first.
fn grpc_json(found: &crate::grpc::reflection::Discovered) -> Value {
    let spec = crate::discovery::functions::grpc_spec(found);
    json!({
        "grpcServices": spec.grpc_services,
        "files": found.descriptors.file.iter().map(|f| f.name().to_string()).collect::<Vec<_>>(),
        "descriptors": spec.descriptors,
    })
}

/// The TLS client of `--tls` / `--ca`: the gateway's upstream connector with `useTls` and
/// the CA as `rootCa` (never a certificate accepted unverified).
fn grpc_tls(ca: Option<&std::path::Path>) -> Result<crate::tls::client::UpstreamTls> {
    let ca = match ca {
        Some(p) => Some(std::fs::read(p).with_context(|| format!("--ca {}", p.display()))?),
        None => None,
    };
    let pems = crate::tls::material::Pems {
        ca,
        ..Default::default()
    };
    let mut warnings = Vec::new();
    crate::tls::client::build(None, &pems, true, &mut warnings).map_err(|e| anyhow!("--ca: {e}"))
}

async fn run_grpc(
    address: &str,
    tls: Option<crate::tls::client::UpstreamTls>,
    timeout: u64,
    output: OutputFormat,
) -> Result<()> {
    let timeout = std::time::Duration::from_secs(timeout);
    let found = match tls {
        Some(tls) => crate::discovery::functions::grpc_tls(address, tls, timeout).await,
        None => crate::discovery::functions::grpc(address, timeout)
            .await
            .map_err(|e| format!("{e} (in clear: a server that speaks TLS needs --tls)")),
    }
    .map_err(|e| anyhow!(e))?;
    match output {
        OutputFormat::Json => println!("{}", codec::to_json(&grpc_json(&found))),
        OutputFormat::Yaml => print!("{}", codec::to_yaml(&grpc_json(&found))),
        OutputFormat::Table => {
            let mut t = Table::new(&["SERVICE", "METHOD", "KIND"]);
            let pool =
                prost_reflect::DescriptorPool::from_file_descriptor_set(found.descriptors.clone())
                    .ok();
            for s in &found.services {
                let full = if s.package.is_empty() {
                    s.name.clone()
                } else {
                    format!("{}.{}", s.package, s.name)
                };
                for m in &s.methods {
                    let kind = pool
                        .as_ref()
                        .and_then(|p| p.get_service_by_name(&full))
                        .and_then(|svc| svc.methods().find(|x| x.name() == m))
                        .map(
                            |x| match (x.is_client_streaming(), x.is_server_streaming()) {
                                (false, false) => "unary",
                                (false, true) => "server streaming",
                                (true, false) => "client streaming",
                                (true, true) => "bidirectional",
                            },
                        )
                        .unwrap_or("");
                    t.row(vec![full.clone(), m.clone(), kind.to_string()]);
                }
            }
            print!("{}", t.render());
        }
    }
    Ok(())
}

async fn read_source(source: &str) -> Result<String> {
    if source.starts_with("http://") || source.starts_with("https://") {
        let client = crate::net::document_client(1).map_err(|e| anyhow!(e))?;
        let resp = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            client.get(source).send(),
        )
        .await
        .map_err(|_| anyhow!("{source}: no answer within 10s"))?
        .map_err(|e| anyhow!("{source}: {}", crate::cause::with_root_cause(&e)))?;
        if !resp.status().is_success() {
            bail!("{source}: {}", resp.status());
        }
        let body = Limited::new(reqwest::Body::from(resp), 64 * 1024 * 1024)
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
    let (source, output) = match c {
        DiscoverCommand::Openapi { source, output } => (source, output),
        DiscoverCommand::Grpc {
            address,
            tls,
            ca,
            timeout,
            output,
        } => {
            let tls = if tls || ca.is_some() {
                Some(grpc_tls(ca.as_deref())?)
            } else {
                None
            };
            return run_grpc(&address, tls, timeout, output).await;
        }
    };
    let text = read_source(&source).await?;
    let doc = read_document(&text).map_err(|e| anyhow!("{source}: {e}"))?;
    match output {
        OutputFormat::Json => println!("{}", codec::to_json(&document_json(&doc))),
        OutputFormat::Yaml => print!("{}", codec::to_yaml(&document_json(&doc))),
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
