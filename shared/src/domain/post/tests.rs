use proptest::prelude::*;

use super::*;
use crate::domain::ids::AccountId;

fn removed_by_hand(state: &PostState, platform: Platform) -> PostState {
    match manual_delete(state, platform) {
        ManualDelete::Remove(evidence) => state.join(&evidence),
        ManualDelete::AlreadyRemoved => state.clone(),
        other => panic!("expected a removal, got {other:?}"),
    }
}

fn sid(n: u32) -> ServicePostId {
    ServicePostId::parse(format!("svc{n}")).unwrap()
}

fn report(generation: Generation, platform: Platform, status: EntryStatus, url: Option<&str>) -> PostReport {
    PostReport {
        service_post_id: sid(generation),
        generation: Some(generation),
        owner: None,
        cancelled: false,
        published_at: None,
        scheduled_for: None,
        reported_at: Timestamp::from_unix(2_000 + i64::from(generation)),
        default_status: EntryStatus::Queued,
        platforms: vec![PlatformReport {
            platform,
            status: Some(status),
            account_id: Some(AccountId::parse("acc").unwrap()),
            url: url.map(str::to_owned),
            platform_post_id: None,
            published_at: (status == EntryStatus::Published)
                .then(|| Timestamp::from_unix(1_000 + i64::from(generation))),
            error: (status == EntryStatus::Failed).then(|| "rate limited".to_owned()),
            auth_expired: false,
        }],
    }
}

/// The reports joined, each read as a piece of state on its own (every report here names its
/// generation): the join's laws hold whatever service posts the reports name.
fn fold(reports: &[PostReport]) -> PostState {
    reports.iter().fold(PostState::default(), |state, r| state.join(&r.to_state(None).unwrap()))
}

/// A report of a publication as the service sends it: one service post per generation.
fn one_service_post(mut r: PostReport) -> PostReport {
    r.service_post_id = sid(r.generation.expect("every drawn report names its generation"));
    r
}

const NOW: i64 = 10_000;

#[test]
fn a_published_platform_never_goes_back_within_its_generation() {
    let state = fold(&[
        report(1, Platform::X, EntryStatus::Published, Some("https://x.com/1")),
        report(1, Platform::X, EntryStatus::Queued, None),
        report(1, Platform::X, EntryStatus::Failed, None),
    ]);
    let x = &state.entries[&Platform::X];
    assert_eq!(x.status, EntryStatus::Published);
    assert_eq!(x.url.as_deref(), Some("https://x.com/1"));
    assert_eq!(x.error, None);
    assert_eq!(state.overall(Timestamp::from_unix(NOW)), PostStatus::Published);
}

#[test]
fn failed_moves_up_to_published_when_a_retry_succeeds() {
    let state = fold(&[
        report(1, Platform::X, EntryStatus::Published, None),
        report(1, Platform::Linkedin, EntryStatus::Failed, None),
    ]);
    assert_eq!(state.overall(Timestamp::from_unix(NOW)), PostStatus::PartiallyPublished);
    let state =
        state.join(&report(1, Platform::Linkedin, EntryStatus::Published, None).to_state(Some(&state)).unwrap());
    assert_eq!(state.overall(Timestamp::from_unix(NOW)), PostStatus::Published);
}

#[test]
fn an_event_for_an_old_generation_does_not_touch_a_new_one() {
    let state = fold(&[
        report(2, Platform::X, EntryStatus::Queued, None),
        report(1, Platform::X, EntryStatus::Published, Some("https://x.com/old")),
    ]);
    let x = &state.entries[&Platform::X];
    assert_eq!((x.generation, x.status, x.url.as_deref()), (2, EntryStatus::Queued, None));
}

#[test]
fn a_cancelled_post_stays_cancelled_and_keeps_published_at() {
    let mut cancel = report(1, Platform::X, EntryStatus::Queued, None);
    cancel.cancelled = true;
    let state = fold(&[report(1, Platform::X, EntryStatus::Published, None), cancel]);
    let state = state.join(&report(1, Platform::X, EntryStatus::Published, None).to_state(Some(&state)).unwrap());
    assert_eq!(state.overall(Timestamp::from_unix(NOW)), PostStatus::Cancelled);
    assert_eq!(state.published_at, Some(Timestamp::from_unix(1_001)));
}

