//! One module per `ferry` subcommand: an `Args` struct and a `run` function.

pub(crate) mod version;
