//! [`Params`]: a job's parameters, names to JSON values, as a compact sorted map.
//!
//! A job carries a handful of parameters, and an engine holds every job's desired state
//! twice over (the Job as written, and its parameters with the template's defaults
//! applied). A `BTreeMap<String, Value>` spends one ~630-byte node on even a single
//! entry; a sorted `Vec` spends 56 bytes per entry, which is what keeps an idle job
//! small at 100,000 jobs. Lookups are binary searches; iteration is in name order, as a
//! `BTreeMap`'s, so serialisations and hashes are the same.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// Parameter names to JSON values, sorted by name, each name once.
///
/// (De)serialises as a map (`{name: value, …}`) and has the JSON Schema of an object
/// with values of any type. A name given twice keeps its last value, as a `BTreeMap`
/// would.
///
/// ```
/// use george_core::model::Params;
/// use serde_json::json;
///
/// let mut p: Params = serde_json::from_value(json!({"replicas": 3, "env": "prod"})).unwrap();
/// assert_eq!(p.get("env"), Some(&json!("prod")));
/// p.insert("env".into(), json!("staging"));
/// assert_eq!(p.keys().collect::<Vec<_>>(), ["env", "replicas"]);
/// assert_eq!(serde_json::to_string(&p).unwrap(), r#"{"env":"staging","replicas":3}"#);
/// ```
#[derive(Clone, Default, PartialEq)]
pub struct Params(Vec<(String, Value)>);

impl Params {
    /// No parameters.
    pub const fn new() -> Self {
        Params(Vec::new())
    }

    fn find(&self, name: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(name))
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.find(name).ok().map(|i| &self.0[i].1)
    }

    /// Whether `name` is set.
    pub fn contains_key(&self, name: &str) -> bool {
        self.find(name).is_ok()
    }

    /// Sets `name`; returns the value it replaced.
    pub fn insert(&mut self, name: String, value: Value) -> Option<Value> {
        match self.find(&name) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (name, value));
                None
            }
        }
    }

    /// Removes `name`; returns its value.
    pub fn remove(&mut self, name: &str) -> Option<Value> {
        self.find(name).ok().map(|i| self.0.remove(i).1)
    }

    /// How many parameters.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `(name, value)` pairs in name order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&String, &Value)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    /// Names in order.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &String> {
        self.0.iter().map(|(k, _)| k)
    }

    /// Frees spare capacity (the parsed form keeps exactly its entries).
    pub fn shrink_to_fit(&mut self) {
        self.0.shrink_to_fit();
    }
}

impl std::ops::Index<&str> for Params {
    type Output = Value;

    /// The value of `name`.
    ///
    /// # Panics
    /// When `name` is not set (as `BTreeMap`'s index does); use [`Params::get`] otherwise.
    fn index(&self, name: &str) -> &Value {
        match self.get(name) {
            Some(v) => v,
            None => panic!("no parameter `{name}`"),
        }
    }
}

impl fmt::Debug for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl FromIterator<(String, Value)> for Params {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Self {
        let mut p = Params::new();
        for (k, v) in iter {
            p.insert(k, v);
        }
        p.shrink_to_fit();
        p
    }
}

impl<const N: usize> From<[(String, Value); N]> for Params {
    fn from(entries: [(String, Value); N]) -> Self {
        entries.into_iter().collect()
    }
}

impl From<std::collections::BTreeMap<String, Value>> for Params {
    fn from(map: std::collections::BTreeMap<String, Value>) -> Self {
        Params(map.into_iter().collect())
    }
}

impl<'a> IntoIterator for &'a Params {
    type Item = (&'a String, &'a Value);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, Value)>,
        fn(&'a (String, Value)) -> (&'a String, &'a Value),
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

impl Serialize for Params {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for Params {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Params;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of parameter names to values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Params, A::Error> {
                let mut p = Params(Vec::with_capacity(map.size_hint().unwrap_or(0).min(64)));
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    p.insert(k, v);
                }
                p.shrink_to_fit();
                Ok(p)
            }
        }
        d.deserialize_map(V)
    }
}

impl JsonSchema for Params {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        <std::collections::BTreeMap<String, Value> as JsonSchema>::schema_name()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        <std::collections::BTreeMap<String, Value> as JsonSchema>::json_schema(generator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn behaves_as_a_sorted_map() {
        let cases: &[(&[(&str, i64)], &str)] = &[
            (&[], "{}"),
            (&[("b", 1), ("a", 2)], r#"{"a":2,"b":1}"#),
            (&[("a", 1), ("a", 2)], r#"{"a":2}"#),
            (&[("c", 3), ("a", 1), ("b", 2)], r#"{"a":1,"b":2,"c":3}"#),
        ];
        for (entries, want) in cases {
            let p: Params = entries
                .iter()
                .map(|(k, v)| (k.to_string(), json!(v)))
                .collect();
            assert_eq!(serde_json::to_string(&p).unwrap(), *want, "{entries:?}");
            let back: Params = serde_json::from_str(want).unwrap();
            assert_eq!(back, p);
            let map: std::collections::BTreeMap<String, Value> =
                serde_json::from_str(want).unwrap();
            assert_eq!(Params::from(map), p);
        }
    }

    #[test]
    fn duplicate_keys_keep_the_last_value_and_remove_works() {
        let mut p: Params = serde_saphyr::from_str("{x: 1, y: 2}").unwrap();
        assert_eq!(p.insert("x".into(), json!(9)), Some(json!(1)));
        assert_eq!(p.remove("y"), Some(json!(2)));
        assert_eq!(p.remove("y"), None);
        assert!(p.contains_key("x") && !p.contains_key("y"));
        assert_eq!(p.len(), 1);
        assert!(serde_json::from_value::<Params>(json!([1])).is_err());
    }

    #[test]
    fn schema_is_an_object_of_anything() {
        let s = schemars::schema_for!(Params);
        assert_eq!(s.get("type"), Some(&json!("object")));
    }
}
