//! `LocalGitSource` against real repositories.

mod common;

use std::time::Duration;

use common::TestRepo;
use george_core::ErrorKind;
use george_core::git::{CommitId, GitSource};
use george_git::LocalGitSource;

fn id(oid: git2::Oid) -> CommitId {
    CommitId(oid.to_string())
}

fn paths(files: &[george_core::git::SourceFile]) -> Vec<&str> {
    files.iter().map(|f| f.path.as_str()).collect()
}

#[tokio::test]
async fn resolves_branches_tags_and_ids() {
    let t = TestRepo::new();
    let c1 = t.commit(&[("jobs/a.yaml", Some("a: 1\n"))], "one");
    let c2 = t.commit(&[("jobs/a.yaml", Some("a: 2\n"))], "two");
    let commit = t.repo.find_commit(c1).unwrap();
    t.repo
        .tag_lightweight("v1", commit.as_object(), false)
        .unwrap();
    let sig = git2::Signature::now("T", "t@example.com").unwrap();
    t.repo
        .tag("v1-annotated", commit.as_object(), &sig, "annotated", false)
        .unwrap();

    let source = LocalGitSource::open(t.path(), "main").unwrap();
    assert_eq!(source.branch(), "main");
    assert_eq!(source.resolve("main").await.unwrap(), id(c2));
    assert_eq!(source.head().await.unwrap(), id(c2));
    assert_eq!(source.resolve("v1").await.unwrap(), id(c1));
    assert_eq!(source.resolve("v1-annotated").await.unwrap(), id(c1));
    assert_eq!(source.resolve(&c1.to_string()).await.unwrap(), id(c1));
    assert_eq!(source.resolve("main~1").await.unwrap(), id(c1));
    assert_eq!(source.last_seen(), Some(id(c2)));

    for unknown in [
        "nope",
        "0123456789012345678901234567890123456789",
        "main..x",
    ] {
        let err = source.resolve(unknown).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{unknown}: {err}");
    }
    let err = source
        .read_manifests(&CommitId("not-hex".into()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn open_fails_without_repository() {
    let dir = tempfile::tempdir().unwrap();
    let err = LocalGitSource::open(dir.path(), "main").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

#[tokio::test]
async fn reads_manifests_at_commit_not_working_tree() {
    let t = TestRepo::new();
    let c1 = t.commit(
        &[
            ("agent-specs/coder.yaml", Some("kind: AgentSpec\n")),
            ("task-templates/review.yml", Some("kind: TaskTemplate\n")),
            ("jobs/team/nightly.yaml", Some("kind: Job\nv: 1\n")),
            ("jobs/README.md", Some("not a manifest")),
            ("src/lib.rs", Some("// code")),
            ("jobs.yaml", Some("not under jobs/")),
        ],
        "init",
    );
    let source = LocalGitSource::open(t.path(), "main").unwrap();
    let head = source.resolve("main").await.unwrap();
    assert_eq!(head, id(c1));

    // Uncommitted edits, staged or not, and untracked files are not seen.
    std::fs::write(
        t.path().join("jobs/team/nightly.yaml"),
        "kind: Job\nv: 999\n",
    )
    .unwrap();
    std::fs::write(t.path().join("jobs/untracked.yaml"), "kind: Job\n").unwrap();
    std::fs::remove_file(t.path().join("agent-specs/coder.yaml")).unwrap();
    let mut index = t.repo.index().unwrap();
    index
        .add_path(std::path::Path::new("jobs/untracked.yaml"))
        .unwrap();
    index.write().unwrap();

    let manifests = source.read_manifests(&head).await.unwrap();
    assert_eq!(
        paths(&manifests),
        [
            "agent-specs/coder.yaml",
            "jobs/team/nightly.yaml",
            "task-templates/review.yml"
        ]
    );
    assert_eq!(manifests[1].bytes, b"kind: Job\nv: 1\n");

    let files = source
        .read_files(
            &head,
            &[
                "src/lib.rs".to_owned(),
                "jobs/untracked.yaml".to_owned(),
                "jobs".to_owned(),
                "../escape".to_owned(),
            ],
        )
        .await
        .unwrap();
    assert_eq!(paths(&files), ["src/lib.rs"]);
    assert_eq!(files[0].bytes, b"// code");
}

#[tokio::test]
async fn reads_older_commits() {
    let t = TestRepo::new();
    let c1 = t.commit(&[("jobs/a.yaml", Some("v: 1\n"))], "one");
    let _c2 = t.commit(
        &[("jobs/a.yaml", None), ("jobs/b.yaml", Some("v: 2\n"))],
        "two",
    );
    let source = LocalGitSource::open(t.path(), "main").unwrap();
    let old = source.read_manifests(&id(c1)).await.unwrap();
    assert_eq!(paths(&old), ["jobs/a.yaml"]);
    let new = source
        .read_manifests(&source.head().await.unwrap())
        .await
        .unwrap();
    assert_eq!(paths(&new), ["jobs/b.yaml"]);
}

#[tokio::test]
async fn changed_paths_covers_add_modify_delete_rename() {
    let t = TestRepo::new();
    let c1 = t.commit(
        &[
            ("jobs/keep.yaml", Some("keep\n")),
            ("jobs/modify.yaml", Some("v: 1\n")),
            ("jobs/delete.yaml", Some("bye\n")),
            ("jobs/old-name.yaml", Some("a file that will be renamed\n")),
        ],
        "init",
    );
    let c2 = t.commit(
        &[
            ("jobs/modify.yaml", Some("v: 2\n")),
            ("jobs/delete.yaml", None),
            ("jobs/added.yaml", Some("new\n")),
        ],
        "edit",
    );
    let c3 = t.rename("jobs/old-name.yaml", "jobs/sub/new-name.yaml", "rename");
    let source = LocalGitSource::open(t.path(), "main").unwrap();

    assert_eq!(
        source.changed_paths(&id(c1), &id(c2)).await.unwrap(),
        ["jobs/added.yaml", "jobs/delete.yaml", "jobs/modify.yaml"]
    );
    assert_eq!(
        source.changed_paths(&id(c2), &id(c3)).await.unwrap(),
        ["jobs/old-name.yaml", "jobs/sub/new-name.yaml"]
    );
    assert_eq!(
        source.changed_paths(&id(c1), &id(c3)).await.unwrap(),
        [
            "jobs/added.yaml",
            "jobs/delete.yaml",
            "jobs/modify.yaml",
            "jobs/old-name.yaml",
            "jobs/sub/new-name.yaml"
        ]
    );
    // Symmetric, and empty for the same commit.
    assert_eq!(
        source.changed_paths(&id(c3), &id(c1)).await.unwrap().len(),
        5
    );
    assert!(
        source
            .changed_paths(&id(c3), &id(c3))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn refresh_notifies_only_when_head_moves() {
    let t = TestRepo::new();
    let c1 = t.commit(&[("jobs/a.yaml", Some("v: 1\n"))], "one");
    let source = LocalGitSource::open(t.path(), "main").unwrap();
    let mut rx = source.subscribe();
    assert_eq!(*rx.borrow_and_update(), Some(id(c1)));

    assert_eq!(source.refresh().await.unwrap(), None);
    assert!(!rx.has_changed().unwrap());

    let c2 = t.commit(&[("jobs/a.yaml", Some("v: 2\n"))], "two");
    // Not seen before a refresh.
    assert!(!rx.has_changed().unwrap());
    assert_eq!(source.refresh().await.unwrap(), Some(id(c2)));
    assert!(rx.has_changed().unwrap());
    assert_eq!(*rx.borrow_and_update(), Some(id(c2)));
    assert_eq!(source.last_seen(), Some(id(c2)));

    // Clones share the watched head.
    let clone = source.clone();
    let c3 = t.commit(&[("jobs/a.yaml", Some("v: 3\n"))], "three");
    clone.refresh().await.unwrap();
    assert_eq!(*rx.borrow_and_update(), Some(id(c3)));
}

#[tokio::test]
async fn empty_repository_starts_with_none() {
    let t = TestRepo::new();
    let source = LocalGitSource::open(t.path(), "main").unwrap();
    assert_eq!(*source.subscribe().borrow(), None);
    let err = source.refresh().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let c1 = t.commit(&[("jobs/a.yaml", Some("v: 1\n"))], "one");
    assert_eq!(source.refresh().await.unwrap(), Some(id(c1)));
}

#[tokio::test]
async fn poller_notices_commits_and_stops_on_drop() {
    let t = TestRepo::new();
    t.commit(&[("jobs/a.yaml", Some("v: 1\n"))], "one");
    let source = LocalGitSource::open(t.path(), "main").unwrap();
    let mut rx = source.subscribe();
    rx.borrow_and_update();

    let poller = source.spawn_poller(Duration::from_millis(20));
    let c2 = t.commit(&[("jobs/a.yaml", Some("v: 2\n"))], "two");
    tokio::time::timeout(Duration::from_secs(5), rx.changed())
        .await
        .expect("the poller noticed the commit")
        .unwrap();
    assert_eq!(*rx.borrow_and_update(), Some(id(c2)));

    poller.stop();
    // Let the abort take effect, then commit again: nobody polls any more.
    tokio::time::sleep(Duration::from_millis(50)).await;
    t.commit(&[("jobs/a.yaml", Some("v: 3\n"))], "three");
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(!rx.has_changed().unwrap());
    assert_eq!(source.last_seen(), Some(id(c2)));
}

#[tokio::test]
async fn bare_repositories_work_too() {
    let t = TestRepo::new();
    let c1 = t.commit(&[("jobs/a.yaml", Some("v: 1\n"))], "one");
    let bare = tempfile::tempdir().unwrap();
    git2::build::RepoBuilder::new()
        .bare(true)
        .clone(t.path().to_str().unwrap(), bare.path())
        .unwrap();
    let source = LocalGitSource::open(bare.path(), "main").unwrap();
    let head = source.head().await.unwrap();
    assert_eq!(head, id(c1));
    assert_eq!(source.read_manifests(&head).await.unwrap().len(), 1);
}

#[test]
fn source_is_send_sync() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<LocalGitSource>();
    assert_send_sync::<george_git::GitWriteTool>();
}

#[tokio::test]
async fn commit_author_is_the_author_not_the_committer() {
    let t = TestRepo::new();
    let first = t.commit(&[("jobs/a.yaml", Some("a: 1\n"))], "one");
    let tree = t.repo.find_commit(first).unwrap().tree().unwrap();
    let parent = t.repo.find_commit(first).unwrap();
    let ada = git2::Signature::now("Ada Lovelace", "ada@example.com").unwrap();
    let bot = git2::Signature::now("Merge Bot", "bot@example.com").unwrap();
    let second = t
        .repo
        .commit(Some("HEAD"), &ada, &bot, "two", &tree, &[&parent])
        .unwrap();

    let source = LocalGitSource::open(t.path(), "main").unwrap();
    assert_eq!(
        source.commit_author(&id(first)).await.unwrap().as_deref(),
        Some("Test <test@example.com>")
    );
    assert_eq!(
        source.commit_author(&id(second)).await.unwrap().as_deref(),
        Some("Ada Lovelace <ada@example.com>")
    );
    for unknown in ["0123456789012345678901234567890123456789", "not-hex"] {
        let err = source
            .commit_author(&CommitId(unknown.into()))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{unknown}: {err}");
    }
}
