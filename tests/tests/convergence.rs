//! Property: for random streams of all seven events (several posts, platforms and generations,
//! and connections), any permutation with any duplication ends in the same state as the stream
//! in order: through the pure join, and through the real store.

use std::collections::BTreeMap;

use integration_tests::{Backend, StoreUnderTest};
use proptest::prelude::*;
use serde_json::{Value, json};
use shared::adapters::zernio::webhook::parse_event;
use shared::domain::connection::ConnectionRecord;
use shared::domain::event::Action;
use shared::domain::post::{ServiceAnswer, sync_evidence};
use shared::domain::{Connection, Platform, PostId, PostState, ProfileId, ProjectId, Timestamp};
use shared::handlers::events;
use shared::ports::ConnectionStore;

const PROJECT: &str = "proj_1";
const PROFILE: &str = "prof_1";
const POSTS: [&str; 2] = ["post_a", "post_b"];
const WIRE_PLATFORMS: [&str; 3] = ["twitter", "linkedin", "instagram"];

fn received_at() -> Timestamp {
    Timestamp::parse("2026-11-30T12:00:00Z").unwrap()
}

/// One event body; `n` makes its id unique.
fn any_event() -> impl Strategy<Value = Value> {
    let post_event = (0usize..5, 0usize..2, 1u32..3, prop::collection::vec((0usize..3, 0usize..3), 1..3)).prop_map(
        |(kind, post, generation, platforms)| {
            let kinds = ["post.scheduled", "post.published", "post.failed", "post.partial", "post.cancelled"];
            let platforms: Vec<Value> = platforms
                .iter()
                .map(|&(p, s)| {
                    let status = match (kind, s) {
                        (0 | 4, _) => "pending",
                        (1, _) | (3, 0) => "published",
                        (2, _) | (3, 1) => "failed",
                        _ => "publishing",
                    };
                    json!({"platform": WIRE_PLATFORMS[p], "status": status, "accountId": format!("acc{p}"),
                           "publishedUrl": (status == "published").then(|| format!("https://p/{generation}/{p}")),
                           "publishedAt": (status == "published").then(|| format!("2026-11-30T10:0{p}:00Z")),
                           "error": (status == "failed").then_some("Rate limit exceeded")})
                })
                .collect();
            json!({"event": kinds[kind], "timestamp": "2026-11-30T10:00:00Z",
                   "post": {"id": format!("svc{post}{generation}"), "status": if kind == 4 { "cancelled" } else { "x" },
                            "scheduledFor": (kind == 0).then_some("2030-01-01T00:00:00Z"),
                            "platforms": platforms,
                            "metadata": {"stacc_project_id": PROJECT, "stacc_post_id": POSTS[post], "stacc_generation": generation}}})
        },
    );
    let account_event = (any::<bool>(), 0usize..2, 0u32..4, 0usize..2, any::<bool>()).prop_map(|(connected, p, minute, account, intentional)| {
        let mut account = json!({"accountId": format!("acc{account}"), "profileId": PROFILE, "platform": WIRE_PLATFORMS[p],
                                 "username": format!("user{account}")});
        if !connected {
            account["disconnectionType"] = json!(if intentional { "intentional" } else { "unintentional" });
        }
        json!({"event": if connected { "account.connected" } else { "account.disconnected" },
               "timestamp": format!("2026-11-30T10:0{minute}:00Z"), "account": account})
    });
    prop_oneof![3 => post_event, 2 => account_event]
}

fn stream() -> impl Strategy<Value = (Vec<Value>, Vec<Value>)> {
    prop::collection::vec(any_event(), 1..10).prop_flat_map(|events| {
        let events: Vec<Value> = events
            .into_iter()
            .enumerate()
            .map(|(n, mut e)| {
                e["id"] = json!(format!("evt_{n}"));
                e
            })
            .collect();
        let n = events.len();
        let with_copies = (Just(events.clone()), prop::collection::vec(0..n, 0..n + 1)).prop_map(|(events, copies)| {
            let mut delivered = events.clone();
            delivered.extend(copies.into_iter().map(|i| events[i].clone()));
            delivered
        });
        (Just(events), with_copies.prop_shuffle())
    })
}

#[derive(Debug, Default, PartialEq)]
struct World {
    posts: BTreeMap<String, PostState>,
    connections: BTreeMap<Platform, Connection>,
}

/// The pure fold: parse each delivery and join it in (a repeated id is skipped, as the store does).
fn fold(deliveries: &[Value]) -> World {
    let mut world = World::default();
    let mut records: BTreeMap<Platform, ConnectionRecord> = BTreeMap::new();
    let mut taken = std::collections::BTreeSet::new();
    for body in deliveries {
        let event = parse_event(body.to_string().as_bytes(), received_at()).unwrap();
        if !taken.insert(event.id.clone()) {
            continue;
        }
        match event.action {
            Action::Post { post, report, .. } => {
                let stored = world.posts.entry(post.to_string()).or_default();
                *stored = stored.join(&report.to_state(Some(stored)).unwrap());
            }
            Action::Account { news, .. } => {
                let record = records.entry(news.platform()).or_default();
                *record = record.with(&news);
                world.connections.insert(news.platform(), record.shown().unwrap());
            }
            Action::Ignore(_) => {}
        }
    }
    world
}

