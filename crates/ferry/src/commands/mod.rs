//! One module per `ferry` subcommand: an `Args` struct and a `run` function.

pub(crate) mod account;
pub(crate) mod app;
pub(crate) mod appset;
pub(crate) mod controller;
pub(crate) mod git;
pub(crate) mod image;
pub(crate) mod install;
pub(crate) mod kube;
pub(crate) mod output;
pub(crate) mod preview;
pub(crate) mod rollout;
pub(crate) mod run;
pub(crate) mod secret;
pub(crate) mod server;
pub(crate) mod validate;
pub(crate) mod version;
