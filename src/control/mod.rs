//! The control plane: validated writes to the store (here) and, later, the loop that compiles
//! the store's state into the gateway's route table.

pub mod writes;
