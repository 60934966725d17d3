//! `george schema [KIND]`.

use george_core::manifest::json_schema;
use george_core::model::Kind;

/// Prints the schema of `kind`, or an object of every kind's schema by kind name.
pub(crate) fn run(kind: Option<&str>) -> Result<u8, String> {
    let value = match kind {
        Some(name) => {
            let kind = Kind::parse(name).ok_or_else(|| {
                format!("unknown kind {name:?}: expected AgentSpec, TaskTemplate, Job or Policy")
            })?;
            json_schema(kind)
        }
        None => {
            let mut all = serde_json::Map::new();
            for kind in [Kind::AgentSpec, Kind::TaskTemplate, Kind::Job, Kind::Policy] {
                all.insert(kind.as_str().to_string(), json_schema(kind));
            }
            serde_json::Value::Object(all)
        }
    };
    let text = serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?;
    println!("{text}");
    Ok(0)
}
