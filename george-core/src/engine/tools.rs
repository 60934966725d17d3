//! The engine's tool table: every registered executor's tools by name, with the
//! operator's effect classes applied. Built at [`EngineBuilder::build`] and built again
//! when an executor's list changes (an MCP server's `notifications/tools/list_changed`):
//! [`Engine::refresh_tools`], which the run loop calls on every poll. An attempt keeps the
//! table it started with; the next attempt sees the new one.
//!
//! [`EngineBuilder::build`]: super::EngineBuilder::build

use std::collections::HashMap;
use std::sync::Arc;

use super::Engine;
use super::attempt::RegisteredTool;
use crate::error::{Error, Result};
use crate::tool::{DynToolExecutor, EffectClass, ToolDefinition};

/// Tools by name.
pub(crate) type ToolTable = HashMap<String, RegisteredTool>;

/// The table of `executors`' tools, with `effects` (the operator's classes) applied.
///
/// # Errors
/// `InvalidInput` when two executors provide a tool of the same name.
pub(crate) fn build_table(
    executors: &[DynToolExecutor],
    effects: &HashMap<String, EffectClass>,
) -> Result<ToolTable> {
    let mut tools = ToolTable::new();
    for ex in executors {
        for def in ex.tools() {
            if let Some(first) = tools.get(&def.name) {
                return Err(Error::invalid_input(format!(
                    "tool {:?} is provided by two executors ({:?} and {:?}): tool names must be unique",
                    def.name, first.executor, ex
                )));
            }
            tools.insert(def.name.clone(), registered(ex, def, effects));
        }
    }
    Ok(tools)
}

fn registered(
    ex: &DynToolExecutor,
    mut def: ToolDefinition,
    effects: &HashMap<String, EffectClass>,
) -> RegisteredTool {
    let fixed = effects.get(&def.name).copied();
    if let Some(effect) = fixed {
        def.effect = effect;
    }
    RegisteredTool {
        executor: ex.clone(),
        definition: def,
        effect_fixed: fixed.is_some(),
    }
}

/// Whether `table` is what `executors` provide now (names and definitions).
fn unchanged(
    table: &ToolTable,
    executors: &[DynToolExecutor],
    effects: &HashMap<String, EffectClass>,
) -> bool {
    let mut n = 0;
    for ex in executors {
        for def in ex.tools() {
            n += 1;
            let now = registered(ex, def, effects);
            match table.get(&now.definition.name) {
                Some(t) if t.definition == now.definition && Arc::ptr_eq(&t.executor, ex) => {}
                _ => return false,
            }
        }
    }
    n == table.len()
}

impl Engine {
    /// The current tool table (shared; cheap).
    pub(crate) fn tool_table(&self) -> Arc<ToolTable> {
        let t = self.shared.tools.read();
        t.map(|t| t.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Reads every registered executor's tools again and, when they changed (a tool
    /// server added, removed or redefined one), makes the new list the one later attempts
    /// see; attempts under way keep theirs. Returns whether anything changed. The run
    /// loop calls it on every poll; call it to pick a change up at once.
    ///
    /// # Errors
    /// `InvalidInput` when two executors now provide a tool of the same name: the previous
    /// table stays, and the error says which tool.
    pub fn refresh_tools(&self) -> Result<bool> {
        let shared = &self.shared;
        if unchanged(&self.tool_table(), &shared.executors, &shared.effects) {
            return Ok(false);
        }
        let table = Arc::new(build_table(&shared.executors, &shared.effects)?);
        let names = |t: &ToolTable| {
            let mut v: Vec<String> = t.keys().cloned().collect();
            v.sort();
            v.join(", ")
        };
        tracing::info!(tools = %names(&table), "the tool list changed");
        match shared.tools.write() {
            Ok(mut t) => *t = table,
            Err(e) => *e.into_inner() = table,
        }
        // Agents' offered tool lists were built from the old table.
        shared.tool_lists.clear();
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use serde_json::json;

    use super::*;
    use crate::memory::{InMemoryGitSource, InMemoryStateStore};
    use crate::tool::{ToolExecutor, ToolInvocation, ToolOutput};

    /// An executor whose list the test changes.
    #[derive(Debug, Default)]
    struct Changing(Mutex<Vec<&'static str>>);

    #[async_trait]
    impl ToolExecutor for Changing {
        fn tools(&self) -> Vec<ToolDefinition> {
            let names = self.0.lock().map(|n| n.clone()).unwrap_or_default();
            names
                .into_iter()
                .map(|n| ToolDefinition::new(n, "a tool", json!({"type": "object"})))
                .collect()
        }
        async fn call(&self, _: ToolInvocation) -> Result<ToolOutput> {
            Ok(ToolOutput::ok("ok"))
        }
    }

    fn set(ex: &Changing, names: &[&'static str]) {
        *ex.0.lock().unwrap() = names.to_vec();
    }

    #[test]
    fn the_table_follows_the_executors_and_refuses_a_clash() {
        let a = Arc::new(Changing::default());
        let b = Arc::new(Changing::default());
        set(&a, &["a_one"]);
        set(&b, &["b_one"]);
        let e = Engine::builder(
            Arc::new(InMemoryStateStore::new()),
            Arc::new(InMemoryGitSource::new()),
        )
        .tools(a.clone())
        .tools(b.clone())
        .effect_class("a_two", EffectClass::Read)
        .effect_class("a_one", EffectClass::Read);
        // An effect class for a tool no executor has yet is refused at build.
        assert!(e.build().is_err());
        let e = Engine::builder(
            Arc::new(InMemoryStateStore::new()),
            Arc::new(InMemoryGitSource::new()),
        )
        .tools(a.clone())
        .tools(b.clone())
        .effect_class("a_one", EffectClass::Read)
        .build()
        .expect("engine");
        let names = |e: &Engine| {
            let mut v: Vec<String> = e.tool_table().keys().cloned().collect();
            v.sort();
            v
        };
        assert!(!e.refresh_tools().unwrap(), "nothing changed");
        set(&a, &["a_one", "a_two"]);
        assert!(e.refresh_tools().unwrap());
        assert_eq!(names(&e), ["a_one", "a_two", "b_one"]);
        assert_eq!(
            e.tool_table()["a_one"].definition.effect,
            EffectClass::Read,
            "the operator's class stays"
        );
        assert!(e.tool_table()["a_one"].effect_fixed);
        // Two executors with one name: refused, the previous table stays.
        set(&b, &["b_one", "a_two"]);
        assert!(e.refresh_tools().is_err());
        assert_eq!(names(&e), ["a_one", "a_two", "b_one"]);
        set(&b, &[]);
        set(&a, &[]);
        assert!(e.refresh_tools().unwrap());
        assert!(names(&e).is_empty());
    }
}
