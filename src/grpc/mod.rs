//! gRPC functions: a small HTTP/2 client with gRPC framing (`wire`), the reflection client
//! that discovers a server's services (`reflection`), and methods compiled from descriptors
//! that turn JSON into request messages and response messages into JSON (`method`), and the
//! gRPC-JSON transcoder that maps HTTP requests onto methods by their `google.api.http` rules
//! (`transcode`).
//!
//! epoxy speaks gRPC itself rather than through a generated client: the gateway calls methods
//! it learns at run time, so messages are dynamic (`prost-reflect`), and only unary requests
//! (one request message, any number of responses) are needed.

pub mod method;
pub mod reflection;
pub mod status;
pub mod transcode;
pub mod wire;

use http::StatusCode;

/// Why a gRPC call did not give messages.
#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    /// The server cannot be reached (connect refused, timed out, the connection closed).
    #[error("{authority}: {reason}")]
    Unreachable { authority: String, reason: String },
    /// No answer within the deadline.
    #[error("no answer within {0:?}")]
    Timeout(std::time::Duration),
    /// The server answered with a gRPC status other than OK, with its rich status
    /// (`grpc-status-details-bin`) when it sent one.
    #[error("gRPC status {} ({}): {message}", code, code_name(*code))]
    Status {
        code: u32,
        message: String,
        details: Option<Box<status::Details>>,
    },
    /// The answer is not gRPC as the protocol frames it.
    #[error("not a gRPC answer: {0}")]
    Protocol(String),
}

/// gRPC's status code names, by number.
const CODE_NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// A status code's name (`NOT_FOUND`), `UNKNOWN` for numbers gRPC does not define.
pub fn code_name(code: u32) -> &'static str {
    CODE_NAMES.get(code as usize).copied().unwrap_or("UNKNOWN")
}

/// The HTTP status a gRPC status answers as (the mapping of Google's API guidelines and
/// grpc-gateway).
pub fn http_status(code: u32) -> StatusCode {
    match code {
        0 => StatusCode::OK,
        // Client closed request (nginx's 499).
        1 => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        3 | 9 | 11 => StatusCode::BAD_REQUEST,
        4 => StatusCode::GATEWAY_TIMEOUT,
        5 => StatusCode::NOT_FOUND,
        6 | 10 => StatusCode::CONFLICT,
        7 => StatusCode::FORBIDDEN,
        8 => StatusCode::TOO_MANY_REQUESTS,
        12 => StatusCode::NOT_IMPLEMENTED,
        14 => StatusCode::SERVICE_UNAVAILABLE,
        16 => StatusCode::UNAUTHORIZED,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_http() {
        for (code, name, http) in [
            (3, "INVALID_ARGUMENT", 400),
            (4, "DEADLINE_EXCEEDED", 504),
            (5, "NOT_FOUND", 404),
            (7, "PERMISSION_DENIED", 403),
            (14, "UNAVAILABLE", 503),
            (16, "UNAUTHENTICATED", 401),
            (12, "UNIMPLEMENTED", 501),
            (99, "UNKNOWN", 500),
        ] {
            assert_eq!(code_name(code), name);
            assert_eq!(http_status(code).as_u16(), http, "{name}");
        }
    }
}
