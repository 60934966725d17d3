//! `LocalGitSource::commits_between`: how far one commit is behind another.

mod common;

use common::TestRepo;
use george_core::ErrorKind;
use george_core::git::{CommitId, GitSource};
use george_git::LocalGitSource;

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
