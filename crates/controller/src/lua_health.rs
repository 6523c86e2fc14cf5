//! Lua health checks from `argocd-cm` (`resource.customizations.health.<group>_<kind>`), run as
//! Argo CD runs them: the object is the global `obj`, and the script returns a table
//! `{status = "Healthy" | "Progressing" | "Degraded" | "Suspended" | "Missing" | "Unknown",
//! message = "..."}`.
//!
//! Each check runs in a fresh Lua state with only the `table`, `string` and `math` libraries and
//! the safe parts of the base library: no `io`, `os`, `package`/`require`, `load`, `loadstring`,
//! `dofile`, `loadfile` or `debug`. A script is stopped after [`INSTRUCTION_BUDGET`] Lua
//! instructions and may use at most [`MEMORY_LIMIT`] bytes.

use ferry_core::application::HealthStatusCode;
use ferry_core::health::Health;
use mlua::{HookTriggers, Lua, LuaOptions, LuaSerdeExt as _, StdLib, Value as LuaValue, VmState};
use serde_json::Value;

/// How many Lua instructions a health check may run.
pub(crate) const INSTRUCTION_BUDGET: u64 = 20_000_000;

/// How much memory a health check may use.
pub(crate) const MEMORY_LIMIT: usize = 32 * 1024 * 1024;

/// Instructions between two looks at the budget.
const HOOK_EVERY: u32 = 10_000;

/// Base-library functions a health check does not get.
const REMOVED_GLOBALS: [&str; 8] = [
    "load",
    "loadstring",
    "dofile",
    "loadfile",
    "require",
    "collectgarbage",
    "print",
    "module",
];

/// Runs `script` on `obj`. The error says what went wrong (it does not name the setting: the
/// caller does).
pub(crate) fn run_health_script(script: &str, obj: &Value) -> Result<Health, String> {
    let lua = Lua::new_with(
        StdLib::TABLE | StdLib::STRING | StdLib::MATH,
        LuaOptions::default(),
    )
    .map_err(|e| format!("starting Lua: {e}"))?;
    let globals = lua.globals();
    for name in REMOVED_GLOBALS {
        globals
            .set(name, LuaValue::Nil)
            .map_err(|e| format!("preparing Lua: {e}"))?;
    }
    let options = mlua::serde::SerializeOptions::new()
        .serialize_none_to_null(false)
        .serialize_unit_to_null(false)
        .set_array_metatable(false);
    let object = lua
        .to_value_with(obj, options)
        .map_err(|e| format!("passing the object to Lua: {e}"))?;
    globals
        .set("obj", object)
        .map_err(|e| format!("passing the object to Lua: {e}"))?;
    let budget = INSTRUCTION_BUDGET / u64::from(HOOK_EVERY);
    let ticks = std::sync::atomic::AtomicU64::new(0);
    lua.set_hook(
        HookTriggers::new().every_nth_instruction(HOOK_EVERY),
        move |_, _| {
            if ticks.fetch_add(1, std::sync::atomic::Ordering::Relaxed) >= budget {
                return Err(mlua::Error::runtime(format!(
                    "stopped after {INSTRUCTION_BUDGET} instructions (an endless loop?)"
                )));
            }
            Ok(VmState::Continue)
        },
    )
    .map_err(|e| format!("preparing Lua: {e}"))?;
    lua.set_memory_limit(MEMORY_LIMIT)
        .map_err(|e| format!("preparing Lua: {e}"))?;
    let result: LuaValue = lua
        .load(script)
        .set_name("health.lua")
        .eval()
        .map_err(|e| first_line(&e.to_string()))?;
    let LuaValue::Table(table) = result else {
        return Err(format!(
            "the script returned {} instead of a table {{status = ..., message = ...}}",
            result.type_name()
        ));
    };
    let status: Option<String> = table
        .get("status")
        .map_err(|e| format!("the returned status is not a string: {e}"))?;
    let message: Option<String> = table
        .get("message")
        .map_err(|e| format!("the returned message is not a string: {e}"))?;
    let status = match status.as_deref() {
        Some("Healthy") => HealthStatusCode::Healthy,
        Some("Progressing") => HealthStatusCode::Progressing,
        Some("Degraded") => HealthStatusCode::Degraded,
        Some("Suspended") => HealthStatusCode::Suspended,
        Some("Missing") => HealthStatusCode::Missing,
        Some("Unknown") => HealthStatusCode::Unknown,
        other => {
            return Err(format!(
                "the script returned status {other:?}; expected Healthy, Progressing, Degraded, Suspended, Missing or Unknown"
            ));
        }
    };
    Ok(Health {
        status,
        message: message.filter(|m| !m.is_empty()),
    })
}

