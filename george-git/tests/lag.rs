//! `commits_between` of `LocalGitSource` and `RemoteGitSource`: how far one commit is
//! behind another.

mod common;
mod remote_support;

use common::TestRepo;
use george_core::ErrorKind;
use george_core::git::{CommitId, GitSource};
use george_git::{Follow, LocalGitSource, RemoteConfig, RemoteGitSource};
use remote_support::{Work, bare};

fn id(oid: git2::Oid) -> CommitId {
    CommitId(oid.to_string())
}

#[tokio::test]
async fn counts_the_commits_the_head_has_and_the_older_commit_has_not() {
    let t = TestRepo::new();
    let c1 = id(t.commit(&[("jobs/a.yaml", Some("a: 1\n"))], "one"));
    let c2 = id(t.commit(&[("jobs/a.yaml", Some("a: 2\n"))], "two"));
    let c3 = id(t.commit(&[("jobs/b.yaml", Some("b: 1\n"))], "three"));
    let source = LocalGitSource::open(t.path(), "main").unwrap();
    let n = |a: &CommitId, b: &CommitId| {
        let (a, b, s) = (a.clone(), b.clone(), source.clone());
        async move { s.commits_between(&a, &b).await.unwrap() }
    };
    assert_eq!(n(&c1, &c3).await, Some(2));
    assert_eq!(n(&c2, &c3).await, Some(1));
    assert_eq!(n(&c3, &c3).await, Some(0));
    assert_eq!(n(&c3, &c1).await, Some(0), "an ancestor is not behind");
    let unknown = CommitId("0123456789012345678901234567890123456789".into());
    let err = source.commits_between(&unknown, &c3).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

#[tokio::test]
async fn a_remote_source_counts_in_its_fetched_copy() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join(bare(root.path(), "lag"));
    let work = Work::new(&path.display().to_string());
    let c1 = CommitId(work.commit_push(&[("jobs/a.yaml", Some("a: 1\n"))], "one"));
    let cache = tempfile::tempdir().unwrap();
    let config = RemoteConfig::new(
        format!("file://{}", path.display()),
        Follow::Branch("main".into()),
    )
    .cache_root(cache.path());
    let source = RemoteGitSource::open(config).await.unwrap();
    work.commit_push(&[("jobs/a.yaml", Some("a: 2\n"))], "two");
    let c3 = CommitId(work.commit_push(&[("jobs/a.yaml", Some("a: 3\n"))], "three"));
    assert_eq!(source.refresh().await.unwrap(), Some(c3.clone()));
    assert_eq!(source.commits_between(&c1, &c3).await.unwrap(), Some(2));
    assert_eq!(source.commits_between(&c3, &c1).await.unwrap(), Some(0));
}
