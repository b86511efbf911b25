//! The embedded default: a petstore, its upstream, and everything `epoxy demo` starts.

pub mod petstore;