#[test]
fn a_new_generation_after_a_cancellation_shows_the_new_publication() {
    let mut cancel = report(1, Platform::X, EntryStatus::Queued, None);
    cancel.cancelled = true;
    let state = fold(&[cancel, report(2, Platform::X, EntryStatus::Queued, None)]);
    assert_eq!(state.overall(Timestamp::from_unix(NOW)), PostStatus::Publishing);
}

#[test]
fn queued_is_scheduled_before_its_time_and_publishing_after() {
    let mut scheduled = report(1, Platform::X, EntryStatus::Queued, None);
    scheduled.scheduled_for = Some(Timestamp::from_unix(NOW));
    let state = fold(&[scheduled]);
    assert_eq!(state.overall(Timestamp::from_unix(NOW - 1)), PostStatus::Scheduled);
    assert_eq!(state.overall(Timestamp::from_unix(NOW)), PostStatus::Publishing);
}

#[test]
fn overall_status_follows_the_first_matching_rule() {
    let now = Timestamp::from_unix(NOW);
    assert_eq!(PostState::default().overall(now), PostStatus::Draft);
    let failed = fold(&[
        report(1, Platform::X, EntryStatus::Failed, None),
        report(1, Platform::Facebook, EntryStatus::Failed, None),
    ]);
    assert_eq!(failed.overall(now), PostStatus::Failed);
    let one_removed = removed_by_hand(
        &fold(&[
            report(1, Platform::X, EntryStatus::Published, Some("u")),
            report(1, Platform::Facebook, EntryStatus::Published, None),
        ]),
        Platform::X,
    );
    assert_eq!(one_removed.overall(now), PostStatus::Published);
    assert_eq!(one_removed.entries[&Platform::X].url, None);
    let all_removed = removed_by_hand(&one_removed, Platform::Facebook);
    assert_eq!(all_removed.overall(now), PostStatus::Removed);
    assert_eq!(manual_delete(&all_removed, Platform::Facebook), ManualDelete::AlreadyRemoved);
}

#[test]
fn a_removed_copy_is_not_brought_back_by_a_late_published_report() {
    let live = fold(&[report(1, Platform::X, EntryStatus::Published, Some("https://x.com/1"))]);
    let removed = removed_by_hand(&live, Platform::X);
    let late = removed.join(
        &report(1, Platform::X, EntryStatus::Published, Some("https://x.com/1")).to_state(Some(&removed)).unwrap(),
    );
    assert_eq!(late, removed);
    let again = late
        .join(&report(2, Platform::X, EntryStatus::Published, Some("https://x.com/2")).to_state(Some(&late)).unwrap());
    assert_eq!(again.entries[&Platform::X].url.as_deref(), Some("https://x.com/2"));
}

#[test]
fn a_report_without_our_generation_is_matched_by_service_id_or_deferred() {
    let state = fold(&[report(3, Platform::X, EntryStatus::Queued, None)]);
    let mut untagged = report(3, Platform::X, EntryStatus::Published, None);
    untagged.generation = None;
    assert_eq!(untagged.to_state(Some(&state)).unwrap().entries[&Platform::X].generation, 3);
    assert_eq!(untagged.to_state(None), Err(Unapplied::UnknownGeneration));
}

fn cancel(generation: Generation, platform: Platform) -> PostReport {
    let mut r = report(generation, platform, EntryStatus::Queued, None);
    r.cancelled = true;
    r
}

#[test]
fn a_cancelled_publication_is_not_a_dead_end() {
    let state = fold(&[report(1, Platform::X, EntryStatus::Queued, None), cancel(1, Platform::X)]);
    let x = &state.entries[&Platform::X];
    assert_eq!(state.shown(x), ShownStatus::Cancelled);
    assert_eq!(state.overall(Timestamp::from_unix(NOW)), PostStatus::Cancelled);
    assert!(state.still_active(&[Platform::X]).is_empty(), "a cancelled copy never blocks a new publish");
    assert_eq!(manual_delete(&state, Platform::X), ManualDelete::NotLive);
    assert_eq!(state.next_generation(), 2);
}

