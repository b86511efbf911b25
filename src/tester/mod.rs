//! The request tester's parts that need no terminal: what a route asks for and the request
//! built from it (`request.rs`), where it goes (`target.rs`: plain, or TLS by SNI with `--ca`),
//! sending it (`send.rs`), the match trace and the preview of which route answers
//! (`trace.rs`), curl export (`curl.rs`), the history and the saved requests (`history.rs`), the
//! JSON body of a gRPC function (`grpc_body.rs`). The console's tester (`tui::views::tester`)
//! draws and edits them.

pub mod curl;
pub mod grpc_body;
pub mod history;
pub mod request;
pub mod route_text;
pub mod send;
pub mod target;
pub mod trace;
