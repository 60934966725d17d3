//! Builds the ops repository the workers follow, with the real `git` program.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

/// Runs `git` in `dir`; panics with its output when it fails (test support).
pub fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "test")
        .env("GIT_AUTHOR_EMAIL", "test@example.invalid")
        .env("GIT_COMMITTER_NAME", "test")
        .env("GIT_COMMITTER_EMAIL", "test@example.invalid")
        .output()
        .unwrap_or_else(|e| panic!("cannot run git {args:?}: {e}"));
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The shape of the workload: `jobs` jobs of `layers` × `width` steps; every step of a
/// layer depends on every step of the layer before.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    /// Number of jobs (`j000`, `j001`, …).
    pub jobs: usize,
    /// Layers of steps.
    pub layers: usize,
    /// Steps per layer (run in parallel).
    pub width: usize,
}

impl Workload {
    /// Steps per job.
    pub fn steps(&self) -> usize {
        self.layers * self.width
    }

    /// The job names.
    pub fn job_names(&self) -> Vec<String> {
        (0..self.jobs).map(job_name).collect()
    }

    /// The step ids of one job, in template order.
    pub fn step_ids(&self) -> Vec<String> {
        let mut ids = Vec::new();
        for l in 0..self.layers {
            for w in 0..self.width {
                ids.push(step_id(l, w));
            }
        }
        ids
    }
}

/// The name of job `i`.
pub fn job_name(i: usize) -> String {
    format!("j{i:03}")
}

fn step_id(layer: usize, slot: usize) -> String {
    format!("l{layer:02}s{slot}")
}

/// Writes the agent spec, the template and the jobs of `w` into a new Git repository
/// at `dir` (branch `main`) and commits them.
pub fn make_repo(dir: &Path, w: Workload) {
    std::fs::create_dir_all(dir.join("agent-specs")).expect("mkdir");
    std::fs::create_dir_all(dir.join("task-templates")).expect("mkdir");
    std::fs::create_dir_all(dir.join("jobs")).expect("mkdir");
    std::fs::write(
        dir.join("agent-specs/worker.yaml"),
        "apiVersion: george.dev/v1alpha1\nkind: AgentSpec\nmetadata: {name: worker}\n\
         spec: {provider: default, model: crash-worker, system_prompt: 'Do the work.', tools: [work]}\n",
    )
    .expect("write agent");
    let mut t = String::from(
        "apiVersion: george.dev/v1alpha1\nkind: TaskTemplate\nmetadata: {name: layered}\nspec:\n  steps:\n",
    );
    for l in 0..w.layers {
        for s in 0..w.width {
            let _ = write!(
                t,
                "    - {{id: {}, agent: worker, instructions: 'work on {}'",
                step_id(l, s),
                step_id(l, s)
            );
            if l > 0 {
                let deps: Vec<String> = (0..w.width).map(|d| step_id(l - 1, d)).collect();
                let _ = write!(t, ", depends_on: [{}]", deps.join(", "));
            }
            t.push_str(", retry: {attempts: 1000, backoff_ms: 10, max_backoff_ms: 50}}\n");
        }
    }
    std::fs::write(dir.join("task-templates/layered.yaml"), t).expect("write template");
    for name in w.job_names() {
        std::fs::write(
            dir.join(format!("jobs/{name}.yaml")),
            format!(
                "apiVersion: george.dev/v1alpha1\nkind: Job\nmetadata: {{name: {name}}}\nspec: {{template: layered}}\n"
            ),
        )
        .expect("write job");
    }
    commit_all(dir);
}

fn commit_all(dir: &Path) {
    git(dir, &["init", "-q", "-b", "main"]);
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "workload"]);
}

/// The step that plans (`approval: required`) in [`make_plan_repo`]'s template.
pub const PLAN_STEP: &str = "plan";
/// The step that runs the approved plan (`execute_approved: plan`).
pub const EXECUTE_STEP: &str = "execute";

/// Writes one job, `j000`, of two steps into a new Git repository at `dir` (branch
/// `main`) and commits it: `plan`, whose agent `planner` (tools: `apply`) submits a
/// plan a human must approve, then `execute`, which runs the approved plan.
pub fn make_plan_repo(dir: &Path) {
    std::fs::create_dir_all(dir.join("agent-specs")).expect("mkdir");
    std::fs::create_dir_all(dir.join("task-templates")).expect("mkdir");
    std::fs::create_dir_all(dir.join("jobs")).expect("mkdir");
    std::fs::write(
        dir.join("agent-specs/planner.yaml"),
        "apiVersion: george.dev/v1alpha1\nkind: AgentSpec\nmetadata: {name: planner}\n\
         spec: {provider: default, model: crash-planner, system_prompt: 'Plan the work.', tools: [apply]}\n",
    )
    .expect("write agent");
    let retry = "retry: {attempts: 1000, backoff_ms: 10, max_backoff_ms: 50}";
    std::fs::write(
        dir.join("task-templates/plan-execute.yaml"),
        format!(
            "apiVersion: george.dev/v1alpha1\nkind: TaskTemplate\nmetadata: {{name: plan-execute}}\nspec:\n  steps:\n\
             \x20   - {{id: {PLAN_STEP}, agent: planner, approval: required, instructions: 'plan the work', {retry}}}\n\
             \x20   - {{id: {EXECUTE_STEP}, depends_on: [{PLAN_STEP}], execute_approved: {PLAN_STEP}, {retry}}}\n"
        ),
    )
    .expect("write template");
    std::fs::write(
        dir.join(format!("jobs/{}.yaml", job_name(0))),
        format!(
            "apiVersion: george.dev/v1alpha1\nkind: Job\nmetadata: {{name: {}}}\nspec: {{template: plan-execute}}\n",
            job_name(0)
        ),
    )
    .expect("write job");
    commit_all(dir);
}
