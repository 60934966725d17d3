//! The layered layout of a step graph (the `depends_on` DAG): a pure function, so the
//! pictures are tested by tables, not by eye.
//!
//! Each step's layer is the length of the longest `depends_on` chain before it (roots in
//! layer 0), so every edge points to a later layer. Within a layer, steps are ordered by
//! the mean row of their dependencies (the barycenter heuristic, one pass left to right),
//! ties kept in template order, which keeps edges short and mostly uncrossed for the
//! graphs templates have. Unknown dependencies are ignored; steps on a cycle (which a
//! valid template cannot have) go to one last layer.

use std::collections::HashMap;

/// A step placed in the grid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// The step id.
    pub id: String,
    /// Its column: the longest chain of dependencies before it.
    pub layer: usize,
    /// Its row within the column (0 at the top).
    pub row: usize,
}

/// A laid-out graph.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    /// The steps, in the order given.
    pub nodes: Vec<Placed>,
    /// Edges as (dependency, dependent) indexes into `nodes`.
    pub edges: Vec<(usize, usize)>,
    /// How many columns.
    pub layers: usize,
    /// The most rows in a column.
    pub rows: usize,
}

/// Lays out `steps`, each an id with the ids it depends on, in template order.
pub fn layout<S: AsRef<str>>(steps: &[(S, Vec<S>)]) -> Layout {
    let n = steps.len();
    let index: HashMap<&str, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (id.as_ref(), i))
        .collect();
    let mut edges = Vec::new();
    let mut preds: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, (_, deps)) in steps.iter().enumerate() {
        for d in deps {
            if let Some(&j) = index.get(d.as_ref())
                && j != i
                && !preds[i].contains(&j)
            {
                preds[i].push(j);
                edges.push((j, i));
            }
        }
    }
    // Longest-path layering by Kahn's algorithm.
    let mut indegree: Vec<usize> = preds.iter().map(Vec::len).collect();
    let mut succs: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(a, b) in &edges {
        succs[a].push(b);
    }
    let mut layer = vec![0usize; n];
    let mut done = vec![false; n];
    let mut queue: Vec<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
    let mut head = 0;
    while head < queue.len() {
        let i = queue[head];
        head += 1;
        done[i] = true;
        for &s in &succs[i] {
            layer[s] = layer[s].max(layer[i] + 1);
            indegree[s] -= 1;
            if indegree[s] == 0 {
                queue.push(s);
            }
        }
    }
    let acyclic_layers = (0..n).filter(|&i| done[i]).map(|i| layer[i] + 1).max();
    let last = acyclic_layers.unwrap_or(0);
    for i in 0..n {
        if !done[i] {
            layer[i] = last;
        }
    }
    let layers = if n == 0 {
        0
    } else {
        layer.iter().max().map_or(0, |m| m + 1)
    };
    // Rows: barycenter of the dependencies' rows, column by column.
    let mut row = vec![0usize; n];
    let mut rows = 0;
    for l in 0..layers {
        let mut members: Vec<usize> = (0..n).filter(|&i| layer[i] == l).collect();
        let weight = |i: usize| -> f64 {
            let placed: Vec<usize> = preds[i].iter().copied().filter(|&p| layer[p] < l).collect();
            if placed.is_empty() {
                i as f64 / n.max(1) as f64 - 1.0
            } else {
                placed.iter().map(|&p| row[p] as f64).sum::<f64>() / placed.len() as f64
            }
        };
        members.sort_by(|&a, &b| {
            weight(a)
                .partial_cmp(&weight(b))
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(a.cmp(&b))
        });
        for (r, &i) in members.iter().enumerate() {
            row[i] = r;
        }
        rows = rows.max(members.len());
    }
    Layout {
        nodes: steps
            .iter()
            .enumerate()
            .map(|(i, (id, _))| Placed {
                id: id.as_ref().to_string(),
                layer: layer[i],
                row: row[i],
            })
            .collect(),
        edges,
        layers,
        rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn places(steps: &[(&str, Vec<&str>)]) -> Vec<(String, usize, usize)> {
        layout(steps)
            .nodes
            .into_iter()
            .map(|p| (p.id, p.layer, p.row))
            .collect()
    }

    fn p(id: &str, layer: usize, row: usize) -> (String, usize, usize) {
        (id.to_string(), layer, row)
    }

    #[test]
    fn table_of_layouts() {
        // (steps, expected (id, layer, row) in input order, layers, rows)
        #[allow(clippy::type_complexity)]
        let cases: Vec<(
            Vec<(&str, Vec<&str>)>,
            Vec<(String, usize, usize)>,
            usize,
            usize,
        )> = vec![
            (vec![], vec![], 0, 0),
            (vec![("a", vec![])], vec![p("a", 0, 0)], 1, 1),
            // a chain
            (
                vec![("a", vec![]), ("b", vec!["a"]), ("c", vec!["b"])],
                vec![p("a", 0, 0), p("b", 1, 0), p("c", 2, 0)],
                3,
                1,
            ),
            // a diamond: b and c in one column, d after both
            (
                vec![
                    ("a", vec![]),
                    ("b", vec!["a"]),
                    ("c", vec!["a"]),
                    ("d", vec!["b", "c"]),
                ],
                vec![p("a", 0, 0), p("b", 1, 0), p("c", 1, 1), p("d", 2, 0)],
                3,
                2,
            ),
            // longest path wins: d depends on a (layer 0) and c (layer 2)
            (
                vec![
                    ("a", vec![]),
                    ("b", vec!["a"]),
                    ("c", vec!["b"]),
                    ("d", vec!["a", "c"]),
                ],
                vec![p("a", 0, 0), p("b", 1, 0), p("c", 2, 0), p("d", 3, 0)],
                4,
                1,
            ),
            // two roots, children ordered by their parents' rows (barycenter)
            (
                vec![
                    ("x", vec![]),
                    ("y", vec![]),
                    ("from-y", vec!["y"]),
                    ("from-x", vec!["x"]),
                ],
                vec![
                    p("x", 0, 0),
                    p("y", 0, 1),
                    p("from-y", 1, 1),
                    p("from-x", 1, 0),
                ],
                2,
                2,
            ),
            // unknown and self dependencies are ignored
            (
                vec![("a", vec!["nope", "a"]), ("b", vec!["a", "a"])],
                vec![p("a", 0, 0), p("b", 1, 0)],
                2,
                1,
            ),
            // a cycle goes to a last column
            (
                vec![("a", vec![]), ("b", vec!["c"]), ("c", vec!["b"])],
                vec![p("a", 0, 0), p("b", 1, 0), p("c", 1, 1)],
                2,
                2,
            ),
        ];
        for (steps, want, layers, rows) in cases {
            let got = layout(&steps);
            assert_eq!(places(&steps), want, "{steps:?}");
            assert_eq!((got.layers, got.rows), (layers, rows), "{steps:?}");
        }
    }

    #[test]
    fn edges_point_forward_on_a_wide_graph() {
        let steps: Vec<(String, Vec<String>)> = (0..40)
            .map(|i| {
                let deps = if i == 0 {
                    vec![]
                } else {
                    vec![format!("s{}", i / 2)]
                };
                (format!("s{i}"), deps)
            })
            .collect();
        let l = layout(&steps);
        assert_eq!(l.edges.len(), 39);
        for (a, b) in l.edges {
            assert!(l.nodes[a].layer < l.nodes[b].layer);
        }
        // rows in a column are distinct
        let mut seen = std::collections::HashSet::new();
        for n in &l.nodes {
            assert!(seen.insert((n.layer, n.row)));
        }
    }
}
