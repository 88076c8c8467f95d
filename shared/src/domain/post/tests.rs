use proptest::prelude::*;

use super::*;

fn sid(n: u32) -> ServicePostId {
    ServicePostId::parse(format!("svc{n}")).unwrap()
}

fn report(generation: Generation, platform: Platform, status: EntryStatus, url: Option<&str>) -> PostReport {
    PostReport {
        service_post_id: sid(generation),
        generation: Some(generation),
        cancelled: false,
        published_at: None,
        scheduled_for: None,
        default_status: EntryStatus::Queued,
        platforms: vec![PlatformReport {
            platform,
            status: Some(status),
            account_id: Some("acc".into()),
            url: url.map(str::to_owned),
            platform_post_id: None,
            published_at: (status == EntryStatus::Published)
                .then(|| Timestamp::from_unix(1_000 + i64::from(generation))),
            error: (status == EntryStatus::Failed).then(|| "rate limited".to_owned()),
        }],
    }
}

fn fold(reports: &[PostReport]) -> PostState {
    reports.iter().fold(PostState::default(), |state, r| state.join(&r.to_state(Some(&state)).unwrap()))
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
    let one_removed = manual_delete(
        &fold(&[
            report(1, Platform::X, EntryStatus::Published, Some("u")),
            report(1, Platform::Facebook, EntryStatus::Published, None),
        ]),
        Platform::X,
    )
    .unwrap();
    assert_eq!(one_removed.overall(now), PostStatus::Published);
    assert_eq!(one_removed.entries[&Platform::X].url, None);
    let all_removed = manual_delete(&one_removed, Platform::Facebook).unwrap();
    assert_eq!(all_removed.overall(now), PostStatus::Removed);
    assert_eq!(manual_delete(&all_removed, Platform::Facebook).unwrap(), all_removed);
}

#[test]
fn a_removed_copy_is_not_brought_back_by_a_late_published_report() {
    let live = fold(&[report(1, Platform::X, EntryStatus::Published, Some("https://x.com/1"))]);
    let removed = manual_delete(&live, Platform::X).unwrap();
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

pub(crate) fn any_report() -> impl Strategy<Value = PostReport> {
    let platform = prop_oneof![Just(Platform::X), Just(Platform::Linkedin), Just(Platform::Instagram)];
    let status = prop_oneof![
        Just(EntryStatus::Queued),
        Just(EntryStatus::Failed),
        Just(EntryStatus::Published),
        Just(EntryStatus::Removed)
    ];
    (1u32..4, platform, status, any::<bool>(), any::<bool>()).prop_map(
        |(generation, platform, status, with_url, cancelled)| {
            let mut r = report(generation, platform, status, with_url.then_some("https://p/1"));
            r.cancelled = cancelled && status == EntryStatus::Queued;
            r
        },
    )
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