#[test]
fn a_cancelled_later_publication_does_not_hide_live_copies_of_an_earlier_one() {
    let state = fold(&[
        report(1, Platform::X, EntryStatus::Published, Some("https://x.com/1")),
        report(2, Platform::Linkedin, EntryStatus::Queued, None),
        cancel(2, Platform::Linkedin),
    ]);
    let now = Timestamp::from_unix(NOW);
    assert_eq!(state.overall(now), PostStatus::Published);
    assert_eq!(state.shown(&state.entries[&Platform::Linkedin]), ShownStatus::Cancelled);
    assert_eq!(state.still_active(&[Platform::X, Platform::Linkedin]), vec![Platform::X]);
}

#[test]
fn a_copy_that_went_live_keeps_its_link_when_its_publication_is_cancelled() {
    let state =
        fold(&[cancel(1, Platform::X), report(1, Platform::X, EntryStatus::Published, Some("https://x.com/1"))]);
    let x = &state.entries[&Platform::X];
    assert_eq!((state.shown(x), x.url.as_deref()), (ShownStatus::Published, Some("https://x.com/1")));
    assert_eq!(state.overall(Timestamp::from_unix(NOW)), PostStatus::Cancelled);
    assert!(state.still_active(&[Platform::X]).is_empty());
}

#[test]
fn a_report_listing_no_platforms_changes_no_entry_in_any_order() {
    let mut empty = report(1, Platform::X, EntryStatus::Published, None);
    empty.platforms.clear();
    empty.default_status = EntryStatus::Published;
    let queued = report(1, Platform::X, EntryStatus::Queued, None);
    let alone = fold(std::slice::from_ref(&queued));
    assert_eq!(fold(&[queued.clone(), empty.clone()]), alone);
    assert_eq!(fold(&[empty, queued]), alone);
}

#[test]
fn a_copy_reported_live_without_a_time_went_live_by_the_reports_time() {
    let mut r = report(1, Platform::X, EntryStatus::Published, None);
    r.platforms[0].published_at = None;
    let state = fold(&[r.clone()]);
    assert_eq!(state.entries[&Platform::X].published_at, Some(r.reported_at));
    r.published_at = Some(Timestamp::from_unix(1_500));
    assert_eq!(fold(&[r]).entries[&Platform::X].published_at, Some(Timestamp::from_unix(1_500)));
}

#[test]
fn sync_reads_gone_everywhere_as_cancelled_and_gone_for_some_as_removed() {
    let stored = fold(&[
        report(1, Platform::X, EntryStatus::Published, Some("https://x.com/1")),
        report(2, Platform::Linkedin, EntryStatus::Published, Some("https://li/2")),
    ]);
    let asked = publications(&stored);
    assert_eq!(asked.iter().map(|(g, _)| *g).collect::<Vec<_>>(), vec![1, 2]);
    let all_gone = stored.join(&sync_evidence(&stored, vec![(1, ServiceAnswer::Gone), (2, ServiceAnswer::Gone)]));
    assert_eq!(all_gone.overall(Timestamp::from_unix(NOW)), PostStatus::Cancelled);
    assert_eq!(all_gone.published_at, stored.published_at);
    let some_gone = stored.join(&sync_evidence(
        &stored,
        vec![
            (1, ServiceAnswer::Gone),
            (2, ServiceAnswer::Found(report(2, Platform::Linkedin, EntryStatus::Published, None))),
        ],
    ));
    assert_eq!(some_gone.entries[&Platform::X].status, EntryStatus::Removed);
    assert_eq!(some_gone.entries[&Platform::X].url, None);
    assert_eq!(some_gone.overall(Timestamp::from_unix(NOW)), PostStatus::Published);
    assert!(publications(&PostState::default()).is_empty());
}

