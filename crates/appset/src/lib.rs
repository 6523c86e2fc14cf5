//! ferry's ApplicationSet controller. It reads Argo CD's `argoproj.io/v1alpha1 ApplicationSet`
//! unchanged, runs its generators, renders the template once per parameter set and creates,
//! updates or deletes the generated `Application`s, which the engine then syncs like any other.
//!
//! Unlike Argo CD it fails closed: a generator error changes nothing.

pub mod controller;
pub mod desired;
pub mod generators;
pub mod params;
pub mod plan;
pub mod rollout;
pub mod selector;
pub mod template;
pub mod types;
