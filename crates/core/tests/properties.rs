//! Property tests for what core parses from untrusted input: tracking annotations, sync-wave,
//! hook and sync-option annotations, Application and AppProject manifests. Anyone who can
//! commit to a repository or write an Application controls these strings, so none of them may
//! panic, and what ferry writes must read back as itself.
//!
//! `make test` runs the default number of cases (256 per property); `make fuzz` runs many more
//! (`PROPTEST_CASES`).

use ferry_core::application::Application;
use ferry_core::order::{SyncOptions, hook_delete_policies, hook_types, sync_wave};
use ferry_core::project::AppProject;
use ferry_core::tracking::{ResourceKey, TrackingId, tracking_id_of};
use proptest::prelude::*;
use serde_json::{Value, json};

/// A DNS-1123-ish name, as apps, kinds' objects and namespaces have.
fn name() -> impl Strategy<Value = String> {
    "[a-z0-9]([-a-z0-9.]{0,30}[a-z0-9])?"
}

/// Anything at all, including control characters, `:` and `/`.
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[-:/a-zA-Z0-9_. ]{0,40}",
        Just(String::new()),
        Just(":/:/".to_string()),
    ]
}

/// An object with `annotations` set to `value` under `key`.
fn annotated(key: &str, value: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "x", "annotations": {key: value}}})
}

/// Arbitrary JSON, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        any_text().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    any_text(),
                    Just("spec".to_string()),
                    Just("source".to_string()),
                    Just("destination".to_string()),
                    Just("syncPolicy".to_string()),
                    Just("repoURL".to_string()),
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    /// A tracking id that ferry writes parses back to the same id.
    #[test]
    fn tracking_ids_read_back_as_written(
        app in name(),
        group in prop_oneof![Just(String::new()), "[a-z]{1,10}(\\.[a-z]{1,10}){0,2}"],
        kind in "[A-Z][a-zA-Z]{0,20}",
        namespace in prop_oneof![Just(String::new()), name()],
        // Object names may hold `:` (ClusterRoles such as system:aggregate-to-view).
        object in "[a-z0-9]([-a-z0-9.:]{0,30}[a-z0-9])?",
    ) {
        let key = ResourceKey::new(&group, &kind, &namespace, &object);
        let id = TrackingId::new(app.clone(), &key);
        let parsed: TrackingId = id.to_string().parse().expect("a written id parses");
        prop_assert_eq!(&parsed, &id);
        prop_assert!(parsed.points_at(&app, &key));
        prop_assert_eq!(parsed.key(), key);
    }

    /// Any annotation value either parses or is refused with the value in the message.
    #[test]
    fn tracking_annotations_never_panic(value in any_text()) {
        match value.parse::<TrackingId>() {
            Ok(id) => {
                prop_assert!(!id.app.is_empty() && !id.kind.is_empty() && !id.name.is_empty());
                prop_assert!(!id.name.contains('/'));
            }
            Err(e) => {
                let quoted = format!("{value:?}");
                prop_assert!(e.to_string().contains(&quoted));
            }
        }
        let obj = annotated("argocd.argoproj.io/tracking-id", &value);
        let _ = tracking_id_of(&obj);
    }

    /// A sync wave is the annotation's integer, or an error naming the value: never a panic,
    /// never a silent 0 for garbage.
    #[test]
    fn sync_waves_are_integers_or_errors(value in any_text()) {
        let obj = annotated("argocd.argoproj.io/sync-wave", &value);
        match sync_wave(&obj) {
            Ok(wave) => prop_assert_eq!(Ok(wave), value.trim().parse::<i64>()),
            Err(e) => {
                prop_assert!(value.trim().parse::<i64>().is_err());
                // Quoted, so control characters in a commit cannot forge log lines.
                let quoted = format!("{value:?}");
                prop_assert!(e.to_string().contains(&quoted));
            }
        }
    }

    /// Integer waves read back, whatever their sign and the spaces around them.
    #[test]
    fn integer_waves_read_back(wave in any::<i64>(), pad in " {0,3}") {
        let obj = annotated("argocd.argoproj.io/sync-wave", &format!("{pad}{wave}{pad}"));
        prop_assert_eq!(sync_wave(&obj).expect("an integer wave"), wave);
    }

    /// Hook, delete-policy and sync-option annotations accept any text without panicking.
    #[test]
    fn hook_and_option_annotations_never_panic(value in any_text()) {
        let _ = hook_types(&annotated("argocd.argoproj.io/hook", &value));
        let _ = hook_types(&annotated("helm.sh/hook", &value));
        let _ = hook_delete_policies(&annotated("argocd.argoproj.io/hook-delete-policy", &value));
        let _ = hook_delete_policies(&annotated("helm.sh/hook-delete-policy", &value));
        let _ = SyncOptions::parse(value.split(','));
    }

    /// Arbitrary JSON never panics the Application and AppProject types: it deserializes or is
    /// refused.
    #[test]
    fn arbitrary_json_never_panics_the_spec_types(value in any_json()) {
        let _ = serde_json::from_value::<Application>(value.clone());
        let _ = serde_json::from_value::<AppProject>(value);
    }

    /// Arbitrary text read as a YAML Application never panics.
    #[test]
    fn arbitrary_yaml_never_panics(text in any_text()) {
        let _ = serde_saphyr::from_str::<Application>(&text);
        let with_header = format!("apiVersion: argoproj.io/v1alpha1\nkind: Application\n{text}");
        let _ = serde_saphyr::from_str::<Application>(&with_header);
    }

    /// A project's source and destination checks accept any text without panicking, and a
    /// project that allows everything allows it.
    #[test]
    fn project_checks_never_panic(url in any_text(), server in any_text(), ns in any_text()) {
        let project: AppProject = serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
            "metadata": {"name": "p"},
            "spec": {"sourceRepos": ["*"], "destinations": [{"server": "*", "namespace": "*"}]}
        }))
        .expect("a project");
        prop_assert!(project.spec.permits_source(&url));
        prop_assert!(project.spec.permits_destination(Some(&server), None, &ns));
    }
}