/// A report about one platform, drawn from several generations and, within one generation,
/// several service ids, accounts, links, platform post ids, errors and times (so a join that
/// keeps the wrong one of two is seen), with cancellations, empty platform lists and missing times.
pub(crate) fn any_report() -> impl Strategy<Value = PostReport> {
    let platform = prop_oneof![Just(Platform::X), Just(Platform::Linkedin), Just(Platform::Instagram)];
    let status = prop_oneof![
        Just(EntryStatus::Queued),
        Just(EntryStatus::Failed),
        Just(EntryStatus::Published),
        Just(EntryStatus::Removed)
    ];
    let shape = (any::<bool>(), 0u8..6, any::<bool>());
    let several = (0u8..3, 0u8..3, 0u8..3, 0u8..3, 0u8..3, 0i64..3);
    (1u32..4, platform, status, shape, several).prop_map(
        |(generation, platform, status, (cancelled, shape, timed), (service, account, url, ppid, error, at))| {
            let mut r = report(generation, platform, status, (url > 0).then(|| format!("https://p/{url}")).as_deref());
            r.service_post_id = ServicePostId::parse(format!("svc{generation}_{service}")).unwrap();
            let p = &mut r.platforms[0];
            p.account_id = Some(AccountId::parse(format!("acc{account}")).unwrap());
            p.platform_post_id = (ppid > 0).then(|| format!("pp{ppid}"));
            p.error = (status == EntryStatus::Failed).then(|| format!("error {error}"));
            p.published_at = match timed {
                true => p.published_at.map(|t| t.plus_seconds(at * 60)),
                false => None,
            };
            r.cancelled = cancelled && shape == 0;
            if shape == 1 {
                r.platforms.clear();
            }
            r
        },
    )
}

/// The state-rules, read plainly and computed another way: group every report by platform, keep the
/// newest generation mentioned, and aggregate each field of that generation's reports.
fn model(reports: &[PostReport]) -> PostState {
    let cancelled: BTreeSet<Generation> = reports.iter().filter(|r| r.cancelled).filter_map(|r| r.generation).collect();
    let mut entries = BTreeMap::new();
    for platform in Platform::ALL {
        let about: Vec<(&PostReport, &PlatformReport)> = reports
            .iter()
            .flat_map(|r| r.platforms.iter().filter(move |p| p.platform == platform).map(move |p| (r, p)))
            .collect();
        let Some(newest) = about.iter().filter_map(|(r, _)| r.generation).max() else { continue };
        let said: Vec<_> = about.iter().filter(|(r, _)| r.generation == Some(newest)).collect();
        let status = said.iter().map(|(r, p)| p.status.unwrap_or(r.default_status)).max().unwrap();
        let live_times = said
            .iter()
            .filter(|(r, p)| p.status.unwrap_or(r.default_status) == EntryStatus::Published)
            .map(|(r, p)| p.published_at.or(r.published_at).unwrap_or(r.reported_at));
        let other_times = said.iter().filter_map(|(_, p)| p.published_at);
        let entry = PlatformEntry {
            generation: newest,
            status,
            service_post_id: said.iter().map(|(r, _)| r.service_post_id.clone()).max(),
            account_id: said.iter().filter_map(|(_, p)| p.account_id.clone()).max(),
            url: if status == EntryStatus::Removed {
                None
            } else {
                said.iter().filter_map(|(_, p)| p.url.clone()).max()
            },
            platform_post_id: said.iter().filter_map(|(_, p)| p.platform_post_id.clone()).max(),
            published_at: live_times.chain(other_times).min(),
            error: if status >= EntryStatus::Published {
                None
            } else {
                said.iter().filter_map(|(_, p)| p.error.clone()).max()
            },
        };
        entries.insert(platform, entry);
    }
    // When the post first went live anywhere, in any publication: kept through everything after.
    let published_at = reports
        .iter()
        .flat_map(|r| r.platforms.iter().map(move |p| (r, p)))
        .filter_map(|(r, p)| {
            let live = p.status.unwrap_or(r.default_status) == EntryStatus::Published;
            if live { Some(p.published_at.or(r.published_at).unwrap_or(r.reported_at)) } else { p.published_at }
        })
        .min();
    PostState { entries, cancelled, published_at, schedule: None }
}