async fn through_store(deliveries: &[Value]) -> World {
    let t = StoreUnderTest::start(Backend::Dynoxide).await;
    let (project, profile) = (ProjectId::parse(PROJECT).unwrap(), ProfileId::parse(PROFILE).unwrap());
    t.store.link_profile(&project, &profile).await.unwrap();
    for body in deliveries {
        let event = parse_event(body.to_string().as_bytes(), received_at()).unwrap();
        events::apply(&t.store, &event, integration_tests::now()).await.unwrap();
    }
    let mut world = World::default();
    for post in POSTS {
        if let Some(item) = t.store.get_post(&project, &PostId::parse(post).unwrap()).await.unwrap() {
            world.posts.insert(post.to_owned(), item.state);
        }
    }
    for platform in Platform::ALL {
        if let Some(item) = t.store.get_connection(&profile, platform).await.unwrap() {
            world.connections.insert(platform, item.connection);
        }
    }
    world
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn through_the_pure_join_any_order_and_duplication_converges((in_order, delivered) in stream()) {
        prop_assert_eq!(fold(&delivered), fold(&in_order));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn through_the_real_store_any_order_and_duplication_converges((in_order, delivered) in stream()) {
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        let (expected, got) = runtime.block_on(async { (through_store(&in_order).await, through_store(&delivered).await) });
        prop_assert_eq!(&got, &expected);
        prop_assert_eq!(got, fold(&in_order));
    }
}

/// A post on the service moving forward: per platform, a sequence of statuses that only rise.
fn service_history() -> impl Strategy<Value = Vec<Value>> {
    let steps = prop::collection::vec((0usize..3, 1u32..4), 1..8);
    steps.prop_map(|steps| {
        let mut level = [0u32; 3];
        let mut snapshots = Vec::new();
        for (platform, by) in steps {
            level[platform] = (level[platform] + by).min(3);
            let platforms: Vec<Value> = (0..3)
                .map(|p| {
                    let status = ["pending", "failed", "published", "published"][level[p] as usize];
                    let removed = level[p] == 3;
                    json!({"platform": WIRE_PLATFORMS[p], "status": status, "accountId": format!("acc{p}"),
                           "platformPostUrl": (status == "published").then(|| format!("https://p/{p}")),
                           "publishedUrl": (status == "published").then(|| format!("https://p/{p}")),
                           "publishedAt": (status == "published").then_some("2026-11-30T10:00:00Z"),
                           "errorMessage": (status == "failed").then_some("Rate limit exceeded"),
                           "error": (status == "failed").then_some("Rate limit exceeded"),
                           "removedFromPlatformAt": removed.then_some("2026-11-30T12:00:00Z")})
                })
                .collect();
            snapshots.push(json!({"_id": "svc1", "id": "svc1", "status": "publishing", "platforms": platforms,
                                  "metadata": {"stacc_project_id": PROJECT, "stacc_post_id": "post_a", "stacc_generation": 1}}));
        }
        snapshots
    })
}

fn webhook(n: usize, post: &Value) -> Value {
    json!({"id": format!("evt_{n}"), "event": "post.partial", "timestamp": "2026-11-30T10:00:00Z", "post": post})
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    /// Sync after missed webhooks gives the state the webhooks would have: any subset of a post's
    /// events, then the service's answer to `GET /v1/posts/{id}` read the way Sync reads it.
    #[test]
    fn sync_after_any_subset_of_webhooks_equals_all_webhooks(
        history in service_history(),
        kept in prop::collection::vec(any::<bool>(), 8),
    ) {
        let all: Vec<Value> = history.iter().enumerate().map(|(n, p)| webhook(n, p)).collect();
        let subset: Vec<Value> = all.iter().zip(&kept).filter(|(_, k)| **k).map(|(e, _)| e.clone()).collect();
        let mut synced = fold(&subset).posts.remove("post_a").unwrap_or_default();
        let answer: shared::adapters::zernio::wire::WirePost =
            serde_json::from_value(history.last().unwrap().clone()).unwrap();
        // Asked at the webhooks' time, so that a copy reported live without a time fills the same.
        let asked_at = Timestamp::parse("2026-11-30T10:00:00Z").unwrap();
        let report = answer.report(shared::domain::EntryStatus::Queued, false, asked_at).unwrap();
        let evidence = sync_evidence(&synced, vec![(1, ServiceAnswer::Found(report))]);
        synced = synced.join(&evidence);
        prop_assert_eq!(Some(synced), fold(&all).posts.remove("post_a"));
    }
}
