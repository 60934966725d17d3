//! `RemoteGitSource` against real Git servers on loopback: `git daemon` (git://) and
//! `git http-backend` behind lighttpd (http:// and, with TLS, https://) and sshd
//! (ssh://), all started by `.ci/run`, plus file:// and a private `git daemon` each
//! test can stop.

mod remote_support;

use std::time::Duration;

use george_core::ErrorKind;
use george_core::git::{CommitId, GitSource};
use george_git::{Follow, Remote, RemoteConfig, RemoteGitSource};
use remote_support::{Daemon, Work, bare, git, served_by, servers, wait_for_head};

const LIMIT: Duration = Duration::from_secs(15);

fn id(s: &str) -> CommitId {
    CommitId(s.to_owned())
}

fn main_of(url: &str, cache: &std::path::Path) -> RemoteConfig {
    RemoteConfig::new(url, Follow::Branch("main".into())).cache_root(cache)
}

/// Clone, read at a commit, fetch a new push, diff: the same over every transport.
async fn clone_and_fetch(fetch_url: &str, push_url: &str) {
    let work = Work::new(push_url);
    let c1 = work.commit_push(
        &[
            ("jobs/a.yaml", Some("kind: Job\n")),
            ("README.md", Some("hi\n")),
        ],
        "one",
    );
    let cache = tempfile::tempdir().unwrap();
    let source = RemoteGitSource::open(main_of(fetch_url, cache.path()))
        .await
        .unwrap();
    assert_eq!(source.last_seen(), Some(id(&c1)), "{fetch_url}");
    assert_eq!(source.resolve("main").await.unwrap(), id(&c1));
    assert_eq!(
        source.commit_author(&id(&c1)).await.unwrap().as_deref(),
        Some("Test <test@example.com>"),
        "the author of the fetched commit"
    );
    let manifests = source.read_manifests(&id(&c1)).await.unwrap();
    assert_eq!(manifests.len(), 1);
    assert_eq!(manifests[0].path, "jobs/a.yaml");
    assert!(source.cache_path().starts_with(cache.path()));
    let bare = git2::Repository::open_bare(source.cache_path()).unwrap();
    assert!(
        bare.remotes().unwrap().is_empty(),
        "no URL stored in the cache"
    );

    assert_eq!(source.refresh().await.unwrap(), None, "nothing new");
    let c2 = work.commit_push(&[("jobs/b.yaml", Some("kind: Job\n"))], "two");
    assert_eq!(source.refresh().await.unwrap(), Some(id(&c2)));
    assert_eq!(source.resolve("main").await.unwrap(), id(&c2));
    assert_eq!(
        source.changed_paths(&id(&c1), &id(&c2)).await.unwrap(),
        ["jobs/b.yaml"]
    );
    let files = source
        .read_files(&id(&c2), &["jobs/b.yaml".into(), "nope".into()])
        .await
        .unwrap();
    assert_eq!(files.len(), 1);

    // A second source on the same cache starts from what is cached.
    let again = RemoteGitSource::new(main_of(fetch_url, cache.path())).unwrap();
    assert_eq!(again.last_seen(), Some(id(&c2)));
    assert_eq!(again.cache_path(), source.cache_path());
}

#[tokio::test]
async fn clones_and_fetches_over_git_daemon() {
    let Some(s) = servers("clones_and_fetches_over_git_daemon") else {
        return;
    };
    let name = bare(&s.root, "daemon");
    let url = format!("{}/{name}", s.daemon);
    clone_and_fetch(&url, &url).await;
}

#[tokio::test]
async fn clones_and_fetches_over_smart_http() {
    let Some(s) = servers("clones_and_fetches_over_smart_http") else {
        return;
    };
    let name = bare(&s.root, "http");
    let url = format!("{}/{name}", s.http);
    clone_and_fetch(&url, &url).await;
}

/// Over https:// (TLS, the `git` program): pushes over https:// too.
#[tokio::test]
async fn clones_and_fetches_over_https() {
    let Some((root, base)) =
        served_by("GEORGE_TEST_GIT_HTTPS_URL", "clones_and_fetches_over_https")
    else {
        return;
    };
    let url = format!("{base}/{}", bare(&root, "https"));
    clone_and_fetch(&url, &url).await;
}

/// Over ssh:// (the `git` program): pushes over ssh:// too.
#[tokio::test]
async fn clones_and_fetches_over_ssh() {
    let Some((root, base)) = served_by("GEORGE_TEST_GIT_SSH_URL", "clones_and_fetches_over_ssh")
    else {
        return;
    };
    let url = format!("{base}/{}", bare(&root, "ssh"));
    clone_and_fetch(&url, &url).await;
}

#[tokio::test]
async fn clones_and_fetches_over_file_urls() {
    let root = tempfile::tempdir().unwrap();
    let name = bare(root.path(), "file");
    let path = root.path().join(&name);
    clone_and_fetch(
        &format!("file://{}", path.display()),
        &path.display().to_string(),
    )
    .await;
}