/// The overall status as the contract words it, over the shown statuses.
fn model_overall(state: &PostState) -> PostStatus {
    let shown: Vec<(ShownStatus, bool)> =
        state.entries.values().map(|e| (state.shown(e), state.cancelled.contains(&e.generation))).collect();
    if shown.is_empty() {
        return PostStatus::Draft;
    }
    if shown.iter().all(|(_, cancelled)| *cancelled) {
        return PostStatus::Cancelled;
    }
    let open: Vec<ShownStatus> =
        shown.iter().filter(|(s, c)| !c && *s != ShownStatus::Removed).map(|(s, _)| *s).collect();
    if open.is_empty() {
        return if shown.iter().any(|(_, c)| *c) { PostStatus::Cancelled } else { PostStatus::Removed };
    }
    if open.contains(&ShownStatus::Queued) {
        PostStatus::Publishing
    } else if open.iter().all(|s| *s == ShownStatus::Published) {
        PostStatus::Published
    } else if open.contains(&ShownStatus::Published) {
        PostStatus::PartiallyPublished
    } else {
        PostStatus::Failed
    }
}

proptest! {
    #[test]
    fn join_is_commutative_associative_and_idempotent(a in any_report(), b in any_report(), c in any_report()) {
        let (a, b, c) = (a.to_state(None).unwrap(), b.to_state(None).unwrap(), c.to_state(None).unwrap());
        prop_assert_eq!(a.join(&b), b.join(&a));
        prop_assert_eq!(a.join(&b).join(&c), a.join(&b.join(&c)));
        prop_assert_eq!(a.join(&a), a.clone());
    }

    #[test]
    fn the_joined_state_is_what_a_plain_reading_of_the_rules_says(reports in prop::collection::vec(any_report(), 1..14)) {
        let joined = fold(&reports);
        prop_assert_eq!(&joined, &model(&reports));
        prop_assert_eq!(joined.overall(Timestamp::from_unix(NOW)), model_overall(&joined));
    }

    #[test]
    fn any_order_and_duplication_of_reports_converges(
        reports in prop::collection::vec(any_report(), 1..12),
        order in Just(()).prop_perturb(|_, mut rng| rng.random::<u64>()),
        dups in prop::collection::vec(0usize..12, 0..6),
    ) {
        let in_order = fold(&reports);
        let mut shuffled = reports.clone();
        for i in dups { shuffled.push(reports[i % reports.len()].clone()); }
        let mut seed = order;
        for i in (1..shuffled.len()).rev() {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (seed >> 33) as usize % (i + 1));
        }
        prop_assert_eq!(fold(&shuffled), in_order);
    }
}

