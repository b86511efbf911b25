//! The resource model: Gloo's kinds, parsing, validation and naming. No I/O here.

pub mod codec;
pub mod duration;
pub mod gateway;
pub mod naming;
pub mod parse;
pub mod resource;
pub mod schema;
pub mod secret;
pub mod shadow;
pub mod sort;
pub mod ssl;
pub mod status;
pub mod strict;
pub mod time;
pub mod types;
pub mod validate;

pub use parse::{ParseError, parse_one, parse_resources};
pub use resource::{Kind, Object, Resource, ResourceKey};
pub use secret::Secret;
pub use types::*;
pub use validate::{Problem, ResourceSet, Severity, validate};

/// The namespace epoxy writes to when none is given: Gloo's, so Gloo's resources apply as they are.
pub const DEFAULT_NAMESPACE: &str = "gloo-system";
