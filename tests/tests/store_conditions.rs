//! The store's conditional writes, against both emulators, so that no rule rests on one
//! emulator's quirks: racing writers only ever add evidence, event ids are taken once, and
//! stale evidence changes nothing.

use fault_proxy::Faults;
use integration_tests::{Backend, StoreUnderTest, post_report as report};
use shared::domain::budget::{Class, Plan};
use shared::domain::connection::{Connection, ConnectionEvidence};
use shared::domain::limits::{CallKind, Limit, ProjectLane, Seen};
use shared::domain::post::PostReport;
use shared::domain::{
    ConnectionStatus, EntryStatus, EventId, Platform, PostId, PostState, ProfileId, ProjectId, Timestamp,
};
use shared::ports::{BudgetStore, ConnectionStore, PostStore, PublishRead, SharedBudgetStore};
use shared::ports::{EventStore, Outcome};

const BACKENDS: [Backend; 2] = [Backend::Dynoxide, Backend::Moto];
/// moto restores a whole-table snapshot when a transaction fails and takes no lock, so two
/// concurrent transactions there can undo each other's writes (DynamoDB isolates them). Racing
/// transactions are therefore raced on dynoxide; single-item conditional writes race on both.
const TRANSACTION_RACE_BACKENDS: [Backend; 1] = [Backend::Dynoxide];
/// moto evaluates an `UpdateItem`'s condition and applies its update without holding a lock
/// between them (two racers can both pass one condition; DynamoDB applies each atomically), so
/// budget takes are raced on dynoxide.
const UPDATE_RACE_BACKENDS: [Backend; 1] = [Backend::Dynoxide];

fn ids() -> (ProjectId, PostId, ProfileId) {
    (ProjectId::parse("proj_1").unwrap(), PostId::parse("post_1").unwrap(), ProfileId::parse("prof_1").unwrap())
}

fn evidence(at: i64, status: ConnectionStatus) -> Connection {
    Connection {
        platform: Platform::Linkedin,
        status,
        evidence_at: Timestamp::from_unix(at),
        account_id: Some(shared::domain::AccountId::parse("acc").unwrap()),
        username: Some("acme".into()),
        display_name: None,
        reason: None,
        looks: None,
    }
}

/// Connection evidence as the account webhook that carries it.
fn news(e: Connection) -> ConnectionEvidence {
    if e.status == ConnectionStatus::Connected {
        ConnectionEvidence::Linked(e)
    } else {
        ConnectionEvidence::Disconnected(e)
    }
}

fn event(n: usize) -> EventId {
    EventId::parse(format!("evt_{n}")).unwrap()
}

#[tokio::test]
async fn sixteen_racing_event_writers_on_one_post_all_land() {
    for backend in TRANSACTION_RACE_BACKENDS {
        // Real DynamoDB cancels a transaction that touches an item another one has in flight
        // (`TransactionConflict`), reads included; the emulator serialises them, so the proxy does it.
        let t = StoreUnderTest::behind(backend, Some(Faults::conflicts(0.25))).await;
        let (project, post, _) = ids();
        let platforms = [Platform::X, Platform::Linkedin, Platform::Instagram, Platform::Facebook];
        let statuses = [EntryStatus::Queued, EntryStatus::Failed, EntryStatus::Published, EntryStatus::Removed];
        let reports: Vec<PostReport> =
            (0..16).map(|i| report(1 + (i as u32 % 2), platforms[i % 4], statuses[(i / 4) % 4])).collect();
        let now = integration_tests::now();
        let outcomes = futures_join(reports.iter().enumerate().map(|(i, r)| {
            let (store, project, post) = (t.store.clone(), project.clone(), post.clone());
            let r = r.clone();
            async move { store.apply_post_report(&event(i), &project, &post, &r, now).await }
        }))
        .await;
        assert!(outcomes.iter().all(|o| matches!(o, Ok(Outcome::Applied { .. }))), "{backend:?}: {outcomes:?}");
        let expected = reports.iter().fold(PostState::default(), |s, r| s.join(&r.to_state(Some(&s)).unwrap()));
        let stored = t.store.get_post(&project, &post).await.unwrap().unwrap();
        assert_eq!(stored.state, expected, "{backend:?}: every racing writer's evidence is in the result");
        assert!(t.conflicts_made() > 0, "the race met cancelled transactions");
    }
}

