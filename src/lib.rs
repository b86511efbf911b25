//! epoxy: a function gateway with a terminal console, speaking Gloo's resources.
//!
//! The arrows point one way: `cli` → `control` → `gateway`, `store` → `api` (see
//! docs/architecture.md).

// The two system calls glibc offers nothing safe for (`malloc_trim`, `syncfs`) allow it where
// they are; nothing else may.
#![deny(unsafe_code)]

pub mod api;
pub mod aws;
pub mod cause;
pub mod cli;
pub mod control;
pub mod demo;
pub mod discovery;
pub mod gateway;
pub mod grpc;
pub mod kube;
pub mod memory;
pub mod net;
pub mod policy;
pub mod store;
pub mod tester;
pub mod tls;
pub mod tui;
