//! A post as kept, and what a write makes of it: the evidence joined in, a new draft, the
//! publication being sent begun or ended, the reconciler's watch, and whether any of it is a
//! change worth writing (a repeat leaves the post as it was, `updated_at` included).

use super::healing::{Watch, post_watch};
use super::history::{Change, post_changes};
use super::post::PostState;
use super::publish::{self, Draft, Sending, SendingChange, sending_after};
use super::time::Timestamp;

/// A post as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPost {
    pub state: PostState,
    pub draft: Option<Draft>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub version: u64,
    /// While a copy waits for the service: since when, for the reconciler (`domain::healing`).
    pub watch: Option<Watch>,
    /// A publication handed to the service whose outcome is not recorded yet.
    pub sending: Option<Sending>,
    /// For the store: the digest of the draft when it is kept in an item of its own, apart from
    /// the post's (`None`: kept in the post's own item, as items written before, or no draft).
    pub draft_digest: Option<String>,
}

impl StoredPost {
    /// The post's state as shown: a publication being sent shows its copies queued.
    pub fn shown(&self) -> PostState {
        publish::shown(&self.state, self.sending.as_ref())
    }
}

/// The post after `evidence` (and a new draft, if any) joins in, and whether that changes it: when
/// it does not, nothing is written and `updated_at` stays.
pub fn next_post(
    stored: Option<&StoredPost>,
    draft: Option<&Draft>,
    evidence: &PostState,
    sending: Option<SendingChange<'_>>,
    now: Timestamp,
) -> (StoredPost, bool) {
    let mut next = stored.cloned().unwrap_or(StoredPost {
        state: PostState::default(),
        draft: None,
        created_at: now,
        updated_at: now,
        version: 0,
        watch: None,
        sending: None,
        draft_digest: None,
    });
    next.state = next.state.join(evidence);
    if let Some(draft) = draft {
        next.draft = Some(draft.clone());
    }
    next.sending = sending_after(next.sending.take(), sending, &next.state);
    // Watched while anything is queued, a publication being sent included (its follow-up may be lost).
    next.watch = post_watch(&next.shown(), next.watch, now);
    // A publication begun or ended is bookkeeping: written, but the post's updated_at stays.
    if stored.is_some_and(|s| s.state == next.state && s.draft == next.draft) {
        let bookkeeping = stored.is_some_and(|s| s.sending != next.sending || s.watch != next.watch);
        return (next, bookkeeping);
    }
    next.updated_at = now;
    (next, true)
}

/// The visible changes a write makes to a post, for its history (`publish::recorded`: what the
/// history speaks of before and after).
pub fn history_changes(before: Option<&StoredPost>, after: &StoredPost, now: Timestamp) -> Vec<Change> {
    let before = before.and_then(|s| publish::recorded(&s.state, s.sending.as_ref()));
    match publish::recorded(&after.state, after.sending.as_ref()) {
        Some(after) => post_changes(before.as_deref(), &after, now),
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::domain::ids::AccountId;
    use crate::domain::platform::Platform;
    use crate::domain::post::tests::any_report;
    use crate::domain::publish::Target;

    fn t(minutes: i64) -> Timestamp {
        Timestamp::parse("2026-11-29T12:00:00Z").unwrap().plus_seconds(minutes * 60)
    }

    fn sending(generation: u32) -> Sending {
        let target = Target { platform: Platform::X, account_id: AccountId::parse("acc0").unwrap() };
        Sending {
            generation,
            targets: vec![target],
            scheduled_for: None,
            since: t(0),
            new_post: generation == 1,
            shown: false,
        }
    }

    /// One write as a writer makes it: a report's evidence, perhaps a draft, perhaps a publication
    /// begun or ended.
    #[derive(Debug, Clone)]
    struct Write {
        report: crate::domain::PostReport,
        draft: Option<u8>,
        sending: Option<(bool, u32)>,
    }

    fn any_write() -> impl Strategy<Value = Write> {
        (any_report(), prop::option::of(0u8..3), prop::option::of((any::<bool>(), 1u32..4)))
            .prop_map(|(report, draft, sending)| Write { report, draft, sending })
    }

    fn apply(stored: Option<&StoredPost>, write: &Write, now: Timestamp) -> (StoredPost, bool) {
        let evidence = write.report.to_state(stored.map(|s| &s.state)).unwrap_or_default();
        let draft = write.draft.map(|n| Draft { content: format!("draft {n}"), media: Vec::new() });
        let begun = write.sending.map(|(_, generation)| sending(generation));
        let change = match (write.sending, &begun) {
            (Some((true, _)), Some(begun)) => Some(SendingChange::Begin(begun)),
            (Some((false, generation)), _) => Some(SendingChange::End(generation)),
            _ => None,
        };
        next_post(stored, draft.as_ref(), &evidence, change, now)
    }

    proptest! {
        /// A write that arrives again (a retried webhook, a repeated request) changes nothing:
        /// nothing is written and the post, `updated_at` included, is as the first left it.
        #[test]
        fn a_write_made_again_changes_nothing(writes in prop::collection::vec(any_write(), 1..8)) {
            let mut stored: Option<StoredPost> = None;
            for (minute, write) in writes.iter().enumerate() {
                let (next, _) = apply(stored.as_ref(), write, t(minute as i64));
                let (again, changed) = apply(Some(&next), write, t(minute as i64 + 30));
                prop_assert!(!changed, "the same write again is a write: {:?}", write);
                prop_assert_eq!(&again, &next);
                stored = Some(next);
            }
        }

        /// `updated_at` moves exactly when the post's state or draft changes; bookkeeping (the
        /// publication being sent, the reconciler's watch) is written without moving it, and
        /// `created_at` is the first write's.
        #[test]
        fn updated_at_moves_only_with_the_state_or_the_draft(writes in prop::collection::vec(any_write(), 1..8)) {
            let mut stored: Option<StoredPost> = None;
            for (minute, write) in writes.iter().enumerate() {
                let now = t(minute as i64 + 1);
                let (next, changed) = apply(stored.as_ref(), write, now);
                let seen = stored.as_ref().is_none_or(|s| s.state != next.state || s.draft != next.draft);
                let bookkeeping = stored.as_ref().is_some_and(|s| s.sending != next.sending || s.watch != next.watch);
                prop_assert_eq!(changed, seen || bookkeeping);
                let expected = if seen { now } else { stored.as_ref().unwrap().updated_at };
                prop_assert_eq!(next.updated_at, expected);
                prop_assert_eq!(next.created_at, stored.as_ref().map_or(now, |s| s.created_at));
                if changed { stored = Some(next); }
            }
        }
    }
}