#[tokio::test]
async fn sixteen_racing_writers_on_one_post_all_land() {
    // A post write is a transaction now (the post with its history records): raced on dynoxide,
    // as every racing transaction is (see BACKENDS).
    for backend in [Backend::Dynoxide] {
        let t = StoreUnderTest::behind(backend, Some(Faults::conflicts(0.25))).await;
        let (project, post, _) = ids();
        let platforms = [Platform::X, Platform::Linkedin, Platform::Instagram, Platform::Facebook];
        let statuses = [EntryStatus::Queued, EntryStatus::Failed, EntryStatus::Published, EntryStatus::Removed];
        let fragments: Vec<PostState> = (0..16)
            .map(|i| report(1 + (i as u32 % 2), platforms[i % 4], statuses[(i / 4) % 4]).to_state(None).unwrap())
            .collect();
        let outcomes = futures_join(fragments.iter().map(|f| {
            let (store, project, post, f) = (t.store.clone(), project.clone(), post.clone(), f.clone());
            async move {
                store
                    .save_post(
                        &project,
                        &post,
                        None,
                        shared::ports::PostChange::new(&shared::ports::Source::Publish, &f),
                        integration_tests::now(),
                    )
                    .await
            }
        }))
        .await;
        assert!(outcomes.iter().all(Result::is_ok), "{backend:?}: {outcomes:?}");
        let expected = fragments.iter().fold(PostState::default(), |s, f| s.join(f));
        let stored = t.store.get_post(&project, &post).await.unwrap().unwrap();
        assert_eq!(stored.state, expected, "{backend:?}: every racing writer's evidence is in the result");
        assert!(t.conflicts_made() > 0, "the race met cancelled transactions");
    }
}

#[tokio::test]
async fn a_repeated_event_is_a_duplicate_and_writes_nothing() {
    for backend in BACKENDS {
        let t = StoreUnderTest::start(backend).await;
        let (project, post, _) = ids();
        let r = report(1, Platform::X, EntryStatus::Published);
        let now = integration_tests::now();
        assert_eq!(
            t.store.apply_post_report(&event(1), &project, &post, &r, now).await,
            Ok(Outcome::Applied { changed: true })
        );
        let before = t.store.get_post(&project, &post).await.unwrap().unwrap();
        t.tap.reset();
        assert_eq!(t.store.apply_post_report(&event(1), &project, &post, &r, now).await, Ok(Outcome::Duplicate));
        assert_eq!(
            t.tap.counts().keys().collect::<Vec<_>>(),
            vec!["TransactGetItems"],
            "{backend:?}: one read, no write"
        );
        assert_eq!(t.store.get_post(&project, &post).await.unwrap().unwrap(), before);
    }
}

