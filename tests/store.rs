//! The directory store through its API: watch, conflicts, round trips.

use epoxy::api::{
    Kind, Object, Resource, ResourceKey, StaticHost, StaticUpstream, UpstreamSpec, parse_one,
};
use epoxy::store::dir::DirStore;
use epoxy::store::{Precondition, Store, StoreError};
use std::time::{Duration, Instant};

fn upstream(name: &str, port: u32) -> Resource {
    Resource::Upstream(Object::new(
        Kind::Upstream,
        "gloo-system",
        name,
        UpstreamSpec {
            static_: Some(StaticUpstream {
                hosts: vec![StaticHost {
                    addr: "127.0.0.1".into(),
                    port,
                    extra: Default::default(),
                }],
                ..Default::default()
            }),
            ..Default::default()
        },
    ))
}

#[tokio::test]
async fn external_edit_is_seen_by_a_watcher_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let store = DirStore::open(dir.path()).unwrap();
    store
        .put(upstream("a", 1), Precondition::Any)
        .await
        .unwrap();
    let mut rx = store.watch();
    assert_eq!(rx.borrow_and_update().resources.len(), 1);

    // Another program edits a file and adds one.
    let path = dir.path().join("upstreams/gloo-system/a.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("port: 1", "port: 2");
    let started = Instant::now();
    std::fs::write(&path, text).unwrap();
    std::fs::create_dir_all(dir.path().join("upstreams/team")).unwrap();
    std::fs::write(
        dir.path().join("upstreams/team/b.yaml"),
        "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: b}\nspec: {static: {hosts: [{addr: h, port: 3}]}}\n",
    )
    .unwrap();
    loop {
        tokio::time::timeout(
            Duration::from_secs(1).saturating_sub(started.elapsed()),
            rx.changed(),
        )
        .await
        .expect("watcher did not see the edit within a second")
        .unwrap();
        let l = rx.borrow_and_update().clone();
        let a = l
            .resources
            .get(&ResourceKey::new(Kind::Upstream, "gloo-system", "a"));
        let port = match a {
            Some(Resource::Upstream(u)) => u.spec.static_.as_ref().unwrap().hosts[0].port,
            _ => 0,
        };
        if port == 2
            && l.resources
                .contains_key(&ResourceKey::new(Kind::Upstream, "team", "b"))
        {
            break;
        }
    }
    // A deletion by hand is seen too, and a corrupt file is reported, not dropped silently.
    std::fs::remove_file(&path).unwrap();
    std::fs::write(dir.path().join("upstreams/team/c.yaml"), "kind: [").unwrap();
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        tokio::time::timeout(deadline - Instant::now(), rx.changed())
            .await
            .expect("deletion not seen")
            .unwrap();
        let l = rx.borrow_and_update().clone();
        if l.resources.len() == 1 && l.errors.len() == 1 {
            assert!(l.errors[0].origin.ends_with("c.yaml"));
            break;
        }
    }
}

