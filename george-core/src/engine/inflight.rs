//! The attempts running in this engine's tasks, by job and step: what `shutdown` aborts
//! and durably returns to `Ready`, and what a chain of steps hands on from step to step.
//!
//! Looked up by `&str` (a lookup copies no key); a job has a few entries at most, one
//! per step running in parallel.

use std::sync::Arc;

use tokio::task::JoinHandle;

use crate::fastmap::FastMap;

/// One running attempt: its step, its number and its task.
type Entry = (Arc<str>, u32, JoinHandle<()>);

/// The in-flight attempts of this engine.
#[derive(Debug, Default)]
pub(crate) struct InFlight(FastMap<String, Vec<Entry>>);

impl InFlight {
    /// Registers attempt `attempt` of `job`'s `step`, run by `handle` (replacing an
    /// entry for the same step).
    pub(crate) fn insert(
        &mut self,
        job: &str,
        step: Arc<str>,
        attempt: u32,
        handle: JoinHandle<()>,
    ) {
        match self.0.get_mut(job) {
            Some(v) => match v.iter_mut().find(|e| e.0 == step) {
                Some(e) => *e = (step, attempt, handle),
                None => v.push((step, attempt, handle)),
            },
            None => {
                self.0
                    .insert(job.to_string(), vec![(step, attempt, handle)]);
            }
        }
    }

    /// Takes the entry of `job`'s `step` out: its attempt and task.
    pub(crate) fn remove(&mut self, job: &str, step: &str) -> Option<(u32, JoinHandle<()>)> {
        let v = self.0.get_mut(job)?;
        let i = v.iter().position(|e| *e.0 == *step)?;
        let (_, attempt, handle) = v.swap_remove(i);
        if v.is_empty() {
            self.0.remove(job);
        }
        Some((attempt, handle))
    }

    /// Moves the entry of `job`'s step `from` (its task goes on with attempt `attempt`
    /// of step `to`). `false` when there is none: the engine is stopping and took it.
    pub(crate) fn follow(&mut self, job: &str, from: &str, to: Arc<str>, attempt: u32) -> bool {
        match self
            .0
            .get_mut(job)
            .and_then(|v| v.iter_mut().find(|e| *e.0 == *from))
        {
            Some(e) => {
                e.0 = to;
                e.1 = attempt;
                true
            }
            None => false,
        }
    }

    /// Takes every entry out: (job, step, attempt, task).
    pub(crate) fn drain(&mut self) -> Vec<(String, Arc<str>, u32, JoinHandle<()>)> {
        self.0
            .drain()
            .flat_map(|(job, v)| {
                v.into_iter()
                    .map(move |(step, attempt, handle)| (job.clone(), step, attempt, handle))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task() -> JoinHandle<()> {
        tokio::spawn(async {})
    }

    #[tokio::test]
    async fn entries_are_found_moved_and_taken_by_job_and_step() {
        let mut f = InFlight::default();
        f.insert("j", "a".into(), 1, task());
        f.insert("j", "b".into(), 1, task());
        f.insert("k", "a".into(), 2, task());
        // Same step again: replaced, not added.
        f.insert("j", "a".into(), 3, task());
        assert!(f.follow("j", "b", "c".into(), 1));
        assert!(!f.follow("j", "b", "d".into(), 1), "b moved on to c");
        assert_eq!(f.remove("j", "a").map(|e| e.0), Some(3));
        assert!(f.remove("j", "a").is_none());
        assert!(f.remove("x", "a").is_none());
        let mut left: Vec<(String, String, u32)> = f
            .drain()
            .into_iter()
            .map(|(j, s, a, _)| (j, s.to_string(), a))
            .collect();
        left.sort();
        assert_eq!(
            left,
            [("j".into(), "c".into(), 1), ("k".into(), "a".into(), 2)]
        );
        assert!(f.drain().is_empty());
        assert!(f.0.is_empty(), "no empty job entries are kept");
    }
}
