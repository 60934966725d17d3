//! An attempt's conversation is shared, not copied: every model request of an agent
//! loop carries the engine's transcript itself (`ChatRequest::messages` is an
//! `Arc<Vec<Message>>`), and the engine appends each turn to it in place once the
//! provider has let the request go. Copying it per turn made a long loop quadratic.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use george_core::engine::Engine;
use george_core::memory::{InMemoryGitSource, InMemoryStateStore};
use george_core::provider::{
    AssistantMessage, ChatRequest, ChatResponse, Message, Provider, ToolCall, Usage,
};
use george_core::state::JobStatus;
use serde_json::json;

/// Answers with a tool call the engine does not know for `turns - 1` turns, then
/// reports success; records how many owners each request's conversation has (the
/// engine's transcript and the request: 2 when shared, 1 when copied) and how long it
/// is, and lets the request go.
#[derive(Debug, Default)]
struct Turns {
    turns: usize,
    seen: Mutex<Vec<(usize, usize)>>,
    /// Owners of each request's system prompt and model name: the agent spec's and the
    /// request's (at least 2) when shared, 1 when copied.
    prompt_owners: Mutex<Vec<(usize, usize)>>,
}

#[async_trait]
impl Provider for Turns {
    fn name(&self) -> &str {
        "turns"
    }

    async fn complete(&self, req: ChatRequest) -> george_core::Result<ChatResponse> {
        let mut seen = self.seen.lock().unwrap();
        seen.push((Arc::strong_count(&req.messages), req.messages.len()));
        self.prompt_owners.lock().unwrap().push((
            Arc::strong_count(&req.system),
            Arc::strong_count(&req.model),
        ));
        let call = if seen.len() < self.turns {
            ToolCall::new(format!("c{}", seen.len()), "look", json!({}))
        } else {
            ToolCall::new("done", "report_success", json!({"summary": "ok"}))
        };
        Ok(ChatResponse::new(
            AssistantMessage {
                content: None,
                tool_calls: vec![call],
            },
            Usage::default(),
        ))
    }
}

#[tokio::test]
async fn every_turn_of_an_attempt_shares_one_conversation() {
    let git = InMemoryGitSource::new();
    git.commit_files(
        "main",
        vec![
            (
                "agent-specs/a.yaml",
                "apiVersion: george.dev/v1alpha1\nkind: AgentSpec\nmetadata: {name: a}\nspec: {model: m, system_prompt: s}\n".to_string(),
            ),
            (
                "task-templates/t.yaml",
                "apiVersion: george.dev/v1alpha1\nkind: TaskTemplate\nmetadata: {name: t}\nspec:\n  steps:\n    - {id: work, agent: a, instructions: Work.}\n".to_string(),
            ),
            (
                "jobs/j.yaml",
                "apiVersion: george.dev/v1alpha1\nkind: Job\nmetadata: {name: j}\nspec: {template: t}\n".to_string(),
            ),
        ],
        "c1",
    );
    let provider = Arc::new(Turns {
        turns: 4,
        ..Turns::default()
    });
    let engine = Engine::builder(Arc::new(InMemoryStateStore::new()), Arc::new(git))
        .provider("default", provider.clone())
        .build()
        .expect("engine");
    engine.start().await.expect("start");
    let run = engine.spawn();
    let status = engine.wait_finished("j", Duration::from_secs(20)).await;
    run.shutdown().await;
    assert_eq!(status.expect("finished"), JobStatus::Succeeded);

    let seen = provider.seen.lock().unwrap().clone();
    // The user message, then an assistant message and a tool result per turn.
    let lens: Vec<usize> = seen.iter().map(|s| s.1).collect();
    assert_eq!(lens, [1, 3, 5, 7]);
    // Each request holds the engine's own transcript, not a copy of it.
    assert!(
        seen.iter().all(|s| s.0 == 2),
        "a request copied the conversation: {seen:?}"
    );
    let stored = engine
        .transcript("j", "work", 1)
        .await
        .expect("read")
        .expect("stored");
    // Nor does it copy the agent's system prompt and model name.
    let owners = provider.prompt_owners.lock().unwrap().clone();
    assert!(
        owners.iter().all(|(s, m)| *s >= 2 && *m >= 2),
        "a request copied the system prompt or the model: {owners:?}"
    );
    assert_eq!(stored.len(), 9);
    assert!(matches!(stored.last(), Some(Message::Tool { .. })));
}