#[tokio::test]
async fn the_poller_sees_a_push() {
    let Some(s) = servers("the_poller_sees_a_push") else {
        return;
    };
    let name = bare(&s.root, "poll");
    let work = Work::new(&format!("{}/{name}", s.http));
    work.commit_push(&[("jobs/a.yaml", Some("a\n"))], "one");
    let cache = tempfile::tempdir().unwrap();
    let source =
        RemoteGitSource::new(main_of(&format!("{}/{name}", s.daemon), cache.path())).unwrap();
    assert_eq!(source.last_seen(), None, "new() does not fetch");
    let mut heads = source.subscribe();
    let _poller = source.spawn_poller(Duration::from_millis(50), Duration::from_millis(25));
    let c1 = git(work.dir.path(), &["rev-parse", "HEAD"]);
    assert!(wait_for_head(&mut heads, &c1, LIMIT).await, "first fetch");
    let c2 = work.commit_push(&[("jobs/a.yaml", Some("b\n"))], "two");
    assert!(wait_for_head(&mut heads, &c2, LIMIT).await, "the push");
    assert_eq!(source.fetch_stats().consecutive_failures, 0);
}

#[tokio::test]
async fn follows_a_tag_and_a_pinned_commit() {
    let Some(s) = servers("follows_a_tag_and_a_pinned_commit") else {
        return;
    };
    let name = bare(&s.root, "tags");
    let url = format!("{}/{name}", s.daemon);
    let work = Work::new(&url);
    let c1 = work.commit_push(&[("jobs/a.yaml", Some("1\n"))], "one");
    git(work.dir.path(), &["tag", "-a", "-m", "release", "v1"]);
    work.push("refs/tags/v1");
    let c2 = work.commit_push(&[("jobs/a.yaml", Some("2\n"))], "two");
    let cache = tempfile::tempdir().unwrap();

    let tag = RemoteGitSource::open(
        RemoteConfig::new(&url, Follow::Tag("v1".into())).cache_root(cache.path()),
    )
    .await
    .unwrap();
    assert_eq!(
        tag.last_seen(),
        Some(id(&c1)),
        "an annotated tag peels to its commit"
    );
    assert_eq!(tag.resolve(&tag.reference()).await.unwrap(), id(&c1));
    assert_eq!(tag.refresh().await.unwrap(), None);
    git(work.dir.path(), &["tag", "-f", "-a", "-m", "moved", "v1"]);
    work.push("+refs/tags/v1");
    assert_eq!(tag.refresh().await.unwrap(), Some(id(&c2)), "a moved tag");

    let fresh = tempfile::tempdir().unwrap();
    let pinned = RemoteGitSource::open(
        RemoteConfig::new(&url, Follow::Commit(c1.clone())).cache_root(fresh.path()),
    )
    .await
    .unwrap();
    assert_eq!(pinned.last_seen(), Some(id(&c1)));
    assert_eq!(pinned.resolve(&pinned.reference()).await.unwrap(), id(&c1));
    work.commit_push(&[("jobs/a.yaml", Some("3\n"))], "three");
    assert_eq!(pinned.refresh().await.unwrap(), None);
    assert_eq!(
        pinned.fetch_stats().attempts,
        1,
        "a pinned commit is fetched once"
    );
    // On a cache that already holds it, not even once.
    let cached = RemoteGitSource::open(
        RemoteConfig::new(&url, Follow::Commit(c1.clone())).cache_root(cache.path()),
    )
    .await
    .unwrap();
    assert_eq!(cached.last_seen(), Some(id(&c1)));
    assert_eq!(cached.fetch_stats().attempts, 0);

    let other = tempfile::tempdir().unwrap();
    let missing = "0123456789012345678901234567890123456789".to_owned();
    let err = RemoteGitSource::open(
        RemoteConfig::new(&url, Follow::Commit(missing)).cache_root(other.path()),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

#[tokio::test]
async fn a_shallow_first_clone_then_fetches_what_is_new() {
    let Some(s) = servers("a_shallow_first_clone_then_fetches_what_is_new") else {
        return;
    };
    let name = bare(&s.root, "shallow");
    let url = format!("{}/{name}", s.daemon);
    let work = Work::new(&url);
    for i in 0..5 {
        work.commit(&[("jobs/a.yaml", Some(&format!("{i}\n")))], "old");
    }
    let head = work.commit_push(&[("jobs/b.yaml", Some("b\n"))], "head");
    let cache = tempfile::tempdir().unwrap();
    let source = RemoteGitSource::open(main_of(&url, cache.path()).depth(1))
        .await
        .unwrap();
    assert_eq!(source.last_seen(), Some(id(&head)));
    let repo = git2::Repository::open_bare(source.cache_path()).unwrap();
    assert!(repo.is_shallow(), "depth 1 makes a shallow cache");
    let mut walk = repo.revwalk().unwrap();
    walk.push_head().unwrap();
    assert_eq!(walk.count(), 1, "only the head commit was fetched");

    let next = work.commit_push(&[("jobs/c.yaml", Some("c\n"))], "next");
    assert_eq!(source.refresh().await.unwrap(), Some(id(&next)));
    assert_eq!(
        source.changed_paths(&id(&head), &id(&next)).await.unwrap(),
        ["jobs/c.yaml"]
    );
}

#[tokio::test]
async fn an_unreachable_remote_backs_off_and_cached_reads_keep_working() {
    let root = tempfile::tempdir().unwrap();
    let name = bare(root.path(), "down");
    let mut daemon = Daemon::start(root.path());
    let url = format!("{}/{name}", daemon.url());
    let work = Work::new(&root.path().join(&name).display().to_string());
    let c1 = work.commit_push(&[("jobs/a.yaml", Some("kind: Job\n"))], "one");
    let cache = tempfile::tempdir().unwrap();
    let config = main_of(&url, cache.path()).max_backoff(Duration::from_millis(320));
    let source = RemoteGitSource::open(config.clone()).await.unwrap();
    assert_eq!(source.last_seen(), Some(id(&c1)));

    daemon.stop();
    let err = source.refresh().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Backend, "{err}");
    assert!(err.is_retryable(), "{err}");
    // Reads are served from the cache meanwhile.
    assert_eq!(source.resolve("main").await.unwrap(), id(&c1));
    assert_eq!(source.read_manifests(&id(&c1)).await.unwrap().len(), 1);
    // A restart with the remote down starts on the cached commit.
    let restarted = RemoteGitSource::open(config).await.unwrap();
    assert_eq!(restarted.last_seen(), Some(id(&c1)));

    // The poller backs off: 20, 40, 80, 160, 320, 320, ... ms (+ up to 10 ms of jitter),
    // about 9 attempts in 2 s where a fixed 20 ms interval would make about 100.
    let mut heads = source.subscribe();
    let before = source.fetch_stats().attempts;
    let poller = source.spawn_poller(Duration::from_millis(20), Duration::from_millis(10));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stats = source.fetch_stats();
    let tries = stats.attempts - before;
    assert!(
        (4..=14).contains(&tries),
        "{tries} attempts in 2 s: {stats:?}"
    );
    assert!(stats.consecutive_failures >= 4, "{stats:?}");
    assert!(stats.last_error.is_some());

    // The remote comes back with a new commit: the poller catches up.
    let c2 = work.commit_push(&[("jobs/a.yaml", Some("kind: Job # 2\n"))], "two");
    daemon.restart();
    assert!(
        wait_for_head(&mut heads, &c2, LIMIT).await,
        "{:?}",
        source.fetch_stats()
    );
    assert_eq!(source.fetch_stats().consecutive_failures, 0);
    drop(poller);
}

#[tokio::test]
async fn credentials_never_appear_in_errors_or_debug_output() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let cache = tempfile::tempdir().unwrap();
    let mut urls = vec![
        format!("http://alice:s3cret-pass@127.0.0.1:{closed}/x.git"),
        format!("https://alice:s3cret-pass@127.0.0.1:{closed}/x.git"),
    ];
    if let Some(s) = servers("credentials_never_appear_in_errors (the http part)") {
        let with_creds = s.http.replacen("http://", "http://alice:s3cret-pass@", 1);
        urls.push(format!("{with_creds}/no-such-repo.git"));
    }
    for url in urls {
        // A password over plain http:// needs the operator's consent (see boundaries_git.rs).
        let remote = Remote::new(&url).with_allow_insecure_http(true);
        let config = RemoteConfig::from_remote(remote, Follow::Branch("main".into()));
        let source = RemoteGitSource::new(config.cache_root(cache.path())).unwrap();
        assert!(!format!("{source:?}").contains("s3cret"), "{source:?}");
        assert!(!source.url().contains("s3cret"));
        let err = source.refresh().await.unwrap_err();
        let text = format!("{err} / {err:?}");
        assert!(!text.contains("s3cret"), "{text}");
        assert!(
            text.contains("//127.0.0.1:"),
            "the URL is named, without its credentials: {text}"
        );
        let stats = source.fetch_stats();
        assert!(!stats.last_error.unwrap_or_default().contains("s3cret"));
    }
}

#[test]
fn bad_configurations_are_refused() {
    let cache = tempfile::tempdir().unwrap();
    let bad = |url: &str, follow: Follow| {
        RemoteGitSource::new(RemoteConfig::new(url, follow).cache_root(cache.path()))
            .unwrap_err()
            .kind()
    };
    assert_eq!(
        bad("ftp://h/x.git", Follow::Branch("main".into())),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        bad("git://h/x.git", Follow::Branch("a b".into())),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        bad("git://h/x.git", Follow::Commit("abc".into())),
        ErrorKind::InvalidInput
    );
}
