//! The hash maps of the engine's hot paths (slots, counters, queues, caches): keyed by
//! job, step and agent names, looked up several times per step.
//!
//! They use [`foldhash`] (hashbrown's default hasher) instead of the standard
//! library's SipHash: about a quarter of SipHash's cost on these short keys, with a
//! per-process random seed. Keys come from the operator's repository and the engine,
//! not from an untrusted network peer.

/// A `HashMap` with [`foldhash`]'s fast, randomly seeded hasher.
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// A `HashSet` with [`foldhash`]'s fast, randomly seeded hasher.
pub(crate) type FastSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;
