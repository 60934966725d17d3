//! Reconcile-pass benchmarks over 1,000 / 10,000 / 100,000 jobs of 10 steps (in-memory):
//! a pass where nothing changed, a pass after one job's file changed (incremental manifest
//! update + reconcile of the affected jobs), a cold load of a 10,000-job commit, and the
//! memory held per idle job.
//!
//! Run: `cargo bench --bench reconcile`

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use george::git::SourceFile;
use george::manifest::ManifestSet;
use george::reconcile::{self, Action};
use george::state::{JobRecord, JobStatus, StepState};

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        LIVE.fetch_add(n as isize - l.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
}
#[global_allocator]
static A: Counting = Counting;

fn template() -> SourceFile {
    let mut s = String::from(
        "apiVersion: george.dev/v1alpha1\nkind: TaskTemplate\nmetadata: {name: ten}\nspec:\n  parameters:\n    - {name: n, type: integer}\n  steps:\n",
    );
    for i in 0..10 {
        s.push_str(&format!(
            "    - id: s{i}\n      command: {{program: 'true', args: ['{{{{ params.n }}}}']}}\n"
        ));
        if i > 0 {
            s.push_str(&format!("      depends_on: [s{}]\n", i - 1));
        }
    }
    SourceFile {
        path: "task-templates/ten.yaml".into(),
        bytes: s.into_bytes(),
    }
}

fn job_file(i: usize, n: usize) -> SourceFile {
    SourceFile {
        path: format!("jobs/j{i}.yaml"),
        bytes: format!(
            "apiVersion: george.dev/v1alpha1\nkind: Job\nmetadata: {{name: j{i}}}\nspec: {{template: ten, params: {{n: {n}}}}}\n"
        )
        .into_bytes(),
    }
}

fn files(jobs: usize) -> Vec<SourceFile> {
    let mut v = vec![template()];
    v.extend((0..jobs).map(|i| job_file(i, i)));
    v
}

/// Desired state plus observed records where every job is idle (all steps succeeded).
fn world(jobs: usize) -> (ManifestSet, Vec<(String, JobRecord)>) {
    let set = ManifestSet::load(files(jobs));
    assert!(set.errors.is_empty(), "{:?}", &set.errors[..1]);
    let mut obs = Vec::with_capacity(jobs);
    for (name, d) in &set.jobs {
        let create = reconcile::reconcile(Some(d), false, None, 0);
        let mut r = reconcile::new_record(name, &create[0], "c0", 0).expect("record");
        for s in r.steps_mut() {
            s.state = StepState::Succeeded;
            s.attempt = 1;
        }
        r.status = JobStatus::Succeeded;
        obs.push((name.clone(), r));
    }
    (set, obs)
}

fn pass(set: &ManifestSet, obs: &[(String, JobRecord)], now: u64) -> usize {
    let mut n = 0;
    for (name, rec) in obs {
        let d = set.jobs.get(name);
        let a: Vec<Action> = reconcile::reconcile(d, false, Some(rec), now);
        n += a.len();
    }
    n
}

fn bench_passes(c: &mut Criterion) {
    let mut g = c.benchmark_group("reconcile");
    g.sample_size(10);
    for &jobs in &[1_000usize, 10_000, 100_000] {
        let (mut set, obs) = world(jobs);
        g.bench_with_input(BenchmarkId::new("no_change_pass", jobs), &jobs, |b, _| {
            b.iter(|| assert_eq!(pass(black_box(&set), &obs, 1), 0))
        });
        let index: std::collections::HashMap<&str, &JobRecord> =
            obs.iter().map(|(n, r)| (n.as_str(), r)).collect();
        let mut flip = 0usize;
        g.bench_with_input(
            BenchmarkId::new("one_job_changed_pass", jobs),
            &jobs,
            |b, _| {
                b.iter(|| {
                    flip += 1;
                    let changed = job_file(jobs / 2, 1_000_000 + flip);
                    let keys = set.update(vec![changed], &[]);
                    let mut n = 0;
                    for k in &keys {
                        n += reconcile::reconcile(
                            set.jobs.get(k),
                            false,
                            index.get(k.as_str()).copied(),
                            1,
                        )
                        .len();
                    }
                    assert_eq!(keys.len(), 1);
                    black_box(n)
                })
            },
        );
    }
    g.finish();
}

fn bench_load(c: &mut Criterion) {
    let mut g = c.benchmark_group("manifests");
    g.sample_size(10);
    let f = files(10_000);
    g.bench_function("load_cold_10000_jobs", |b| {
        b.iter_batched(
            || f.clone(),
            |f| black_box(ManifestSet::load(f)),
            criterion::BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn memory_per_idle_job(_c: &mut Criterion) {
    let jobs = 100_000;
    let base = LIVE.load(Ordering::Relaxed);
    let set = ManifestSet::load(files(jobs));
    let after_desired = LIVE.load(Ordering::Relaxed);
    let (_, obs) = {
        let mut obs = Vec::with_capacity(jobs);
        for (name, d) in &set.jobs {
            let create = reconcile::reconcile(Some(d), false, None, 0);
            let mut r = reconcile::new_record(
                name,
                &create[0],
                "0123456789abcdef0123456789abcdef01234567",
                0,
            )
            .expect("record");
            for s in r.steps_mut() {
                s.state = StepState::Succeeded;
            }
            obs.push(r);
        }
        ((), obs)
    };
    let after_observed = LIVE.load(Ordering::Relaxed);
    let desired = (after_desired - base) as f64 / jobs as f64;
    let observed = (after_observed - after_desired) as f64 / jobs as f64;
    println!(
        "memory per idle job (10 steps, {jobs} jobs): observed record {observed:.0} B, desired state {desired:.0} B, total {:.0} B (target ≤ 2048 B)",
        observed + desired
    );
    black_box((set, obs));
}

criterion_group!(benches, bench_passes, bench_load, memory_per_idle_job);
criterion_main!(benches);