#[tokio::test]
async fn an_event_record_past_its_expiry_no_longer_counts_as_taken() {
    for backend in BACKENDS {
        let t = StoreUnderTest::start(backend).await;
        let (project, post, _) = ids();
        let r = report(1, Platform::X, EntryStatus::Published);
        let then = Timestamp::parse("2026-01-01T00:00:00Z").unwrap();
        t.store.apply_post_report(&event(1), &project, &post, &r, then).await.unwrap();
        let nine_days_later = then.plus_seconds(9 * 24 * 3600);
        assert_eq!(
            t.store.apply_post_report(&event(1), &project, &post, &r, nine_days_later).await,
            Ok(Outcome::Applied { changed: false }),
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn older_connection_evidence_is_refused_and_updated_at_moves_only_with_the_visible_state() {
    for backend in BACKENDS {
        let t = StoreUnderTest::start(backend).await;
        let (project, _, profile) = ids();
        t.store.link_profile(&project, &profile).await.unwrap();
        let apply = |n: usize, e: Connection, now: i64| {
            let store = t.store.clone();
            let profile = profile.clone();
            async move { store.apply_account_news(&event(n), &profile, &news(e), Timestamp::from_unix(now)).await }
        };
        assert_eq!(
            apply(1, evidence(200, ConnectionStatus::Expired), 1000).await,
            Ok(Outcome::Applied { changed: true })
        );
        // Older evidence: its event is taken, what the connection shows stays as it was (the older
        // link is kept in the record, under the newer disconnect).
        assert!(matches!(
            apply(2, evidence(100, ConnectionStatus::Connected), 1001).await,
            Ok(Outcome::Applied { .. })
        ));
        let stored = t.store.get_connection(&profile, Platform::Linkedin).await.unwrap().unwrap();
        assert_eq!(
            (stored.connection.status, stored.updated_at),
            (ConnectionStatus::Expired, Timestamp::from_unix(1000))
        );
        // Newer evidence of the same visible state: the evidence time advances, updated_at stays.
        assert_eq!(
            apply(3, evidence(300, ConnectionStatus::Expired), 1002).await,
            Ok(Outcome::Applied { changed: true })
        );
        let stored = t.store.get_connection(&profile, Platform::Linkedin).await.unwrap().unwrap();
        assert_eq!(stored.connection.evidence_at, Timestamp::from_unix(300));
        assert_eq!(stored.updated_at, Timestamp::from_unix(1000), "{backend:?}");
    }
}

#[tokio::test]
async fn racing_connection_evidence_ends_with_the_newest_whatever_the_interleaving() {
    for backend in TRANSACTION_RACE_BACKENDS {
        let t = StoreUnderTest::start(backend).await;
        let (project, _, profile) = ids();
        t.store.link_profile(&project, &profile).await.unwrap();
        let statuses = [
            ConnectionStatus::Connected,
            ConnectionStatus::Expired,
            ConnectionStatus::Error,
            ConnectionStatus::Revoked,
        ];
        let outcomes = futures_join((0..16).map(|i| {
            let (store, profile) = (t.store.clone(), profile.clone());
            let e = evidence(100 + (i as i64 % 5), statuses[i % 4]);
            async move { store.apply_account_news(&event(i), &profile, &news(e), integration_tests::now()).await }
        }))
        .await;
        assert!(outcomes.iter().all(|o| matches!(o, Ok(Outcome::Applied { .. }))), "{backend:?}: {outcomes:?}");
        let expected =
            (0..16).map(|i| evidence(100 + (i as i64 % 5), statuses[i % 4])).reduce(|a, b| a.join(&b)).unwrap();
        let stored = t.store.get_connection(&profile, Platform::Linkedin).await.unwrap().unwrap();
        assert_eq!(stored.connection, expected, "{backend:?}");
    }
}

/// Runs futures concurrently on the runtime and collects their results in order.
async fn futures_join<F, T>(futures: impl Iterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

#[tokio::test]
async fn the_post_the_project_profile_and_the_budget_are_read_in_one_consistent_request() {
    for backend in BACKENDS {
        let t = StoreUnderTest::start(backend).await;
        let (project, post, profile) = ids();
        let nothing = PublishRead { post: None, profile: None, budget: Seen::default() };
        assert_eq!(t.store.post_profile_and_budget(&project, &post).await, Ok(nothing), "{backend:?}");
        t.store.link_profile(&project, &profile).await.unwrap();
        let r = report(1, Platform::X, EntryStatus::Published);
        t.store.apply_post_report(&event(1), &project, &post, &r, integration_tests::now()).await.unwrap();
        t.tap.reset();
        let PublishRead { post: read, profile: linked, budget } =
            t.store.post_profile_and_budget(&project, &post).await.unwrap();
        assert_eq!(t.tap.counts().into_iter().collect::<Vec<_>>(), [("BatchGetItem".to_owned(), 1)], "{backend:?}");
        assert_eq!(linked, Some(profile.clone()), "{backend:?}");
        assert_eq!(read, t.store.post(&project, &post).await.unwrap(), "{backend:?}: the same post as a GetItem reads");
        assert!(read.is_some());
        assert_eq!(budget, Seen::default(), "no call taken yet");
        let other = PostId::parse("post_2").unwrap();
        let only_profile = PublishRead { post: None, profile: Some(profile), budget: Seen::default() };
        assert_eq!(t.store.post_profile_and_budget(&project, &other).await, Ok(only_profile), "{backend:?}");
    }
}

#[tokio::test]
async fn sixty_four_racing_callers_take_exactly_what_the_budget_holds_and_none_is_lost() {
    for backend in UPDATE_RACE_BACKENDS {
        // GIVEN a project's budget of 30 publishes a minute (a burst of 60), taken by 64 callers at once
        let t = StoreUnderTest::start(backend).await;
        let (project, _, _) = ids();
        let rate = Limit { per_minute: 30 }.rate();
        let now = integration_tests::now();
        let outcomes = futures_join((0..64).map(|_| {
            let store = t.store.clone();
            let project = project.clone();
            async move {
                store
                    .take_budget(&project, CallKind::Publish, Seen::default(), &[(ProjectLane::Calls, rate)], now)
                    .await
            }
        }))
        .await;
        // THEN exactly sixty get a call, the rest are told when to come back: none is lost to the race
        let taken = outcomes.iter().filter(|o| matches!(o, Ok(Ok(())))).count();
        let refused = outcomes.iter().filter(|o| matches!(o, Ok(Err(l)) if l.retry_after == 2)).count();
        assert_eq!((taken, refused), (60, 4), "{backend:?}: {outcomes:?}");
        // AND another kind of call, or another project, has its own budget
        assert_eq!(
            t.store.take_budget(&project, CallKind::Sync, Seen::default(), &[(ProjectLane::Calls, rate)], now).await,
            Ok(Ok(()))
        );
        let other = ProjectId::parse("proj_2").unwrap();
        assert_eq!(
            t.store.take_budget(&other, CallKind::Publish, Seen::default(), &[(ProjectLane::Calls, rate)], now).await,
            Ok(Ok(()))
        );
        // AND one interval later, exactly one more
        let later = now.plus_seconds(2);
        let again = futures_join((0..8).map(|_| {
            let store = t.store.clone();
            let project = project.clone();
            async move {
                store
                    .take_budget(&project, CallKind::Publish, Seen::default(), &[(ProjectLane::Calls, rate)], later)
                    .await
            }
        }))
        .await;
        assert_eq!(again.iter().filter(|o| matches!(o, Ok(Ok(())))).count(), 1, "{backend:?}: {again:?}");
    }
}

#[tokio::test]
async fn sixty_four_racing_callers_of_one_shard_of_the_shared_budget_take_exactly_its_burst() {
    for backend in UPDATE_RACE_BACKENDS {
        // GIVEN the shared budget of a 1,200-a-minute plan: 8 shards of 150, a burst of 7 each
        let t = StoreUnderTest::start(backend).await;
        let plan = Plan::new(1_200);
        let lanes = plan.lanes(Class::Publish, 0);
        let now = integration_tests::now();
        let outcomes = futures_join((0..64).map(|_| {
            let (store, lanes) = (t.store.clone(), lanes.clone());
            async move { store.take_shared(0, &lanes, now).await }
        }))
        .await;
        // THEN exactly the burst is taken and every other caller is told when there is room
        let taken = outcomes.iter().filter(|o| matches!(o, Ok(Ok(())))).count();
        let refused = outcomes.iter().filter(|o| matches!(o, Ok(Err(_)))).count();
        assert_eq!((taken, refused), (7, 57), "{backend:?}: {outcomes:?}");
        // AND user reads on the same shard find it spent too, while another shard has room
        assert!(matches!(t.store.take_shared(0, &plan.lanes(Class::Reads, 0), now).await, Ok(Err(_))));
        assert_eq!(t.store.take_shared(1, &plan.lanes(Class::Reads, 1), now).await, Ok(Ok(())));
        // AND a shard shut until a time takes nothing before it, from anyone
        let until = now.plus_seconds(20);
        t.store.shut_shared(1, plan.shut(1, until), now).await.unwrap();
        for class in [Class::Publish, Class::Reads, Class::Reconciler] {
            let refused = t.store.take_shared(1, &plan.lanes(class, 1), now.plus_seconds(19)).await;
            // (the reconciler waits for the burst to refill as well: it only takes what is left over)
            let most = if class == Class::Reconciler { 5 } else { 1 };
            assert!(matches!(refused, Ok(Err(l)) if l.retry_after <= most), "{backend:?} {class:?}: {refused:?}");
        }
        assert_eq!(t.store.take_shared(1, &plan.lanes(Class::Publish, 1), until).await, Ok(Ok(())));
    }
}

#[tokio::test]
async fn forgetting_a_profile_changes_nothing_when_it_moved_or_a_connection_was_written_since_the_read() {
    for backend in BACKENDS {
        // GIVEN a profile with one connection, as a Refresh read it
        let t = StoreUnderTest::start(backend).await;
        let (project, _, profile) = ids();
        t.store.link_profile(&project, &profile).await.unwrap();
        let first = news(evidence(100, ConnectionStatus::Connected));
        t.store.apply_account_news(&event(1), &profile, &first, Timestamp::from_unix(100)).await.unwrap();
        let read = t.store.connections(&profile).await.unwrap();
        // WHEN a Connect completes meanwhile (the connection is written again)
        let again = news(evidence(200, ConnectionStatus::Connected));
        t.store.apply_account_news(&event(2), &profile, &again, Timestamp::from_unix(200)).await.unwrap();
        // THEN forgetting with the stale read is refused and changes nothing
        assert_eq!(
            t.store
                .forget_profile(&project, &profile, &read, &shared::ports::Source::Refresh, integration_tests::now())
                .await,
            Ok(false),
            "{backend:?}"
        );
        assert_eq!(t.store.project_profile(&project).await.unwrap(), Some(profile.clone()));
        assert_eq!(t.store.connections(&profile).await.unwrap().len(), 1);
        // AND with a fresh read it goes through
        let read = t.store.connections(&profile).await.unwrap();
        assert_eq!(
            t.store
                .forget_profile(&project, &profile, &read, &shared::ports::Source::Refresh, integration_tests::now())
                .await,
            Ok(true),
            "{backend:?}"
        );
        assert_eq!(t.store.project_profile(&project).await.unwrap(), None);
    }
}

#[tokio::test]
async fn the_reconcilers_index_spreads_projects_over_sixteen_keys_and_a_pass_still_finds_them_all_oldest_first() {
    use shared::ports::HealingStore;
    let t = StoreUnderTest::start(Backend::Dynoxide).await;
    // GIVEN forty projects linked to a profile (each never checked: the reconciler should look)
    for n in 0..40 {
        let (project, profile) =
            (ProjectId::parse(format!("proj_ix{n}")).unwrap(), ProfileId::parse(format!("prof_ix{n}")).unwrap());
        t.store.link_profile(&project, &profile).await.unwrap();
    }
    // THEN they are spread over the index's shards, none holding most of them
    let mut shards: std::collections::BTreeMap<u32, usize> = Default::default();
    for n in 0..40 {
        *shards
            .entry(shared::domain::healing::index_shard(&ProjectId::parse(format!("proj_ix{n}")).unwrap()))
            .or_default() += 1;
    }
    assert!(shards.len() >= 10, "spread over the shards: {shards:?}");
    assert!(shards.values().all(|n| *n <= 8), "no shard holds most of them: {shards:?}");
    // AND a pass finds every one of them, and the oldest first when it asks for fewer
    let now = integration_tests::now();
    let every = shared::domain::healing::lease_shards(0, 1);
    let all = t.store.stale_projects(&every, now, now, 100).await.unwrap();
    assert_eq!(all.len(), 40);
    let few = t.store.stale_projects(&every, now, now, 5).await.unwrap();
    assert_eq!(few.len(), 5);
    assert!(few.windows(2).all(|w| w[0].0 <= w[1].0), "oldest first");
    // AND four passes side by side, each on its lease's shards, find each project exactly once
    let mut found: Vec<String> = Vec::new();
    for lease in 0..4 {
        let shards = shared::domain::healing::lease_shards(lease, 4);
        let mine = t.store.stale_projects(&shards, now, now, 100).await.unwrap();
        assert!(
            mine.iter().all(|(_, p)| shards.contains(&shared::domain::healing::index_shard(p))),
            "lease {lease} sees only its shards"
        );
        found.extend(mine.into_iter().map(|(_, p)| p.as_str().to_owned()));
    }
    found.sort();
    let mut expected: Vec<String> = (0..40).map(|n| format!("proj_ix{n}")).collect();
    expected.sort();
    assert_eq!(found, expected);
}