#[tokio::test]
async fn a_write_that_lost_the_race_gets_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let one = DirStore::open(dir.path()).unwrap();
    let two = DirStore::open(dir.path()).unwrap();
    one.put(upstream("a", 1), Precondition::Absent)
        .await
        .unwrap();
    let key = ResourceKey::new(Kind::Upstream, "gloo-system", "a");
    let read1 = one.get(&key).await.unwrap();
    let read2 = two.get(&key).await.unwrap();
    assert_eq!(read1.resource_version(), read2.resource_version());

    let mut w1 = read1.clone();
    if let Resource::Upstream(u) = &mut w1 {
        u.spec.static_.as_mut().unwrap().hosts[0].port = 10;
    }
    let mut w2 = read2.clone();
    if let Resource::Upstream(u) = &mut w2 {
        u.spec.static_.as_mut().unwrap().hosts[0].port = 20;
    }
    let pre1 = Precondition::from_read(&read1);
    let pre2 = Precondition::from_read(&read2);
    let stored = one.put(w1, pre1).await.unwrap();
    match two.put(w2, pre2).await {
        Err(StoreError::Conflict { key: k, .. }) => assert_eq!(k, key),
        other => panic!("expected a conflict, got {other:?}"),
    }
    // The winner's write is what is stored.
    let now = two.get(&key).await.unwrap();
    assert_eq!(now, stored);
    // Create-only refuses an existing resource; delete with a stale version is refused.
    assert!(matches!(
        one.put(upstream("a", 1), Precondition::Absent).await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert!(matches!(
        one.delete(&key, Precondition::Version("stale".into()))
            .await,
        Err(StoreError::Conflict { .. })
    ));
    one.delete(&key, Precondition::from_read(&now))
        .await
        .unwrap();
    assert!(matches!(one.get(&key).await, Err(StoreError::NotFound(_))));
}

#[tokio::test]
async fn names_that_would_escape_the_directory_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = DirStore::open(dir.path().join("s")).unwrap();
    for bad in ["../x", "a/b", ".hidden"] {
        let err = store
            .put(upstream(bad, 1), Precondition::Any)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{bad}: {err}");
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[tokio::test]
async fn examples_round_trip_through_the_store_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let store = DirStore::open(dir.path()).unwrap();
    for f in ["upstreams.yaml", "virtualservices.yaml"] {
        let text =
            std::fs::read_to_string(format!("{}/tests/fixtures/{f}", env!("CARGO_MANIFEST_DIR")))
                .unwrap();
        for r in epoxy::api::parse_resources(&text, f).unwrap() {
            let stored = store.put(r.clone(), Precondition::Any).await.unwrap();
            let back = store.get(&r.key()).await.unwrap();
            assert_eq!(back, stored);
            let mut plain = back.clone();
            plain.meta_mut().resource_version = None;
            assert_eq!(plain, r, "{} changed on the way through the store", r.key());
            // And the file itself parses back to the same resource.
            let file = std::fs::read_to_string(store.path_of(&r.key())).unwrap();
            let mut reparsed = parse_one(&file, "file").unwrap();
            reparsed.meta_mut().resource_version = None;
            assert_eq!(reparsed, r);
        }
    }
}

/// A batch write: each resource with its own precondition, one refused without the others
/// being lost, no temporary file left behind, every version readable back.
#[tokio::test]
async fn a_batch_writes_each_resource_and_refuses_only_the_stale_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = DirStore::open(dir.path()).unwrap();
    let old = store
        .put(upstream("b", 1), Precondition::Any)
        .await
        .unwrap();
    store
        .put(upstream("b", 2), Precondition::Any)
        .await
        .unwrap();
    let results = store
        .put_many(vec![
            (upstream("a", 10), Precondition::Absent),
            (upstream("b", 11), Precondition::from_read(&old)),
            (upstream("c", 12), Precondition::Any),
        ])
        .await;
    assert_eq!(results.len(), 3);
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    assert!(
        matches!(results[1], Err(StoreError::Conflict { .. })),
        "{results:?}"
    );
    let listing = store.list().await.unwrap();
    let port = |name: &str| match &listing.resources
        [&ResourceKey::new(Kind::Upstream, "gloo-system", name)]
    {
        Resource::Upstream(u) => u.spec.static_.as_ref().unwrap().hosts[0].port,
        _ => 0,
    };
    assert_eq!((port("a"), port("b"), port("c")), (10, 2, 12));
    for r in results.iter().flatten() {
        assert_eq!(
            store.get(&r.key()).await.unwrap().resource_version(),
            r.resource_version()
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("upstreams/gloo-system"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn an_apply_validated_against_a_snapshot_never_overwrites_a_later_change() {
    let dir = tempfile::tempdir().unwrap();
    let store = DirStore::open(dir.path()).unwrap();
    store
        .put(upstream("b", 1), Precondition::Any)
        .await
        .unwrap();
    // The batch is validated against this snapshot...
    let snapshot = store.list().await.unwrap().resources;
    // ...and someone changes `b` (and creates `c`) before it is written.
    store
        .put(upstream("b", 2), Precondition::Any)
        .await
        .unwrap();
    store
        .put(upstream("c", 3), Precondition::Any)
        .await
        .unwrap();
    let out = epoxy::control::writes::write_batch_on(
        &store,
        &snapshot,
        vec![upstream("a", 10), upstream("b", 11), upstream("c", 12)],
    )
    .await
    .unwrap();
    assert!(out.results[0].is_ok(), "{:?}", out.results);
    assert!(
        out.results[1].is_err() && out.results[2].is_err(),
        "{:?}",
        out.results
    );
    let listing = store.list().await.unwrap();
    let port = |name: &str| match &listing.resources
        [&ResourceKey::new(Kind::Upstream, "gloo-system", name)]
    {
        Resource::Upstream(u) => u.spec.static_.as_ref().unwrap().hosts[0].port,
        _ => 0,
    };
    // The later changes stand; only the new resource was written.
    assert_eq!((port("a"), port("b"), port("c")), (10, 2, 3));
}
