//! [`AgentLimits`]: the operator's caps on one agent attempt.

/// Caps on one agent step attempt, set by the operator
/// ([`EngineBuilder::agent_limits`](super::EngineBuilder::agent_limits)). A spec may ask
/// for less (`max_iterations`), never more. Exceeding a cap ends the attempt with a
/// failure that names the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AgentLimits {
    /// Model calls per attempt when the spec sets no `max_iterations` (default 10).
    pub default_iterations: u32,
    /// The most model calls per attempt whatever the spec says (default 100).
    pub max_iterations: u32,
    /// The most tool calls one model response may make (default 32). A response with
    /// more runs none of them.
    pub max_tool_calls_per_turn: usize,
    /// The most bytes an attempt's transcript may hold (messages, tool calls and
    /// results, as JSON; default 4 MiB).
    pub max_transcript_bytes: usize,
}

impl Default for AgentLimits {
    fn default() -> Self {
        AgentLimits {
            default_iterations: 10,
            max_iterations: 100,
            max_tool_calls_per_turn: 32,
            max_transcript_bytes: 4 * 1024 * 1024,
        }
    }
}

impl AgentLimits {
    /// The iteration limit of an agent whose spec asks for `asked`.
    pub fn iterations(&self, asked: Option<u32>) -> u32 {
        asked
            .unwrap_or(self.default_iterations)
            .min(self.max_iterations)
            .max(1)
    }

    /// Sets [`default_iterations`](Self::default_iterations).
    pub fn with_default_iterations(mut self, n: u32) -> Self {
        self.default_iterations = n;
        self
    }

    /// Sets [`max_iterations`](Self::max_iterations).
    pub fn with_max_iterations(mut self, n: u32) -> Self {
        self.max_iterations = n;
        self
    }

    /// Sets [`max_tool_calls_per_turn`](Self::max_tool_calls_per_turn).
    pub fn with_max_tool_calls_per_turn(mut self, n: usize) -> Self {
        self.max_tool_calls_per_turn = n;
        self
    }

    /// Sets [`max_transcript_bytes`](Self::max_transcript_bytes).
    pub fn with_max_transcript_bytes(mut self, n: usize) -> Self {
        self.max_transcript_bytes = n;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_narrows_never_widens() {
        let l = AgentLimits::default();
        let table = [(None, 10), (Some(3), 3), (Some(1000), 100), (Some(0), 1)];
        for (asked, want) in table {
            assert_eq!(l.iterations(asked), want, "{asked:?}");
        }
    }
}
