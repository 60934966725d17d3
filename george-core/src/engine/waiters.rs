//! Jobs waiting for a slot, by the limit that stopped them.
//!
//! A step that cannot start because a limit is reached (the engine's `max_running`, its
//! job's `max_parallel_steps`, its agent's `max_concurrency`, its target's `concurrency`)
//! is recorded under the first limit that stopped it. When a running step releases its
//! slots, only the jobs that this release can help are queued again: the job itself, the
//! waiters of the released agent and target, and as many of the engine-wide waiters as
//! there are free engine slots, oldest first. Waking every waiting job on every release
//! (as a single set did) made each finished step reconcile all of them: with 64 slots and
//! 200 jobs, 136 reconciles per step.
//!
//! A waiter woken for an engine slot that cannot use it (it is stopped by another limit
//! now, or has nothing to start) passes it on: [`Waiters::due_engine`] is asked again
//! after every reconcile, and wakes the next one while a slot is free.

use std::collections::{BTreeSet, VecDeque};

/// The limit a waiting job was stopped by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Gate {
    /// The engine's `max_running`.
    Engine,
    /// The job's own `max_parallel_steps`.
    Job,
    /// An agent's `max_concurrency`.
    Agent(String),
    /// A target key's `concurrency` limit.
    Target(String),
}

/// The waiting jobs (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct Waiters {
    engine: VecDeque<String>,
    engine_set: crate::fastmap::FastSet<String>,
    job: BTreeSet<String>,
    agent: crate::fastmap::FastMap<String, BTreeSet<String>>,
    target: crate::fastmap::FastMap<String, BTreeSet<String>>,
}

impl Waiters {
    /// Records that `job` waits on `gate`.
    pub(crate) fn wait(&mut self, job: &str, gate: Gate) {
        match gate {
            Gate::Engine => {
                if self.engine_set.insert(job.to_owned()) {
                    self.engine.push_back(job.to_owned());
                }
            }
            Gate::Job => {
                self.job.insert(job.to_owned());
            }
            Gate::Agent(a) => {
                self.agent.entry(a).or_default().insert(job.to_owned());
            }
            Gate::Target(k) => {
                self.target.entry(k).or_default().insert(job.to_owned());
            }
        }
    }

    /// The jobs to queue again after `job` released one step's slots (of `agent`, under
    /// `target`), with `free` engine slots now free.
    pub(crate) fn released(
        &mut self,
        job: &str,
        agent: Option<&str>,
        target: Option<&str>,
        free: usize,
    ) -> Vec<String> {
        let mut due = self.due_engine(free);
        if self.job.remove(job) {
            due.push(job.to_owned());
        }
        if let Some(set) = agent.and_then(|a| self.agent.remove(a)) {
            due.extend(set);
        }
        if let Some(set) = target.and_then(|k| self.target.remove(k)) {
            due.extend(set);
        }
        due
    }

    /// Up to `free` of the oldest engine-wide waiters, removed.
    pub(crate) fn due_engine(&mut self, free: usize) -> Vec<String> {
        let n = free.min(self.engine.len());
        let due: Vec<String> = self.engine.drain(..n).collect();
        for j in &due {
            self.engine_set.remove(j);
        }
        due
    }

    /// Whether any job waits for an engine slot.
    pub(crate) fn any_engine(&self) -> bool {
        !self.engine.is_empty()
    }

    /// Jobs waiting, all gates (each once).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        let mut all: BTreeSet<&String> = self.engine.iter().collect();
        all.extend(self.job.iter());
        all.extend(self.agent.values().flatten());
        all.extend(self.target.values().flatten());
        all.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiters(list: &[(&str, Gate)]) -> Waiters {
        let mut w = Waiters::default();
        for (j, g) in list {
            w.wait(j, g.clone());
        }
        w
    }

    /// Name, waiters, the release (job, agent, target, free engine slots), jobs woken.
    type Case<'a> = (
        &'a str,
        Vec<(&'a str, Gate)>,
        (&'a str, Option<&'a str>, Option<&'a str>, usize),
        Vec<&'a str>,
    );

    #[test]
    fn a_release_wakes_only_whom_it_can_help() {
        let a = || Gate::Agent("a".into());
        let t = || Gate::Target("service/x".into());
        let cases: Vec<Case> = vec![
            // One engine slot free: the oldest engine waiter only.
            (
                "engine fifo",
                vec![
                    ("j1", Gate::Engine),
                    ("j2", Gate::Engine),
                    ("j3", Gate::Engine),
                ],
                ("r", None, None, 1),
                vec!["j1"],
            ),
            (
                "two free",
                vec![
                    ("j1", Gate::Engine),
                    ("j2", Gate::Engine),
                    ("j3", Gate::Engine),
                ],
                ("r", None, None, 2),
                vec!["j1", "j2"],
            ),
            (
                "none free",
                vec![("j1", Gate::Engine)],
                ("r", None, None, 0),
                vec![],
            ),
            // A job waiting on its own parallelism: only its own release helps.
            (
                "own job",
                vec![("j1", Gate::Job), ("j2", Gate::Job)],
                ("j2", None, None, 0),
                vec!["j2"],
            ),
            // Agent and target waiters of the released agent/target, all of them.
            (
                "agent",
                vec![("j1", a()), ("j2", a()), ("j3", Gate::Agent("b".into()))],
                ("r", Some("a"), None, 0),
                vec!["j1", "j2"],
            ),
            (
                "target",
                vec![("j1", t()), ("j2", Gate::Target("service/y".into()))],
                ("r", None, Some("service/x"), 0),
                vec!["j1"],
            ),
            (
                "other agent",
                vec![("j1", a())],
                ("r", Some("b"), None, 3),
                vec![],
            ),
        ];
        for (name, list, (job, agent, target, free), want) in cases {
            let mut w = waiters(&list);
            let got = w.released(job, agent, target, free);
            assert_eq!(got, want, "{name}");
            assert_eq!(
                w.len(),
                list.len() - want.len(),
                "{name}: the others still wait"
            );
        }
    }

    #[test]
    fn a_job_waits_once_per_gate() {
        let mut w = waiters(&[
            ("j1", Gate::Engine),
            ("j1", Gate::Engine),
            ("j2", Gate::Engine),
        ]);
        assert_eq!(w.due_engine(5), vec!["j1", "j2"]);
        assert!(!w.any_engine());
        // Woken and stopped again: it waits at the back.
        w.wait("j3", Gate::Engine);
        w.wait("j1", Gate::Engine);
        assert_eq!(w.due_engine(1), vec!["j3"]);
    }
}
