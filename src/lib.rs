//! epoxy: a function gateway with a terminal console, speaking Gloo's resources.
//!
//! The arrows point one way: `cli` → `control` → `gateway`, `store` → `api` (see DESIGN.md §5).

pub mod api;
pub mod aws;
pub mod cli;
pub mod control;
pub mod demo;
pub mod discovery;
pub mod gateway;
pub mod grpc;
pub mod kube;
pub mod memory;
pub mod net;
pub mod store;
pub mod tls;
pub mod tui;
