//! Prints George's three CRDs (`AgentSpec`, `TaskTemplate`, `Job` in `george.dev/v1alpha1`)
//! as one YAML stream, ready for `kubectl apply -f -`:
//!
//! ```text
//! cargo run -p george-k8s --example crds | kubectl apply --server-side -f -
//! ```
//!
//! The same YAML is committed under `deploy/crds/` (a test fails when it drifts).

fn main() {
    print!("{}", george_k8s::crd::all_yaml());
}
