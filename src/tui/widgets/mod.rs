//! Small building blocks the views share.

pub mod diff;
pub mod input;
pub mod table;
