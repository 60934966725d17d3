//! A de-duplicating work queue with delayed requeues (client-go / kube-runtime style).

use std::collections::{BTreeSet, VecDeque};

/// Keys waiting to be reconciled.
///
/// - A key is queued at most once: adding it again while it waits is a no-op.
/// - A key being processed is never handed out twice: adding it meanwhile marks it
///   dirty, and [`done`](WorkQueue::done) queues it again.
/// - Delayed adds keep the earliest time for a key; an immediate add supersedes a delay.
#[derive(Debug, Default)]
pub struct WorkQueue {
    ready: VecDeque<String>,
    queued: crate::fastmap::FastSet<String>,
    processing: crate::fastmap::FastSet<String>,
    dirty: crate::fastmap::FastSet<String>,
    delayed: BTreeSet<(u64, String)>,
    delay_of: crate::fastmap::FastMap<String, u64>,
}

impl WorkQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues `key` now.
    pub fn add(&mut self, key: &str) {
        if let Some(at) = self.delay_of.remove(key) {
            self.delayed.remove(&(at, key.to_string()));
        }
        if self.processing.contains(key) {
            self.dirty.insert(key.to_string());
            return;
        }
        if self.queued.insert(key.to_string()) {
            self.ready.push_back(key.to_string());
        }
    }

    /// Queues `key` at `at_ms` (keeps the earliest pending time).
    pub fn add_at(&mut self, key: &str, at_ms: u64) {
        if self.queued.contains(key) {
            return;
        }
        match self.delay_of.get(key) {
            Some(&cur) if cur <= at_ms => {}
            Some(&cur) => {
                self.delayed.remove(&(cur, key.to_string()));
                self.delayed.insert((at_ms, key.to_string()));
                self.delay_of.insert(key.to_string(), at_ms);
            }
            None => {
                self.delayed.insert((at_ms, key.to_string()));
                self.delay_of.insert(key.to_string(), at_ms);
            }
        }
    }

    /// Moves delayed keys due at `now_ms` to the ready list.
    pub fn promote(&mut self, now_ms: u64) {
        while let Some((at, _)) = self.delayed.first() {
            if *at > now_ms {
                break;
            }
            if let Some((_, key)) = self.delayed.pop_first() {
                self.delay_of.remove(&key);
                self.add(&key);
            }
        }
    }

    /// Takes the next ready key (after promoting due ones) and marks it processing.
    pub fn pop(&mut self, now_ms: u64) -> Option<String> {
        self.promote(now_ms);
        let key = self.ready.pop_front()?;
        self.queued.remove(&key);
        self.processing.insert(key.clone());
        Some(key)
    }

    /// Marks `key` processed; queues it again if it was added meanwhile.
    pub fn done(&mut self, key: &str) {
        self.processing.remove(key);
        if self.dirty.remove(key) {
            self.add(key);
        }
    }

    /// The earliest delayed time, if any.
    pub fn next_deadline(&self) -> Option<u64> {
        self.delayed.first().map(|(at, _)| *at)
    }

    /// Keys ready now.
    pub fn ready_len(&self) -> usize {
        self.ready.len()
    }

    /// Keys waiting for a later time (including due ones not yet promoted).
    pub fn delayed_len(&self) -> usize {
        self.delayed.len()
    }

    /// Keys being processed.
    pub fn processing_len(&self) -> usize {
        self.processing.len()
    }

    /// Whether nothing is ready, processing or delayed.
    pub fn is_idle(&self) -> bool {
        self.ready.is_empty() && self.processing.is_empty() && self.delayed.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deduplicates_and_delays() {
        let mut q = WorkQueue::new();
        q.add("a");
        q.add("a");
        q.add_at("b", 100);
        q.add_at("b", 50);
        q.add_at("b", 70);
        assert_eq!((q.ready_len(), q.delayed_len()), (1, 1));
        assert_eq!(q.pop(0).as_deref(), Some("a"));
        assert_eq!(q.pop(0), None);
        assert_eq!(q.next_deadline(), Some(50));
        assert_eq!(q.pop(50).as_deref(), Some("b"));
        assert_eq!(q.next_deadline(), None);
    }

    #[test]
    fn key_added_while_processing_comes_back_once() {
        let mut q = WorkQueue::new();
        q.add("a");
        let k = q.pop(0);
        assert_eq!(k.as_deref(), Some("a"));
        q.add("a");
        q.add("a");
        assert_eq!(q.pop(0), None, "not handed out twice while processing");
        q.done("a");
        assert_eq!(q.pop(0).as_deref(), Some("a"));
        q.done("a");
        assert!(q.is_idle());
    }

    #[test]
    fn immediate_add_supersedes_delay() {
        let mut q = WorkQueue::new();
        q.add_at("a", 1_000);
        q.add("a");
        assert_eq!(q.pop(0).as_deref(), Some("a"));
        q.done("a");
        assert!(q.is_idle());
    }
}
