//! History: the visible changes between two views of a post or a connection, as records. A
//! visible change is a change of what the API shows: a post's overall status; an entry's status,
//! link or error; a connection's status, account or reason. Records are written with the change
//! they describe, so a write that changes nothing visible records nothing.

use super::connection::{Connection, ConnectionStatus};
use super::ids::EventId;
use super::platform::Platform;
use super::post::PostState;
use super::time::Timestamp;

/// How long history is kept (`HistoryRetentionDays`, lifecycle.md): a record expires that many
/// days after it was written, through the table's TTL; 0 keeps it for ever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub days: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Retention { days: 400 }
    }
}

impl Retention {
    /// When a record written at `at` expires; `None` kept for ever.
    pub fn expires_at(self, at: Timestamp) -> Option<Timestamp> {
        (self.days > 0).then(|| at.plus_seconds(i64::from(self.days) * 24 * 3600))
    }

    /// Whether a record written at `at` is still shown at `now`: never once its time has passed,
    /// even before TTL (late by up to days) removes it.
    pub fn shows(self, at: Timestamp, now: Timestamp) -> bool {
        self.expires_at(at).is_none_or(|end| now < end)
    }

    /// Of a page of records newest first (their times), how many are shown at `now`: those
    /// before the first one past its time; every older one is past it too, so the history ends
    /// there.
    pub fn shown(self, newest_first: &[Timestamp], now: Timestamp) -> usize {
        newest_first.iter().take_while(|at| self.shows(**at, now)).count()
    }
}

/// Who made a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A webhook (or its retry), with the event's id.
    Webhook(EventId),
    Sync,
    Refresh,
    Publish,
    ManualDelete,
    Reconciler,
    /// The user's Disconnect of a platform.
    Disconnect,
}

impl Source {
    pub fn as_str(&self) -> &'static str {
        match self {
            Source::Webhook(_) => "webhook",
            Source::Sync => "sync",
            Source::Refresh => "refresh",
            Source::Publish => "publish",
            Source::ManualDelete => "manual_delete",
            Source::Reconciler => "reconciler",
            Source::Disconnect => "disconnect",
        }
    }

    /// Whether connections this source writes come from a whole check against the live list (a
    /// Refresh, by a user or by the reconciler), which the project then records as its last check.
    pub fn checks_connections(&self) -> bool {
        matches!(self, Source::Refresh | Source::Reconciler)
    }

    /// Whether a write of this source's that `changed` a connection lets the project count as
    /// checked (capacity.md, "The reconciler keeps up"): a whole check always; a webhook that
    /// changed one of its connections too — the service has just told us of them, so the daily
    /// check can wait a day from now.
    pub fn counts_as_check(&self, changed: bool) -> bool {
        self.checks_connections() || (changed && matches!(self, Source::Webhook(_)))
    }

    /// The evidence the record names: the webhook's event id.
    pub fn evidence(&self) -> Option<&EventId> {
        match self {
            Source::Webhook(id) => Some(id),
            _ => None,
        }
    }
}

/// Which shown field changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Field {
    Status,
    Url,
    Error,
    AccountId,
    Reason,
}

impl Field {
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Status => "status",
            Field::Url => "url",
            Field::Error => "error",
            Field::AccountId => "account_id",
            Field::Reason => "reason",
        }
    }
}

/// One visible change: `platform` is `None` for a post's overall status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub platform: Option<Platform>,
    pub field: Field,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// What the API shows of a post at `now`, field by field, in a fixed order.
fn post_fields(state: Option<&PostState>, now: Timestamp) -> Vec<(Option<Platform>, Field, Option<String>)> {
    let Some(state) = state else { return Vec::new() };
    let mut shown = vec![(None, Field::Status, Some(state.overall(now).as_str().to_owned()))];
    for (platform, entry) in &state.entries {
        shown.push((Some(*platform), Field::Status, Some(state.shown(entry).as_str().to_owned())));
        shown.push((Some(*platform), Field::Url, entry.url.clone()));
        shown.push((Some(*platform), Field::Error, entry.error.clone()));
    }
    shown
}

