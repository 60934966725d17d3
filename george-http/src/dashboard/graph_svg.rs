//! The step graph as inline SVG, from [`graph::layout`](super::graph::layout).

use maud::{Markup, html};

use super::graph::layout;
use super::layout::state_class;

const W: usize = 200;
const H: usize = 46;
const GAP_X: usize = 56;
const GAP_Y: usize = 18;
const PAD: usize = 8;

/// One node to draw: its id, its dependencies, its state word and a second line.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) id: String,
    pub(crate) deps: Vec<String>,
    pub(crate) state: String,
    pub(crate) detail: String,
}

/// Which `data-testid`s the picture carries (the job page's graph, or a template's).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ids {
    pub(crate) svg: &'static str,
    pub(crate) node: &'static str,
}

/// The job page's ids.
pub(crate) const JOB: Ids = Ids {
    svg: "step-graph",
    node: "step-node",
};
/// The catalogue's ids.
pub(crate) const TEMPLATE: Ids = Ids {
    svg: "template-graph",
    node: "template-step",
};

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

/// The graph of `nodes` as an `<svg>` labelled `label`.
pub(crate) fn render(nodes: &[Node], label: &str, ids: Ids) -> Markup {
    let steps: Vec<(&str, Vec<&str>)> = nodes
        .iter()
        .map(|n| (n.id.as_str(), n.deps.iter().map(String::as_str).collect()))
        .collect();
    let l = layout(&steps);
    let width = PAD * 2 + l.layers.max(1) * W + l.layers.saturating_sub(1) * GAP_X;
    let height = PAD * 2 + l.rows.max(1) * H + l.rows.saturating_sub(1) * GAP_Y;
    let x = |layer: usize| PAD + layer * (W + GAP_X);
    let y = |row: usize| PAD + row * (H + GAP_Y);
    let summary: Vec<String> = nodes
        .iter()
        .map(|n| format!("{} {}", n.id, n.state))
        .collect();
    let aria = format!("{label}: {}", summary.join(", "));
    html! {
        svg data-testid=(ids.svg) role="img" aria-label=(aria)
            viewBox={ "0 0 " (width) " " (height) } width=(width) height=(height)
            xmlns="http://www.w3.org/2000/svg" {
            title { (aria) }
            @for (a, b) in &l.edges {
                @let (pa, pb) = (&l.nodes[*a], &l.nodes[*b]);
                @let (x1, y1) = (x(pa.layer) + W, y(pa.row) + H / 2);
                @let (x2, y2) = (x(pb.layer), y(pb.row) + H / 2);
                @let mid = (x1 + x2) / 2;
                path.edge d={ "M" (x1) " " (y1) " C" (mid) " " (y1) " " (mid) " " (y2) " " (x2 - 6) " " (y2) } {}
                path.arrow d={ "M" (x2) " " (y2) " l-7 -4 v8 z" } {}
            }
            @for (i, n) in nodes.iter().enumerate() {
                @let p = &l.nodes[i];
                g data-testid=(ids.node) data-step=(n.id) data-state=(n.state)
                    transform={ "translate(" (x(p.layer)) " " (y(p.row)) ")" } {
                    rect class={ "node s-" (state_class(&n.state)) } width=(W) height=(H) rx="6" {}
                    text x="8" y="18" font-weight="600" { (clip(&n.id, 26)) }
                    text x="8" y="36" { (clip(&n.detail, 30)) }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, deps: &[&str], state: &str) -> Node {
        Node {
            id: id.into(),
            deps: deps.iter().map(|d| d.to_string()).collect(),
            state: state.into(),
            detail: String::new(),
        }
    }

    #[test]
    fn one_group_per_step_and_one_edge_per_dependency() {
        let nodes = [
            node("a", &[], "succeeded"),
            node("b", &["a"], "running"),
            node("c", &["a", "b"], "pending"),
        ];
        let svg = render(&nodes, "Step graph", JOB).into_string();
        assert_eq!(svg.matches("data-testid=\"step-node\"").count(), 3);
        assert!(svg.contains("data-step=\"b\" data-state=\"running\""));
        assert_eq!(svg.matches("class=\"edge\"").count(), 3);
        assert!(
            svg.contains(
                "role=\"img\" aria-label=\"Step graph: a succeeded, b running, c pending\""
            )
        );
        assert!(svg.contains("<title>Step graph: a succeeded, b running, c pending</title>"));
        let t = render(&nodes, "Steps", TEMPLATE).into_string();
        assert!(t.contains("data-testid=\"template-graph\"") && !t.contains("step-node"));
    }
}
