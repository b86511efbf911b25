//! The request tester's parts that need no terminal: what a function route means as a request
//! (here: the JSON body of a gRPC function). The console's tester (`tui::views::tester`) draws
//! and edits them.

pub mod grpc_body;
pub mod send;
pub mod target;
