//! Maps field paths (`spec.steps[1].depends_on[0]`) to source positions and back, by
//! walking the YAML event stream. Only run for files that have errors (and, in a
//! cheap early-stopping form, to read a document's `kind`).

use serde_saphyr::granit_parser::{Event, Marker, Parser};

/// A 1-based (line, column) position.
pub(crate) type Pos = (usize, usize);

fn pos(m: &Marker) -> Pos {
    (m.line().max(1), m.col() + 1)
}

/// One node of the document: a mapping value, a sequence item or the root.
#[derive(Debug)]
struct Node {
    path: String,
    key: Option<Pos>,
    value: Pos,
    scalar: Option<String>,
    is_mapping: bool,
    is_collection: bool,
    /// Where a collection ends (set when it closes).
    end: Option<Pos>,
}

enum Frame {
    Mapping {
        path: String,
        /// The key read, waiting for its value.
        key: Option<(String, Pos)>,
        /// Index of its node.
        node: usize,
    },
    Sequence {
        path: String,
        next: usize,
        node: usize,
    },
    /// A complex (non-scalar) mapping key: its content is skipped.
    ComplexKey { depth: usize, at: Pos },
}

fn join_key(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// The nodes of the first document of a YAML text, in document order.
#[derive(Debug, Default)]
pub(crate) struct Locator {
    nodes: Vec<Node>,
}

impl Locator {
    /// Walks the first document of `text` (stopping quietly at a syntax error: the nodes
    /// read so far are kept).
    pub(crate) fn new(text: &str) -> Locator {
        let mut nodes: Vec<Node> = Vec::new();
        let mut stack: Vec<Frame> = Vec::new();
        let mut seen_doc = false;
        for item in Parser::new_from_str(text) {
            let Ok((event, span)) = item else { break };
            let at = pos(&span.start);
            let (is_node, is_mapping, is_sequence, scalar) = match &event {
                Event::DocumentStart(..) => {
                    if seen_doc {
                        break;
                    }
                    seen_doc = true;
                    continue;
                }
                Event::DocumentEnd | Event::StreamEnd => {
                    if seen_doc {
                        break;
                    }
                    continue;
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    match stack.last_mut() {
                        Some(Frame::ComplexKey { depth, at }) => {
                            *depth -= 1;
                            if *depth == 0 {
                                let at = *at;
                                stack.pop();
                                if let Some(Frame::Mapping { key, .. }) = stack.last_mut() {
                                    *key = Some(("?".to_string(), at));
                                }
                            }
                        }
                        Some(Frame::Mapping { node, .. } | Frame::Sequence { node, .. }) => {
                            let node = *node;
                            if let Some(n) = nodes.get_mut(node) {
                                n.end = Some(pos(&span.end));
                            }
                            stack.pop();
                        }
                        None => {}
                    }
                    continue;
                }
                Event::Scalar(value, ..) => (true, false, false, Some(value.to_string())),
                Event::MappingStart(..) => (true, true, false, None),
                Event::SequenceStart(..) => (true, false, true, None),
                Event::Alias(..) => (true, false, false, None),
                _ => (false, false, false, None),
            };
            if !is_node {
                continue;
            }
            let opens = is_mapping || is_sequence;
            // Where does this node go?
            let (path, key) = match stack.last_mut() {
                Some(Frame::ComplexKey { depth, .. }) => {
                    if opens {
                        *depth += 1;
                    }
                    continue;
                }
                Some(Frame::Mapping { path, key, .. }) => match key.take() {
                    None => {
                        // This node is a key.
                        if opens {
                            stack.push(Frame::ComplexKey { depth: 1, at });
                        } else {
                            let name = scalar.unwrap_or_else(|| "?".to_string());
                            if let Some(Frame::Mapping { key, .. }) = stack.last_mut() {
                                *key = Some((name, at));
                            }
                        }
                        continue;
                    }
                    Some((name, key_at)) => (join_key(path, &name), Some(key_at)),
                },
                Some(Frame::Sequence { path, next, .. }) => {
                    let p = format!("{path}[{next}]");
                    *next += 1;
                    (p, None)
                }
                None => (String::new(), None),
            };
            let node = nodes.len();
            if is_mapping {
                stack.push(Frame::Mapping {
                    path: path.clone(),
                    key: None,
                    node,
                });
            } else if is_sequence {
                stack.push(Frame::Sequence {
                    path: path.clone(),
                    next: 0,
                    node,
                });
            }
            nodes.push(Node {
                path,
                key,
                value: at,
                scalar,
                is_mapping,
                is_collection: opens,
                end: None,
            });
        }
        Locator { nodes }
    }

    fn node(&self, path: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.path == path)
    }

    /// The scalar value at `path`, if there is one.
    pub(crate) fn scalar(&self, path: &str) -> Option<&str> {
        self.node(path).and_then(|n| n.scalar.as_deref())
    }

    /// Where the field at `path` is: its value when it starts on its key's line, else
    /// its key (a block collection or block scalar starts on the next line). A path
    /// that does not exist (a missing field) resolves to its nearest existing
    /// ancestor; the root is `1:1`.
    pub(crate) fn find(&self, path: &str) -> Pos {
        let mut p = path;
        loop {
            if let Some(n) = self.node(p) {
                return match n.key {
                    Some(k) if n.is_collection || k.0 != n.value.0 => k,
                    _ => n.value,
                };
            }
            match parent_path(p) {
                Some(parent) => p = parent,
                None => return (1, 1),
            }
        }
    }

    /// The path of the innermost mapping containing `at`.
    pub(crate) fn mapping_at(&self, at: Pos) -> Option<&str> {
        self.nodes
            .iter()
            .rev()
            .find(|n| n.is_mapping && n.value <= at && n.end.is_none_or(|e| at <= e))
            .map(|n| n.path.as_str())
    }

    /// The field path of the node at `at` (a key or a value; else the innermost node
    /// starting before it).
    pub(crate) fn path_at(&self, at: Pos) -> String {
        if let Some(n) = self.nodes.iter().find(|n| n.key == Some(at)) {
            return n.path.clone();
        }
        if let Some(n) = self.nodes.iter().rev().find(|n| n.value == at) {
            return n.path.clone();
        }
        // The innermost node that starts before the position.
        self.nodes
            .iter()
            .rev()
            .find(|n| n.key.unwrap_or(n.value) <= at)
            .map(|n| n.path.clone())
            .unwrap_or_default()
    }
}

