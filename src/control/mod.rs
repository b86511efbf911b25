//! The control plane: validated writes to the store, and the loop that compiles the store's
//! state into the gateway's route table.

pub mod reconcile;
pub mod routes;
pub mod writes;