#[test]
fn an_item_written_with_a_single_cancelled_generation_reads_as_a_set_of_one() {
    let old: PostState = serde_json::from_str(r#"{"entries":{},"cancelled_generation":2}"#).unwrap();
    assert_eq!(old.cancelled, BTreeSet::from([2]));
    let new: PostState = serde_json::from_str(r#"{"entries":{},"cancelled":[1,3]}"#).unwrap();
    assert_eq!(new.cancelled, BTreeSet::from([1, 3]));
    assert_eq!(serde_json::to_value(&new).unwrap()["cancelled"], serde_json::json!([1, 3]));
}

/// What the service answers for one publication when Sync asks.
#[derive(Debug, Clone)]
enum Answer {
    Found(PostReport),
    Gone,
}

fn any_answer(generation: Generation) -> impl Strategy<Value = Answer> {
    prop_oneof![
        2 => any_report().prop_map(move |mut r| {
            r.generation = Some(generation);
            r.service_post_id = sid(generation);
            Answer::Found(r)
        }),
        1 => Just(Answer::Gone),
    ]
}

/// The webhooks that say what a Sync answer says: the report itself; for a publication gone
/// everywhere, its cancellation; for one gone where others are not, its copies removed.
fn webhooks_for(stored: &PostState, answers: &[(Generation, Answer)]) -> Vec<PostReport> {
    let all_gone = answers.iter().all(|(_, a)| matches!(a, Answer::Gone));
    answers
        .iter()
        .map(|(generation, answer)| match answer {
            Answer::Found(report) => report.clone(),
            Answer::Gone if all_gone => {
                let mut cancel = report(*generation, Platform::X, EntryStatus::Queued, None);
                cancel.platforms.clear();
                cancel.cancelled = true;
                cancel
            }
            Answer::Gone => {
                let mut removed = report(*generation, Platform::X, EntryStatus::Removed, None);
                removed.platforms = stored
                    .entries
                    .iter()
                    .filter(|(_, e)| e.generation == *generation)
                    .map(|(p, _)| PlatformReport::bare(*p, EntryStatus::Removed))
                    .collect();
                removed
            }
        })
        .collect()
}

proptest! {
    #[test]
    fn sync_of_the_services_answers_equals_applying_the_webhooks_that_say_the_same(
        missed in prop::collection::vec(any_report().prop_map(one_service_post), 1..8),
        answers in (any_answer(1), any_answer(2), any_answer(3)),
    ) {
        let stored = fold(&missed);
        let asked: Vec<Generation> = publications(&stored).into_iter().map(|(g, _)| g).collect();
        let (a1, a2, a3) = answers;
        let answers: Vec<(Generation, Answer)> =
            [(1, a1), (2, a2), (3, a3)].into_iter().filter(|(g, _)| asked.contains(g)).collect();
        let domain_answers = answers
            .iter()
            .map(|(g, a)| (*g, match a { Answer::Found(r) => ServiceAnswer::Found(r.clone()), Answer::Gone => ServiceAnswer::Gone }))
            .collect();
        let synced = stored.join(&sync_evidence(&stored, domain_answers));
        let webhooks = webhooks_for(&stored, &answers);
        let applied = webhooks.iter().fold(stored.clone(), |s, r| s.join(&r.to_state(Some(&s)).unwrap()));
        prop_assert_eq!(synced, applied);
    }
}

#[test]
fn only_a_copy_failed_on_an_expired_token_is_news_about_its_connection() {
    let mut failed = report(1, Platform::X, EntryStatus::Failed, None);
    assert!(failed.connection_news().is_empty(), "another failure says nothing about the connection");
    failed.platforms[0].auth_expired = true;
    let news = failed.connection_news();
    assert_eq!(news.len(), 1);
    let ConnectionEvidence::Disconnected(c) = &news[0] else { panic!("a disconnect of that account: {news:?}") };
    assert_eq!(
        (c.platform, c.status, c.reason.as_deref()),
        (Platform::X, ConnectionStatus::Expired, Some("token_expired"))
    );
    assert_eq!((c.account_id.as_ref().map(AccountId::as_str), c.evidence_at), (Some("acc"), failed.reported_at));
    let mut live = report(1, Platform::X, EntryStatus::Published, Some("https://x.com/1"));
    live.platforms[0].auth_expired = true;
    assert!(live.connection_news().is_empty(), "a live copy proves the token worked");
    failed.platforms[0].account_id = None;
    assert!(failed.connection_news().is_empty(), "no account, no connection to speak of");
}

#[test]
fn a_report_about_another_service_post_is_no_evidence_about_a_publication_that_has_one() {
    let state = fold(&[report(1, Platform::X, EntryStatus::Queued, None)]);
    let foreign = PostReport {
        service_post_id: sid(99),
        ..report(1, Platform::X, EntryStatus::Published, Some("https://evil.example/1"))
    };
    assert_eq!(foreign.to_state(Some(&state)), Err(Unapplied::AnotherServicePost));
    // A publication with no service post recorded yet takes the first one that names it.
    assert!(foreign.to_state(Some(&PostState::default())).is_ok());
    assert!(foreign.to_state(None).is_ok());
    // Its own service post still applies, and another generation's entries do not matter.
    let own = report(1, Platform::X, EntryStatus::Published, Some("https://x.com/1"));
    assert!(own.to_state(Some(&state)).is_ok());
    let second = PostReport { service_post_id: sid(99), ..report(2, Platform::Linkedin, EntryStatus::Queued, None) };
    assert!(second.to_state(Some(&state)).is_ok());
}
