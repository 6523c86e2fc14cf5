//! Admission: the checks an app passes before anything is fetched. Its spec names one
//! destination and a source; its project exists, permits its repositories and its destination
//! (as the destination resolves: by server URL and by cluster name, so that neither field can
//! slip past a rule about the other). Each object it renders is checked against the project
//! again ([`Target::admit_object`]).

use ferry_cluster::ClusterClient;
use ferry_core::application::Application;
use ferry_core::project::AppProject;

use crate::desired::DesiredObject;
use crate::differ::Differ;
use crate::error::AppError;

/// Where an admitted app goes, and under which project's rules.
pub(crate) struct Target {
    /// The app's project.
    pub(crate) project: AppProject,
    /// Its name (`default` when the spec names none).
    pub(crate) project_name: String,
    /// The destination cluster's URL.
    pub(crate) server: String,
    /// The destination cluster's name, when it has one.
    pub(crate) cluster_name: Option<String>,
    /// The destination namespace (empty: none).
    pub(crate) namespace: String,
    /// A client for the destination cluster.
    pub(crate) cluster: ClusterClient,
}

impl Differ {
    /// Checks `app`'s spec and its project's rules; resolves its destination.
    pub(crate) async fn admit(&self, app: &Application) -> Result<Target, AppError> {
        let spec = &app.spec;
        let dest_ns = spec.destination.namespace.clone().unwrap_or_default();
        // One source at least, each with a URL; one destination field (core's spec rules, the
        // same `ferry validate` checks).
        let problems = ferry_core::application::spec_problems(spec);
        if !problems.is_empty() {
            let all: Vec<String> = problems.iter().map(ToString::to_string).collect();
            return Err(AppError::invalid_spec(all.join("; ")));
        }
        let sources = spec.effective_sources();
        let project_name = if spec.project.is_empty() {
            "default"
        } else {
            spec.project.as_str()
        };
        let project = self
            .project(project_name)
            .await
            .map_err(|e| AppError::unavailable(format!("reading AppProject {project_name}: {e}")))?
            .ok_or_else(|| {
                AppError::invalid_spec(format!("AppProject {project_name} does not exist in namespace {}: create it or use project default", self.cfg.namespace),
                )
            })?;
        for source in &sources {
            if !project.spec.permits_source(&source.repo_url) {
                return Err(AppError::invalid_spec(format!(
                    "repository {} is not permitted in project {project_name}: add it to the project's sourceRepos",
                    source.repo_url
                )));
            }
        }
        // The project is checked against the cluster the destination resolves to (its server
        // URL and its name), so that neither field can slip past a rule about the other.
        let resolved = self
            .destinations
            .resolve_destination(
                spec.destination.server.as_deref(),
                spec.destination.name.as_deref(),
            )
            .await
            .map_err(|e| AppError::invalid_spec(e.to_string()))?;
        let dest_server = Some(resolved.server.as_str());
        let dest_name = resolved.name.as_deref();
        if !project
            .spec
            .permits_destination(dest_server, dest_name, &dest_ns)
        {
            return Err(AppError::invalid_spec(format!(
                "destination {}{} namespace {dest_ns:?} is not permitted in project {project_name}: add it to the project's destinations",
                resolved.server,
                dest_name
                    .map(|n| format!(" (cluster {n})"))
                    .unwrap_or_default(),
            )));
        }
        let cluster = resolved.client;
        Ok(Target {
            project_name: project_name.to_string(),
            project,
            server: resolved.server.clone(),
            cluster_name: resolved.name.clone(),
            namespace: dest_ns,
            cluster,
        })
    }
}

impl Target {
    /// Checks one rendered object against the project: its kind, and its namespace.
    pub(crate) fn admit_object(&self, o: &DesiredObject) -> Result<(), AppError> {
        let project_name = &self.project_name;
        let namespaced = !o.key.namespace.is_empty();
        if !self
            .project
            .spec
            .permits_resource(&o.key.group, &o.key.kind, namespaced)
        {
            return Err(AppError::invalid_spec(format!(
                "{} ({}) is not permitted in project {project_name}: allow its kind in the project's resource whitelist",
                o.key, o.origin
            )));
        }
        if namespaced
            && !self.project.spec.permits_destination(
                Some(self.server.as_str()),
                self.cluster_name.as_deref(),
                &o.key.namespace,
            )
        {
            return Err(AppError::invalid_spec(format!(
                "{} ({}) is in namespace {}, which project {project_name} does not permit",
                o.key, o.origin, o.key.namespace
            )));
        }
        Ok(())
    }
}

/// The destination's server URL as exclusions match it (the cluster's name when given by name).
pub(crate) fn cluster_server(spec: &ferry_core::application::ApplicationSpec) -> String {
    spec.destination
        .server
        .clone()
        .or_else(|| spec.destination.name.clone())
        .unwrap_or_default()
}
