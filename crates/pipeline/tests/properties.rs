//! Property tests of the pipeline's parsers and its one editor: image references and
//! `NAME=REF` specs come from CI variables, manifests from any commit. Nothing may panic, a
//! reference reads back as written, and `image set` changes the image and nothing else.

use std::path::Path;

use ferry_pipeline::image_set::{ImageSetOptions, set_images_in_source};
use ferry_pipeline::{ImageRef, ImageUpdate};
use proptest::prelude::*;

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[-:/@=a-zA-Z0-9_.]{0,40}",
        Just(String::new())
    ]
}

/// A registry host, maybe with a port.
fn registry() -> impl Strategy<Value = Option<String>> {
    prop::option::of("[a-z]{1,8}(\\.[a-z]{2,4})?(:[1-9][0-9]{1,4})?")
}

/// `[registry/]path[/path]`.
fn image_name() -> impl Strategy<Value = String> {
    (
        registry(),
        prop::collection::vec("[a-z0-9]([a-z0-9._-]{0,10}[a-z0-9])?", 1..4),
    )
        .prop_map(|(registry, parts)| match registry {
            Some(r) => format!("{r}/{}", parts.join("/")),
            None => parts.join("/"),
        })
}

fn tag() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}"
}

fn digest() -> impl Strategy<Value = String> {
    "[a-f0-9]{64}".prop_map(|h| format!("sha256:{h}"))
}

proptest! {
    /// Any text parses as an image reference or is refused; never a panic.
    #[test]
    fn image_references_never_panic(text in any_text()) {
        if let Some(r) = ImageRef::parse(&text) {
            prop_assert_eq!(ImageRef::parse(&r.to_string()), Some(r));
        }
        let _ = ImageUpdate::parse(&text);
    }

    /// A reference made of a name, a tag and/or a digest reads back as itself.
    #[test]
    fn image_references_read_back(
        name in image_name(),
        tag in prop::option::of(tag()),
        digest in prop::option::of(digest()),
    ) {
        let r = ImageRef { name, tag, digest };
        prop_assert_eq!(ImageRef::parse(&r.to_string()), Some(r));
    }

    /// `image set` on a Deployment changes exactly the image's value: every other line (comments,
    /// other fields, other documents) stays byte for byte.
    #[test]
    fn image_set_changes_the_image_and_nothing_else(
        name in image_name(),
        old_tag in tag(),
        new_tag in tag(),
        comment in "[ -~]{0,40}",
        label in "[a-z]{1,10}",
        other in "[a-z0-9]{1,10}",
    ) {
        let before = format!(
            "# {comment}\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels:\n    app: {label}  # keep\nspec:\n  template:\n    spec:\n      containers:\n        - name: web\n          image: {name}:{old_tag}\n        - name: side\n          image: side.example/{other}:1\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  image: {name}:{old_tag}\n"
        );
        let options = ImageSetOptions {
            updates: vec![ImageUpdate::parse(&format!("{name}={name}:{new_tag}")).expect("an update")],
            values_path: None,
            dry_run: true,
        };
        let update = set_images_in_source(Path::new("deploy.yaml"), &before, &options)
            .expect("the file is updated");
        let expected = |new_value: &str| {
            before.replacen(
                &format!("image: {name}:{old_tag}\n        - name: side"),
                &format!("image: {new_value}\n        - name: side"),
                1,
            )
        };
        // A value that YAML 1.1 would read as something else (`0:0` is a base-60 number) is
        // written quoted, so it stays a string.
        let plain = expected(&format!("{name}:{new_tag}"));
        let quoted = expected(&format!("\"{name}:{new_tag}\""));
        prop_assert!(
            update.text == plain || (update.text == quoted && old_tag != new_tag),
            "unexpected text:\n{}", update.text
        );
        prop_assert_eq!(update.matched, vec![true]);
        prop_assert_eq!(update.changes.len(), usize::from(old_tag != new_tag));
    }
}
