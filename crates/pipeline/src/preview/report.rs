//! Printing a [`Preview`]: plain text for a terminal, Markdown for a pull-request comment, JSON
//! for tools. Objects are shown as YAML; a change as a unified diff (`base` → `head`), a created
//! or deleted object as the whole object added or removed. Secret values go through the
//! caller's [`Mask`] first.

use std::fmt::Write as _;

use serde_json::{Value, json};
use similar::TextDiff;

use super::{Action, AppPreview, AppStatus, ObjectChange, Preview};

/// Masks a Secret's values in place; the second argument is the other side of the diff, so that
/// a changed value still shows as a change (the engine's `mask_secret`).
pub type Mask = fn(&mut Value, Option<&Value>);

fn to_yaml(value: Option<&Value>) -> String {
    value
        .map(|v| serde_saphyr::to_string(v).unwrap_or_default())
        .unwrap_or_default()
}

/// The unified diff of one object, Secret values masked.
fn object_diff(change: &ObjectChange, mask: Mask) -> String {
    let mut base = change.base.clone();
    let mut head = change.head.clone();
    if let Some(b) = base.as_mut() {
        mask(b, None);
    }
    if let Some(h) = head.as_mut() {
        mask(h, change.base.as_ref());
    }
    let (old, new) = (to_yaml(base.as_ref()), to_yaml(head.as_ref()));
    TextDiff::from_lines(&old, &new)
        .unified_diff()
        .context_radius(3)
        .header("base", "head")
        .to_string()
}

fn counts(app: &AppPreview) -> String {
    let n = |a: Action| app.objects.iter().filter(|o| o.action == a).count();
    format!(
        "{} to create, {} to change, {} to delete",
        n(Action::Create),
        n(Action::Change),
        n(Action::Delete)
    )
}

fn status_word(status: AppStatus) -> &'static str {
    match status {
        AppStatus::Added => "added",
        AppStatus::Removed => "removed",
        AppStatus::Changed => "changed",
        AppStatus::Unchanged => "unchanged",
        AppStatus::Error => "error",
    }
}

fn sign(action: Action) -> char {
    match action {
        Action::Create => '+',
        Action::Change => '~',
        Action::Delete => '-',
    }
}

fn summary(preview: &Preview) -> String {
    let n = |s: AppStatus| preview.apps.iter().filter(|a| a.status == s).count();
    format!(
        "{} app(s): {} changed, {} added, {} removed, {} unchanged, {} failed to render; {} render(s)",
        preview.apps.len(),
        n(AppStatus::Changed),
        n(AppStatus::Added),
        n(AppStatus::Removed),
        n(AppStatus::Unchanged),
        n(AppStatus::Error),
        preview.renders
    )
}

/// Plain text: one block per app that changes, then a summary line.
pub fn write_text(preview: &Preview, mask: Mask) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "preview of {} -> {}", preview.base, preview.head);
    for e in &preview.errors {
        let _ = writeln!(out, "error: {e}");
    }
    for app in preview
        .apps
        .iter()
        .filter(|a| a.status != AppStatus::Unchanged)
    {
        let _ = writeln!(out);
        let _ = write!(
            out,
            "app {} ({}): {}",
            app.name,
            app.origin,
            status_word(app.status)
        );
        if let Some(e) = &app.error {
            let _ = writeln!(out, "\n  error: {e}");
            continue;
        }
        let _ = writeln!(out, ", {}", counts(app));
        if let Some(e) = &app.base_error {
            let _ = writeln!(out, "  note: did not render at base: {e}");
        }
        for o in &app.objects {
            let _ = writeln!(out, "  {} {}", sign(o.action), o.key);
            for line in object_diff(o, mask).lines() {
                let _ = writeln!(out, "    {line}");
            }
        }
    }
    let _ = writeln!(out, "\n{}", summary(preview));
    out
}

/// Markdown for a pull-request comment: a table of the apps that change, then each one's
/// diff in a collapsed section.
pub fn write_markdown(preview: &Preview, mask: Mask) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### ferry preview: `{}` → `{}`\n",
        preview.base, preview.head
    );
    for e in &preview.errors {
        let _ = writeln!(out, "> **error:** {}\n", e.replace('\n', " "));
    }
    let changed: Vec<&AppPreview> = preview
        .apps
        .iter()
        .filter(|a| a.status != AppStatus::Unchanged)
        .collect();
    if changed.is_empty() {
        let _ = writeln!(out, "No app changes.\n");
    } else {
        let _ = writeln!(
            out,
            "| app | defined in | status | objects |\n| --- | --- | --- | --- |"
        );
        for app in &changed {
            let objects = match &app.error {
                Some(_) => "does not render".to_owned(),
                None => counts(app),
            };
            let _ = writeln!(
                out,
                "| `{}` | `{}` | {} | {} |",
                app.name,
                app.origin,
                status_word(app.status),
                objects
            );
        }
        let _ = writeln!(out);
    }
    for app in &changed {
        let _ = writeln!(
            out,
            "<details><summary><code>{}</code>: {}</summary>\n",
            app.name,
            status_word(app.status)
        );
        if let Some(e) = &app.error {
            let _ = writeln!(out, "```\n{e}\n```\n");
        }
        if let Some(e) = &app.base_error {
            let _ = writeln!(out, "Did not render at base: `{}`\n", e.replace('\n', " "));
        }
        for o in &app.objects {
            let _ = writeln!(
                out,
                "`{} {}`\n\n```diff\n{}```\n",
                sign(o.action),
                o.key,
                object_diff(o, mask)
            );
        }
        let _ = writeln!(out, "</details>\n");
    }
    let _ = writeln!(out, "{}", summary(preview));
    out
}

/// JSON: `{base, head, apps: [{name, origin, status, error, objects: [{key, action, diff}]}],
/// errors, renders}` (unchanged apps listed without objects).
pub fn write_json(preview: &Preview, mask: Mask) -> String {
    let apps: Vec<Value> = preview
        .apps
        .iter()
        .map(|a| {
            json!({
                "name": a.name,
                "origin": a.origin,
                "status": a.status,
                "error": a.error,
                "baseError": a.base_error,
                "objects": a.objects.iter().map(|o| json!({
                    "key": o.key,
                    "action": o.action,
                    "diff": object_diff(o, mask),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let doc = json!({
        "base": preview.base,
        "head": preview.head,
        "apps": apps,
        "errors": preview.errors,
        "renders": preview.renders,
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}
