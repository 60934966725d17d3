//! The dependency graph of a template's steps: cycles, and which step depends
//! (directly or not) on which.

use std::cell::OnceCell;
use std::collections::HashMap;

use super::parse::Issue;
use crate::model::StepSpec;

/// Answers "does step `from` depend, directly or not, on step `to`?" for one template.
///
/// The transitive closure is computed once, on the first question, as one bit set per
/// step filled in topological order: O(n + e·n/64) word operations for n steps and e
/// edges (an 8,000-step chain: about a million), then O(1) per question. (It replaced
/// a walk per question, which made a chain whose steps all read the first step's
/// outputs quadratic.) Steps on a cycle get no ancestors; the cycle is reported
/// separately.
pub(super) struct Reach<'a> {
    steps: &'a [StepSpec],
    ids: &'a HashMap<&'a str, usize>,
    closure: OnceCell<Closure>,
}

struct Closure {
    words: usize,
    bits: Vec<u64>,
}

impl<'a> Reach<'a> {
    pub(super) fn new(steps: &'a [StepSpec], ids: &'a HashMap<&'a str, usize>) -> Self {
        Reach {
            steps,
            ids,
            closure: OnceCell::new(),
        }
    }

    /// Whether step `from` depends (directly or not) on step `to`.
    pub(super) fn depends(&self, from: usize, to: usize) -> bool {
        let c = self.closure.get_or_init(|| self.compute());
        c.bits
            .get(from * c.words + to / 64)
            .is_some_and(|w| w & (1u64 << (to % 64)) != 0)
    }

    fn compute(&self) -> Closure {
        let n = self.steps.len();
        let words = n.div_ceil(64).max(1);
        let mut bits = vec![0u64; n * words];
        // Kahn's algorithm over "dependency before dependent".
        let deps: Vec<Vec<usize>> = self
            .steps
            .iter()
            .map(|s| {
                s.depends_on
                    .iter()
                    .filter_map(|d| self.ids.get(d.as_str()).copied())
                    .collect()
            })
            .collect();
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut waiting: Vec<usize> = vec![0; n];
        for (i, ds) in deps.iter().enumerate() {
            waiting[i] = ds.len();
            for &d in ds {
                dependents[d].push(i);
            }
        }
        let mut ready: Vec<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
        while let Some(i) = ready.pop() {
            for &d in &deps[i] {
                // ancestors(i) |= ancestors(d) ∪ {d}; d is done (it was ready first).
                let (lo, hi) = (i.min(d), i.max(d));
                let (head, tail) = bits.split_at_mut(hi * words);
                let (row_lo, row_hi) =
                    (&mut head[lo * words..(lo + 1) * words], &mut tail[..words]);
                let (dst, src) = if i < d {
                    (row_lo, &*row_hi)
                } else {
                    (row_hi, &*row_lo)
                };
                for (a, b) in dst.iter_mut().zip(src) {
                    *a |= *b;
                }
                dst[d / 64] |= 1u64 << (d % 64);
            }
            for &j in &dependents[i] {
                waiting[j] -= 1;
                if waiting[j] == 0 {
                    ready.push(j);
                }
            }
        }
        Closure { words, bits }
    }
}

/// The first dependency cycle, as an issue on the `depends_on` of one of its steps.
pub(super) fn find_cycle(steps: &[StepSpec], ids: &HashMap<&str, usize>) -> Option<Issue> {
    // 0 = unvisited, 1 = on the current path, 2 = done. Iterative DFS.
    let mut color = vec![0u8; steps.len()];
    for root in 0..steps.len() {
        if color[root] != 0 {
            continue;
        }
        // (node, index of the next dependency to visit)
        let mut path: Vec<(usize, usize)> = vec![(root, 0)];
        color[root] = 1;
        while let Some(&mut (node, ref mut next)) = path.last_mut() {
            let deps = &steps[node].depends_on;
            if *next >= deps.len() {
                color[node] = 2;
                path.pop();
                continue;
            }
            let dep = &deps[*next];
            *next += 1;
            let Some(&d) = ids.get(dep.as_str()) else {
                continue;
            };
            match color[d] {
                0 => {
                    color[d] = 1;
                    path.push((d, 0));
                }
                1 => {
                    let start = path.iter().position(|(n, _)| *n == d).unwrap_or(0);
                    let mut names: Vec<&str> = path[start..]
                        .iter()
                        .map(|(n, _)| steps[*n].id.as_str())
                        .collect();
                    names.push(&steps[d].id);
                    return Some(Issue::new(
                        format!("spec.steps[{d}].depends_on"),
                        format!("dependency cycle: {}", names.join(" -> ")),
                    ));
                }
                _ => {}
            }
        }
    }
    None
}