/// The parent of a field path (`a.b[2]` → `a.b`, `a.b` → `a`, `a` → ``), or `None` for the root.
pub(crate) fn parent_path(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    if path.ends_with(']') {
        if let Some(i) = path.rfind('[') {
            return Some(&path[..i]);
        }
    }
    Some(path.rfind('.').map_or("", |i| &path[..i]))
}

/// The outcome of reading a document's top-level `kind`.
#[derive(Debug, PartialEq)]
pub(crate) enum KindScan {
    /// `kind: <string>` at this position.
    Found(String, Pos),
    /// `kind` exists but is not a scalar.
    NotScalar(Pos),
    /// The document is not a mapping, or has no `kind`.
    Missing,
    /// The YAML does not parse before `kind` was found.
    SyntaxError,
}

/// Reads the top-level `kind` of the first document, stopping as soon as it is found
/// (in manifests it is the first or second key: a handful of events).
pub(crate) fn scan_kind(text: &str) -> KindScan {
    let mut depth = 0usize;
    // At depth 1 (inside the root mapping): whether the next node is a key.
    let mut expect_key = true;
    let mut kind_key = false;
    for item in Parser::new_from_str(text) {
        let Ok((event, span)) = item else {
            return KindScan::SyntaxError;
        };
        match event {
            Event::StreamStart | Event::DocumentStart(..) => {}
            Event::DocumentEnd | Event::StreamEnd => return KindScan::Missing,
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                if depth == 0 && !matches!(event, Event::MappingStart(..)) {
                    return KindScan::Missing;
                }
                if depth == 1 && kind_key {
                    return KindScan::NotScalar(pos(&span.start));
                }
                // A collection as a key or value at depth 1 flips `expect_key` when it closes.
                depth += 1;
            }
            Event::MappingEnd | Event::SequenceEnd => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return KindScan::Missing;
                }
                if depth == 1 {
                    expect_key = !expect_key;
                }
            }
            Event::Scalar(value, ..) => {
                if depth == 0 {
                    return KindScan::Missing;
                }
                if depth == 1 {
                    if kind_key {
                        return KindScan::Found(value.to_string(), pos(&span.start));
                    }
                    if expect_key && value == "kind" {
                        kind_key = true;
                    }
                    expect_key = !expect_key;
                }
            }
            Event::Alias(..) if depth == 1 => {
                if kind_key {
                    return KindScan::NotScalar(pos(&span.start));
                }
                expect_key = !expect_key;
            }
            _ => {}
        }
    }
    KindScan::Missing
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "apiVersion: v1\nkind: Job\nmetadata:\n  name: x\nspec:\n  steps:\n    - id: a\n    - id: b\n      depends_on: [a, c]\n";

    #[test]
    fn finds_paths_and_positions() {
        let l = Locator::new(DOC);
        assert_eq!(l.scalar("metadata.name"), Some("x"));
        assert_eq!(l.find("kind"), (2, 7));
        assert_eq!(l.find("spec.steps"), (6, 3));
        assert_eq!(l.find("spec.steps[1].depends_on[1]"), (9, 23));
        assert_eq!(l.find("spec.steps[1].nothing"), (8, 7));
        assert_eq!(l.path_at((9, 7)), "spec.steps[1].depends_on");
        assert_eq!(l.path_at((8, 11)), "spec.steps[1].id");
        assert_eq!(l.mapping_at((9, 7)), Some("spec.steps[1]"));
        assert_eq!(l.mapping_at((4, 3)), Some("metadata"));
        assert_eq!(l.mapping_at((1, 1)), Some(""));
        assert_eq!(parent_path("a.b[2]"), Some("a.b"));
        assert_eq!(parent_path("a"), Some(""));
    }

    #[test]
    fn scans_kind() {
        assert_eq!(scan_kind(DOC), KindScan::Found("Job".into(), (2, 7)));
        assert_eq!(
            scan_kind("spec: {a: [1, {kind: x}]}\nkind: 'T'\n"),
            KindScan::Found("T".into(), (2, 7))
        );
        assert_eq!(
            scan_kind("? [a]\n: kind\nkind: Job\n"),
            KindScan::Found("Job".into(), (3, 7))
        );
        assert_eq!(scan_kind("kind: [a]\n"), KindScan::NotScalar((1, 7)));
        assert_eq!(scan_kind("a: 1\n"), KindScan::Missing);
        assert_eq!(scan_kind(""), KindScan::Missing);
        assert_eq!(scan_kind("- kind\n"), KindScan::Missing);
        assert_eq!(scan_kind("a: [\n"), KindScan::SyntaxError);
    }
}
