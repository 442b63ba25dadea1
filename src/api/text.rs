//! Free text at the edge: every string a request carries is refused when it holds a
//! control character, before anything is stored.
//!
//! PostgreSQL refuses a NUL in `text` and `jsonb` (SQLSTATE 22021 / 22P05), and other
//! control characters have no business in a reason, a name or a target: they only serve
//! to forge log lines and break terminals. A request with one gets a 400 naming the field
//! (its JSON path, e.g. `reason` or `steps[1]`) — never a 201 whose record the store then
//! refuses. Tab and line feed are allowed (a multi-line reason from a script); carriage
//! return is not (it rewrites log lines).

use serde_json::Value;

use super::ApiError;

/// Whether `c` is refused in free text: Unicode's control characters (C0, DEL, C1)
/// except tab and line feed.
pub fn is_refused(c: char) -> bool {
    c.is_control() && c != '\t' && c != '\n'
}

/// Refuses `s`, the value of `field`, when it holds a refused character.
///
/// # Errors
/// [`ApiError::BadRequest`] naming the field and the first refused character.
pub fn check(field: &str, s: &str) -> Result<(), ApiError> {
    match s.chars().find(|c| is_refused(*c)) {
        None => Ok(()),
        Some(c) => Err(ApiError::field(
            field,
            format!("holds the control character U+{:04X}; remove it (only tab and line feed are allowed)", c as u32),
        )),
    }
}

/// Checks every string (and every key) of a JSON document; fields are named by their
/// path from the root (`reason`, `steps[1]`, `details.note`).
///
/// # Errors
/// [`ApiError::BadRequest`] for the first refused string found.
pub fn check_json(v: &Value) -> Result<(), ApiError> {
    walk(v, &mut String::new())
}

fn walk(v: &Value, path: &mut String) -> Result<(), ApiError> {
    match v {
        Value::String(s) => check(if path.is_empty() { "body" } else { path }, s),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                walk(item, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        Value::Object(map) => {
            for (k, item) in map {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                // A key is named by its own (escaped) spelling: it may be the bad part.
                path.push_str(&k.escape_debug().to_string());
                check(path, k)?;
                walk(item, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn field_of(e: ApiError) -> String {
        match e {
            ApiError::BadRequest { field, .. } => field,
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn a_nul_in_the_reason_is_refused_naming_the_reason() {
        let e = check_json(&json!({ "evacuate": "primary", "reason": "nul \u{0} here" })).unwrap_err();
        assert_eq!(field_of(e), "reason");
    }

    #[test]
    fn a_control_character_deep_in_the_body_is_named_by_its_path() {
        let e = check_json(&json!({ "a": [ "ok", { "b": "bell \u{7}" } ] })).unwrap_err();
        assert_eq!(field_of(e), "a[1].b");
    }

    #[test]
    fn a_control_character_in_a_key_is_refused() {
        let e = check_json(&json!({ "re\u{1b}ason": "x" })).unwrap_err();
        assert_eq!(field_of(e), "re\\u{1b}ason");
    }

    #[test]
    fn the_message_names_the_code_point_and_the_fix() {
        let ApiError::BadRequest { message, .. } = check("reason", "a\rb").unwrap_err() else { unreachable!() };
        assert!(message.contains("U+000D") && message.contains("remove it"), "{message}");
    }

    #[test]
    fn tabs_line_feeds_and_ordinary_unicode_pass() {
        check_json(&json!({ "reason": "line one\n\tline two — é 漢字 🙂", "steps": [50, 100], "dry_run": true }))
            .expect("plain text passes");
    }

    proptest! {
        #[test]
        fn a_string_passes_exactly_when_it_holds_no_refused_character(s in any::<String>()) {
            let refused = s.chars().any(is_refused);
            prop_assert_eq!(check("reason", &s).is_err(), refused);
            prop_assert_eq!(check_json(&json!({ "reason": s })).is_err(), refused);
        }
    }
}
