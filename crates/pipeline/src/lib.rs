//! ferry's pipeline steps: what a GitOps CI pipeline does between building an image and the
//! engine syncing it (clone → validate → bump the image tag → commit and push).
//!
//! Where to start:
//!
//! - [`validate::validate_paths`] checks manifests offline against the Kubernetes schemas
//!   bundled into ferry (`schemas/`, from `scripts/update-schemas.sh`), CRDs and ferry's
//!   Argo CD types, and reports each problem with its file, line and column.
//! - [`image_set::set_images`] updates every reference to an image (workload containers,
//!   Kustomization `images:`, Helm values) to a new tag or digest. It edits the bytes of the
//!   changed scalars only: comments, quoting, indentation, line endings and the other
//!   documents of a file stay as they were. [`image::ImageUpdate`] parses an `--image` value
//!   and documents how image names are compared (`nginx` == `docker.io/library/nginx`).
//! - [`git::clone_repo`] and [`git::commit_and_push`] run the real `git` with the same locked
//!   down environment as `ferry_source::git` and keep credentials out of argv, URLs, logs
//!   and errors. `commit_and_push` rebases and retries when another pipeline pushed first and
//!   never force-pushes.
//!
//! - [`preview::preview`] renders every Application under a folder at two revisions of a
//!   clone, as the engine renders them ([`apps`]), and says per app what would be created,
//!   changed and deleted (`ferry preview`).
//!
//! The YAML editing underneath (a tree with byte spans from the `granit-parser` event parser,
//! and splicing) is in the private `yaml` module.

pub mod apps;
pub mod git;
pub mod image;
pub mod image_set;
pub mod preview;
pub mod validate;
mod yaml;

/// Credentials for [`clone_repo`] and [`commit_and_push`] (from `ferry_source`, re-exported).
pub use ferry_source::git::{Credentials, SecretString};
/// The helm and kustomize runner (from `ferry_source`), for [`preview::preview`].
pub use ferry_source::render::RenderTools;
pub use git::{
    CloneOptions, Cloned, CommitPushOptions, CommitPushOutcome, Identity, PipelineGitError,
    clone_repo, commit_and_push,
};
pub use image::{ImageRef, ImageUpdate};
pub use image_set::{
    FileUpdate, ImageChange, ImageSetError, ImageSetOptions, ImageSetReport, set_images,
    set_images_in_source,
};
pub use validate::{
    BUNDLED_KUBERNETES_VERSIONS, Finding, ValidateError, ValidateOptions, ValidateReport,
    validate_paths,
};