/// The visible changes from `before` (none: the post did not exist) to `after`, both read at
/// `now`. What did not exist before reads `from: None`; a field that stays empty records nothing.
pub fn post_changes(before: Option<&PostState>, after: &PostState, now: Timestamp) -> Vec<Change> {
    let old = post_fields(before, now);
    let was = |platform: Option<Platform>, field: Field| {
        old.iter().find(|(p, f, _)| *p == platform && *f == field).and_then(|(_, _, v)| v.clone())
    };
    post_fields(Some(after), now)
        .into_iter()
        .filter_map(|(platform, field, to)| {
            let from = was(platform, field);
            (from != to).then_some(Change { platform, field, from, to })
        })
        .collect()
}

/// What the API shows of a connection, field by field; no record reads `not_connected`.
fn connection_fields(connection: Option<&Connection>) -> [(Field, Option<String>); 3] {
    let view = connection.map(Connection::view);
    let status = view.as_ref().map_or(ConnectionStatus::NotConnected, |v| v.status);
    [
        (Field::Status, Some(status.as_str().to_owned())),
        (Field::AccountId, view.as_ref().and_then(|v| v.account_id.map(str::to_owned))),
        (Field::Reason, view.as_ref().and_then(|v| v.reason.map(str::to_owned))),
    ]
}

/// The visible changes of one platform's connection from `before` to `after` (none: no record,
/// which the API shows as `not_connected`).
pub fn connection_changes(platform: Platform, before: Option<&Connection>, after: Option<&Connection>) -> Vec<Change> {
    let old = connection_fields(before);
    connection_fields(after)
        .into_iter()
        .zip(old)
        .filter_map(|((field, to), (_, from))| {
            (from != to).then_some(Change { platform: Some(platform), field, from, to })
        })
        .collect()
}

#[cfg(test)]
mod retention_tests {
    use super::*;

