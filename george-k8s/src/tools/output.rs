//! What the model is shown: objects as YAML without server bookkeeping, Secret values
//! redacted, everything cut to the executor's size cap.

use serde_json::Value;

/// What replaces every value of a Secret's `data` and `stringData`.
pub const REDACTED: &str = "<redacted by george-k8s>";

/// The annotation in which client-side `kubectl apply` keeps the whole last applied
/// object — for a Secret, its data in clear.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Whether `(group, kind)` is the core `Secret`.
pub(crate) fn is_secret(group: &str, kind: &str) -> bool {
    group.is_empty() && kind == "Secret"
}

/// Removes `metadata.managedFields` (long, rarely useful to a model) and, for a Secret,
/// replaces every data value and the last-applied annotation with [`REDACTED`] (keys
/// stay: which keys exist is often what an investigation needs).
pub(crate) fn clean(obj: &mut Value, secret: bool) {
    let Some(o) = obj.as_object_mut() else {
        return;
    };
    if let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
        if secret
            && let Some(ann) = meta.get_mut("annotations").and_then(Value::as_object_mut)
            && let Some(v) = ann.get_mut(LAST_APPLIED)
        {
            *v = Value::String(REDACTED.into());
        }
    }
    if secret {
        for field in ["data", "stringData"] {
            if let Some(d) = o.get_mut(field).and_then(Value::as_object_mut) {
                for v in d.values_mut() {
                    *v = Value::String(REDACTED.into());
                }
            }
        }
    }
}

/// Drops what differs between two versions of an object without being a change a
/// reviewer cares about (`resourceVersion`, `generation`, `uid`, timestamps, managed
/// fields, `status`), for a diff.
pub(crate) fn for_diff(obj: &mut Value) {
    if let Some(o) = obj.as_object_mut() {
        o.remove("status");
        if let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) {
            for k in [
                "managedFields",
                "resourceVersion",
                "generation",
                "uid",
                "creationTimestamp",
                "selfLink",
            ] {
                meta.remove(k);
            }
        }
    }
}

/// `value` as YAML (JSON if it cannot be written as YAML).
pub(crate) fn yaml(value: &Value) -> String {
    serde_saphyr::to_string(value)
        .unwrap_or_else(|_| serde_json::to_string_pretty(value).unwrap_or_default())
}

/// Cuts `text` to at most `max` bytes at a line boundary, with a note saying how much
/// was left out. Returns the text and whether it was cut.
pub(crate) fn cap(mut text: String, max: usize) -> (String, bool) {
    if text.len() <= max {
        return (text, false);
    }
    let total = text.len();
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let cut = text[..cut].rfind('\n').map_or(cut, |i| i + 1);
    text.truncate(cut);
    text.push_str(&format!(
        "\n[... output cut to {cut} of {total} bytes by the executor's size cap: narrow the request]\n"
    ));
    (text, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_redacted_and_bookkeeping_dropped() {
        let mut s = json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "db", "managedFields": [{}], "annotations": {LAST_APPLIED: "{\"data\":{\"p\":\"c2VjcmV0\"}}"}},
            "data": {"password": "c2VjcmV0"}, "stringData": {"token": "t"}
        });
        clean(&mut s, true);
        let text = yaml(&s);
        assert!(
            !text.contains("c2VjcmV0") && !text.contains("managedFields"),
            "{text}"
        );
        assert!(
            text.contains("password") && text.contains(REDACTED),
            "{text}"
        );
        assert_eq!(s["stringData"]["token"], REDACTED);
    }

    #[test]
    fn output_is_cut_at_a_line() {
        let (t, cut) = cap("a\nbb\nccc\n".repeat(10), 12);
        assert!(
            cut && t.starts_with("a\nbb\nccc\n") && t.contains("cut to 11 of 90"),
            "{t}"
        );
        assert_eq!(cap("short".into(), 100), ("short".into(), false));
    }
}
