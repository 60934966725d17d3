//! Clipped text for event details: tool-call arguments, outputs and model text are shown
//! in the event log up to a number of characters, followed by `…`.
//!
//! The `push_*` forms write into the detail being built, so a detail is one string, and
//! JSON is serialized only as far as the clip shows (a tool call's arguments may be
//! megabytes).

/// `s` clipped to `n` characters (a `…` follows when it was longer).
pub(crate) fn clip(s: &str, n: usize) -> String {
    let mut out = String::new();
    push_clip(&mut out, s, n);
    out
}

/// Appends `s` clipped to `n` characters to `out`.
pub(crate) fn push_clip(out: &mut String, s: &str, n: usize) {
    match s.char_indices().nth(n) {
        None => out.push_str(s),
        Some((i, _)) => {
            out.push_str(&s[..i]);
            out.push('…');
        }
    }
}

/// `v` as compact JSON, clipped to `n` characters like [`clip`].
pub(crate) fn clip_json(v: &serde_json::Value, n: usize) -> String {
    let mut out = String::new();
    push_clip_json(&mut out, v, n);
    out
}

/// Appends `v` as compact JSON to `out`, written straight into its buffer.
pub(crate) fn push_json(out: &mut String, v: &serde_json::Value) {
    let mut buf = std::mem::take(out).into_bytes();
    let _ = serde_json::to_writer(&mut buf, v);
    // serde_json writes UTF-8; were it not to, the text is kept, lossily.
    *out = match String::from_utf8(buf) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    };
}

/// Appends `v` as compact JSON, clipped to `n` characters, to `out`; serialization
/// stops once the text is known to be longer than `n`.
pub(crate) fn push_clip_json(out: &mut String, v: &serde_json::Value, n: usize) {
    /// Takes bytes up to `limit`, then refuses more (which ends serialization).
    struct Prefix {
        buf: Vec<u8>,
        limit: usize,
    }
    impl std::io::Write for Prefix {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            let room = self.limit.saturating_sub(self.buf.len());
            self.buf.extend_from_slice(&b[..b.len().min(room)]);
            if b.len() > room {
                return Err(std::io::Error::other("clipped"));
            }
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let start = out.len();
    // A character is at most 4 bytes: n + 1 characters fit in 4n + 4.
    let mut p = Prefix {
        buf: std::mem::take(out).into_bytes(),
        limit: start + 4 * n + 4,
    };
    let _ = serde_json::to_writer(&mut p, v);
    // The prefix may end inside a character, past the clip: cut it there.
    *out = match String::from_utf8(p.buf) {
        Ok(s) => s,
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let mut bytes = e.into_bytes();
            bytes.truncate(valid);
            String::from_utf8(bytes).unwrap_or_default()
        }
    };
    if let Some((i, _)) = out[start..].char_indices().nth(n) {
        out.truncate(start + i);
        out.push('…');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// What clipping means, written the slow way.
    fn reference(s: &str, n: usize) -> String {
        if s.chars().count() <= n {
            s.to_string()
        } else {
            let mut t: String = s.chars().take(n).collect();
            t.push('…');
            t
        }
    }

    #[test]
    fn json_is_appended_as_serde_json_writes_it() {
        for v in [
            json!({}),
            json!(null),
            json!({"b": [1, 2.5, "x\"y"], "a": {"é": "✓\n"}}),
        ] {
            let mut out = String::from("- s1: ");
            push_json(&mut out, &v);
            assert_eq!(out, format!("- s1: {}", serde_json::to_string(&v).unwrap()));
        }
    }

    #[test]
    fn clipped_json_is_the_clip_of_the_whole_text() {
        let values = [
            json!({}),
            json!({"summary": "ok", "outputs": {"a": 1}}),
            json!({"text": "é".repeat(300), "n": [1, 2, 3]}),
            json!("🦀".repeat(90)),
            json!({"k": "x".repeat(10_000)}),
        ];
        for v in &values {
            for n in [0, 1, 5, 99, 100, 200, 100_000] {
                let whole = v.to_string();
                assert_eq!(clip_json(v, n), reference(&whole, n), "{n}");
                let mut out = String::from("prefix: ");
                push_clip_json(&mut out, v, n);
                assert_eq!(out, format!("prefix: {}", reference(&whole, n)));
            }
        }
    }

    #[test]
    fn clipped_text_keeps_whole_characters() {
        for (s, n) in [("", 3), ("abc", 3), ("abcd", 3), ("éèê", 2), ("🦀🦀🦀", 1)] {
            assert_eq!(clip(s, n), reference(s, n), "{s:?} {n}");
            let mut out = String::from("x ");
            push_clip(&mut out, s, n);
            assert_eq!(out, format!("x {}", reference(s, n)));
        }
    }
}