    #[test]
    fn a_record_is_shown_until_its_retention_ends_and_zero_keeps_it_for_ever() {
        let at = Timestamp::from_unix(1_800_000_000);
        let kept = Retention { days: 400 };
        assert_eq!(kept.expires_at(at), Some(at.plus_seconds(400 * 86_400)));
        assert!(kept.shows(at, at.plus_seconds(400 * 86_400 - 1)));
        assert!(!kept.shows(at, at.plus_seconds(400 * 86_400)));
        let forever = Retention { days: 0 };
        assert_eq!(forever.expires_at(at), None);
        assert!(forever.shows(at, at.plus_seconds(100 * 365 * 86_400)));
        assert_eq!(Retention::default().days, 400);
        let page = [at.plus_seconds(10 * 86_400), at.plus_seconds(86_400), at];
        assert_eq!(Retention { days: 2 }.shown(&page, at.plus_seconds(5 * 43_200)), 2, "the oldest is hidden");
        assert_eq!(Retention { days: 0 }.shown(&page, at.plus_seconds(3 * 86_400)), 3);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::domain::ids::AccountId;
    use crate::domain::post::{EntryStatus, PlatformEntry};

    fn t(s: i64) -> Timestamp {
        Timestamp::from_unix(1_800_000_000 + s)
    }

    #[test]
    fn a_whole_check_or_a_webhook_that_changed_a_connection_counts_as_checked() {
        let webhook = Source::Webhook(EventId::parse("evt_1").unwrap());
        assert!(Source::Refresh.counts_as_check(false) && Source::Reconciler.counts_as_check(false));
        assert!(webhook.counts_as_check(true));
        assert!(!webhook.counts_as_check(false), "a webhook that changed nothing told us nothing new");
        for other in [Source::Sync, Source::Publish, Source::ManualDelete] {
            assert!(!other.counts_as_check(true), "{other:?} sees one connection, not the list");
        }
    }

    fn entry(generation: u32, status: EntryStatus, url: Option<&str>, error: Option<&str>) -> PlatformEntry {
        PlatformEntry {
            url: url.map(str::to_owned),
            error: error.map(str::to_owned),
            account_id: Some(AccountId::parse("a1").unwrap()),
            ..PlatformEntry::bare(generation, status)
        }
    }

    #[test]
    fn a_new_post_records_its_status_and_each_entry_from_nothing() {
        let after = PostState {
            entries: [(Platform::X, entry(1, EntryStatus::Queued, None, None))].into(),
            ..PostState::default()
        };
        let changes = post_changes(None, &after, t(0));
        assert_eq!(
            changes,
            vec![
                Change { platform: None, field: Field::Status, from: None, to: Some("publishing".into()) },
                Change { platform: Some(Platform::X), field: Field::Status, from: None, to: Some("queued".into()) },
            ]
        );
    }

    #[test]
    fn a_copy_going_live_records_its_status_its_link_and_the_overall_status() {
        let before = PostState {
            entries: [(Platform::X, entry(1, EntryStatus::Queued, None, None))].into(),
            ..PostState::default()
        };
        let after = PostState {
            entries: [(Platform::X, entry(1, EntryStatus::Published, Some("https://x.com/1"), None))].into(),
            ..PostState::default()
        };
        let fields: Vec<(Option<Platform>, Field)> =
            post_changes(Some(&before), &after, t(0)).iter().map(|c| (c.platform, c.field)).collect();
        assert_eq!(
            fields,
            vec![(None, Field::Status), (Some(Platform::X), Field::Status), (Some(Platform::X), Field::Url)]
        );
        assert!(post_changes(Some(&after), &after, t(0)).is_empty(), "no change, no record");
    }

    #[test]
    fn a_first_connection_is_from_not_connected() {
        let c = Connection {
            platform: Platform::X,
            status: ConnectionStatus::Connected,
            evidence_at: t(0),
            account_id: Some(AccountId::parse("a1").unwrap()),
            username: None,
            display_name: None,
            reason: None,
            looks: None,
        };
        let changes = connection_changes(Platform::X, None, Some(&c));
        assert_eq!(changes[0].from.as_deref(), Some("not_connected"));
        assert_eq!(changes[0].to.as_deref(), Some("connected"));
        assert_eq!((changes[1].field, changes[1].to.as_deref()), (Field::AccountId, Some("a1")));
        assert!(connection_changes(Platform::X, Some(&c), Some(&c)).is_empty());
    }

    fn any_entry() -> impl Strategy<Value = (Platform, PlatformEntry)> {
        let status = prop_oneof![
            Just(EntryStatus::Queued),
            Just(EntryStatus::Failed),
            Just(EntryStatus::Published),
            Just(EntryStatus::Removed)
        ];
        let platform = prop_oneof![Just(Platform::X), Just(Platform::Linkedin)];
        (platform, 1u32..3, status, prop::option::of(0u8..2), prop::option::of(0u8..2)).prop_map(
            |(p, g, s, url, error)| {
                let url = url.map(|u| format!("https://x.com/{g}/{u}"));
                let error = error.map(|e| format!("error {e}"));
                (p, entry(g, s, url.as_deref(), error.as_deref()).normalized())
            },
        )
    }

    proptest! {
        /// Whatever order evidence arrives in, the records written along the way describe a path:
        /// each record's `from` is what the field showed just before, and applying every record's
        /// `to` in order turns the first view into the final one.
        #[test]
        fn the_records_of_any_history_describe_a_path_from_the_first_view_to_the_last(
            evidence in prop::collection::vec(any_entry(), 1..8),
            cancelled in prop::option::of(1u32..3),
        ) {
            let now = t(0);
            let mut state: Option<PostState> = None;
            let mut view: Vec<(Option<Platform>, Field, Option<String>)> = Vec::new();
            let mut pieces: Vec<PostState> = evidence.into_iter().map(|(p, e)| PostState { entries: [(p, e)].into(), ..PostState::default() }).collect();
            if let Some(g) = cancelled {
                pieces.push(PostState { cancelled: [g].into(), ..PostState::default() });
            }
            for piece in pieces {
                let next = state.as_ref().map_or_else(|| piece.clone(), |s| s.join(&piece));
                for change in post_changes(state.as_ref(), &next, now) {
                    let at = view.iter().position(|(p, f, _)| *p == change.platform && *f == change.field);
                    let shown = at.and_then(|i| view[i].2.clone());
                    prop_assert_eq!(&change.from, &shown, "a record's from is what was shown");
                    match at {
                        Some(i) => view[i].2 = change.to.clone(),
                        None => view.push((change.platform, change.field, change.to.clone())),
                    }
                }
                state = Some(next);
            }
            let mut replayed: Vec<_> = view.into_iter().filter(|(_, _, v)| v.is_some()).collect();
            let mut last: Vec<_> = post_fields(state.as_ref(), now).into_iter().filter(|(_, _, v)| v.is_some()).collect();
            replayed.sort_by_key(|a| (a.0, a.1));
            last.sort_by_key(|a| (a.0, a.1));
            prop_assert_eq!(replayed, last);
        }
    }
}
