//! Validation of one large template: a chain of 1,000 / 8,000 steps in which every
//! step reads the first step's outputs (each read asks "does this step depend,
//! transitively, on the first?"). Linear in the steps since the transitive closure is
//! computed once (it was quadratic: ~1.8 s for 8,000 steps in release).
//!
//! Run: `cargo bench --bench validate`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use george::git::SourceFile;
use george::manifest::ManifestSet;

fn chain(n: usize) -> SourceFile {
    let mut t = String::from(
        "apiVersion: george.dev/v1alpha1\nkind: TaskTemplate\nmetadata: {name: t}\nspec:\n  steps:\n    - {id: s0, command: {program: echo, args: [x]}}\n",
    );
    for i in 1..n {
        t.push_str(&format!(
            "    - {{id: s{i}, depends_on: [s{}], command: {{program: echo, args: [\"{{{{ steps.s0.outputs.x }}}}\"]}}}}\n",
            i - 1
        ));
    }
    SourceFile {
        path: "task-templates/t.yaml".into(),
        bytes: t.into(),
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("validate_chain");
    g.sample_size(10);
    for n in [1_000usize, 8_000] {
        let file = chain(n);
        let set = ManifestSet::load(vec![file.clone()]);
        assert!(set.errors.is_empty(), "{:?}", set.errors.first());
        g.bench_with_input(BenchmarkId::from_parameter(n), &file, |b, f| {
            b.iter(|| black_box(ManifestSet::load(vec![f.clone()])));
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