/// Lua errors carry a traceback; the first line says what happened.
fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or(text).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CERTIFICATE: &str = r#"
hs = {}
if obj.status ~= nil then
  if obj.status.conditions ~= nil then
    for i, condition in ipairs(obj.status.conditions) do
      if condition.type == "Ready" and condition.status == "False" then
        hs.status = "Degraded"
        hs.message = condition.message
        return hs
      end
      if condition.type == "Ready" and condition.status == "True" then
        hs.status = "Healthy"
        hs.message = condition.message
        return hs
      end
    end
  end
end
hs.status = "Progressing"
hs.message = "Waiting for certificate"
return hs
"#;

    #[test]
    fn an_argo_cd_style_check_reads_obj_and_returns_status_and_message() {
        let cert = |status: &str| {
            json!({"kind": "Certificate", "status": {"conditions": [
                {"type": "Issuing", "status": "True"},
                {"type": "Ready", "status": status, "message": "msg"}]}})
        };
        let h = run_health_script(CERTIFICATE, &cert("False")).unwrap();
        assert_eq!(h.status, HealthStatusCode::Degraded);
        assert_eq!(h.message.as_deref(), Some("msg"));
        assert_eq!(
            run_health_script(CERTIFICATE, &cert("True"))
                .unwrap()
                .status,
            HealthStatusCode::Healthy
        );
        let h = run_health_script(CERTIFICATE, &json!({"kind": "Certificate"})).unwrap();
        assert_eq!(h.status, HealthStatusCode::Progressing);
        assert_eq!(h.message.as_deref(), Some("Waiting for certificate"));
    }

    #[test]
    fn json_null_is_nil_and_numbers_and_arrays_work() {
        let script = r#"
if obj.spec.gone ~= nil then return {status = "Degraded", message = "null is not nil"} end
if #obj.spec.items ~= 3 then return {status = "Degraded", message = "length"} end
if obj.spec.replicas + 1 ~= 4 then return {status = "Degraded", message = "number"} end
return {status = "Healthy"}
"#;
        let obj = json!({"spec": {"gone": null, "items": [1, 2, 3], "replicas": 3}});
        let h = run_health_script(script, &obj).unwrap();
        assert_eq!(h.status, HealthStatusCode::Healthy, "{:?}", h.message);
        assert_eq!(h.message, None);
    }

    #[test]
    fn the_sandbox_has_no_io_os_require_or_load() {
        for forbidden in [
            "io.open('/etc/passwd')",
            "os.execute('true')",
            "require('os')",
            "load('return 1')()",
            "loadstring('return 1')()",
            "dofile('/etc/passwd')",
            "loadfile('/etc/passwd')()",
            "debug.getinfo(1)",
            "package.loadlib('x', 'y')",
        ] {
            let script = format!("{forbidden}\nreturn {{status = 'Healthy'}}");
            let err = run_health_script(&script, &json!({})).unwrap_err();
            assert!(err.contains("nil"), "{forbidden}: {err}");
        }
    }

    #[test]
    fn an_endless_loop_is_stopped() {
        let started = std::time::Instant::now();
        let err = run_health_script("while true do end", &json!({})).unwrap_err();
        assert!(err.contains("stopped after"), "{err}");
        // Generous: the budget is a count of instructions, not a time.
        assert!(started.elapsed() < std::time::Duration::from_secs(60));
    }

    #[test]
    fn memory_is_limited() {
        let script = "local t = {} for i = 1, 100000000 do t[i] = string.rep('x', 1000) .. i end return {status = 'Healthy'}";
        let err = run_health_script(script, &json!({})).unwrap_err();
        assert!(err.to_lowercase().contains("memory"), "{err}");
    }

    #[test]
    fn bad_results_are_errors_that_say_what_was_expected() {
        let err = run_health_script("return 'Healthy'", &json!({})).unwrap_err();
        assert!(err.contains("returned string instead of a table"), "{err}");
        let err = run_health_script("return {status = 'Fine'}", &json!({})).unwrap_err();
        assert!(err.contains("status Some(\"Fine\")"), "{err}");
        let err = run_health_script("return {}", &json!({})).unwrap_err();
        assert!(err.contains("status None"), "{err}");
        let err = run_health_script("this is not lua", &json!({})).unwrap_err();
        assert!(err.contains("syntax error"), "{err}");
        let err = run_health_script("error('boom')", &json!({})).unwrap_err();
        assert!(err.contains("boom"), "{err}");
    }
}
