//! Known secret values, redacted from everything George stores.
//!
//! Whatever reads a secret on the engine's behalf — a provider registry reading an API
//! key, a state store's password, a Git token — adds its value to a [`KnownSecrets`]
//! set. The engine redacts every value of that set from transcripts, tool results and
//! event messages before they reach the state store, replacing each occurrence with
//! [`REDACTED`].
//!
//! ```
//! use george_core::secret::{KnownSecrets, REDACTED};
//!
//! let secrets = KnownSecrets::new();
//! secrets.add("sk-live-0123456789");
//! assert_eq!(secrets.redact("key=sk-live-0123456789!"), format!("key={REDACTED}!"));
//! // Values shorter than MIN_SECRET_LEN are not registered: redacting them would
//! // mangle ordinary text.
//! secrets.add("abc");
//! assert_eq!(secrets.redact("abc"), "abc");
//! ```
//!
//! [`KnownSecrets::global`] is the process-wide set that George's own adapters add to
//! and that an engine uses unless `EngineBuilder::known_secrets` gives it another.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock, RwLock};

/// What a redacted value is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// Values shorter than this many bytes are never registered (an empty or one-letter
/// "secret" would otherwise redact ordinary text).
pub const MIN_SECRET_LEN: usize = 6;

/// A shared, append-only set of secret values. Cloning shares the set.
#[derive(Clone, Default)]
pub struct KnownSecrets {
    values: Arc<RwLock<Vec<Arc<str>>>>,
}

impl std::fmt::Debug for KnownSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the values themselves.
        f.debug_struct("KnownSecrets")
            .field("count", &self.len())
            .finish()
    }
}

impl KnownSecrets {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// The process-wide set: George's adapters (the provider registry, the stores,
    /// the Git sources and tools) add what they read to it.
    pub fn global() -> &'static KnownSecrets {
        static GLOBAL: OnceLock<KnownSecrets> = OnceLock::new();
        GLOBAL.get_or_init(KnownSecrets::new)
    }

    /// Registers `value` (trimmed of surrounding whitespace). Values shorter than
    /// [`MIN_SECRET_LEN`] bytes, and values already known, are ignored.
    pub fn add(&self, value: impl AsRef<str>) {
        let value = value.as_ref().trim();
        if value.len() < MIN_SECRET_LEN {
            return;
        }
        let mut values = self.values.write().unwrap_or_else(|e| e.into_inner());
        if values.iter().any(|v| &**v == value) {
            return;
        }
        values.push(Arc::from(value));
        // Longest first, so that a secret containing another is replaced whole.
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    }

    /// How many values are known.
    pub fn len(&self) -> usize {
        self.values.read().map(|v| v.len()).unwrap_or(0)
    }

    /// Whether no value is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `text` with every known value replaced by [`REDACTED`]; borrowed when nothing
    /// was found.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let values = self.values.read().unwrap_or_else(|e| e.into_inner());
        let mut out: Cow<'a, str> = Cow::Borrowed(text);
        for v in values.iter() {
            if out.contains(&**v) {
                out = Cow::Owned(out.replace(&**v, REDACTED));
            }
        }
        out
    }

    /// Redacts `text` in place; returns whether anything was replaced.
    pub fn redact_in_place(&self, text: &mut String) -> bool {
        match self.redact(text) {
            Cow::Borrowed(_) => false,
            Cow::Owned(s) => {
                *text = s;
                true
            }
        }
    }

    /// Redacts every string inside a JSON value, in place (object keys included).
    pub fn redact_json(&self, value: &mut serde_json::Value) {
        if self.is_empty() {
            return;
        }
        match value {
            serde_json::Value::String(s) => {
                self.redact_in_place(s);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| self.redact_json(v)),
            serde_json::Value::Object(map) => {
                let keys: Vec<String> = map.keys().cloned().collect();
                for k in keys {
                    let Some(mut v) = map.remove(&k) else {
                        continue;
                    };
                    self.redact_json(&mut v);
                    map.insert(self.redact(&k).into_owned(), v);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_longest_first_and_ignores_short_values() {
        let s = KnownSecrets::new();
        s.add("token");
        s.add("secret-token-123");
        s.add("secret");
        assert_eq!(s.len(), 2);
        assert_eq!(s.redact("a secret-token-123 b"), "a [REDACTED] b");
        assert_eq!(s.redact("a secret b"), "a [REDACTED] b");
        assert!(matches!(s.redact("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn redacts_json_strings_and_keys() {
        let s = KnownSecrets::new();
        s.add("hunter22");
        let mut v = serde_json::json!({"hunter22": ["x hunter22 y", 3], "k": "hunter22"});
        s.redact_json(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"[REDACTED]": ["x [REDACTED] y", 3], "k": "[REDACTED]"})
        );
    }

    #[test]
    fn debug_never_prints_values() {
        let s = KnownSecrets::new();
        s.add("hunter22");
        assert!(!format!("{s:?}").contains("hunter22"));
    }
}
