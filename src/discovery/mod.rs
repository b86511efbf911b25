//! Discovery: functions from API documents (`openapi`), found by probing or given (`fds`).

pub mod fds;
pub mod functions;
pub mod ingress;
pub mod openapi;
pub mod uds;
