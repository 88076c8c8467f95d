//! A connection's state: the last writer by evidence time wins, and at equal times the status
//! that needs attention wins, so a tie never hides a broken connection. A platform's record keeps
//! what it is linked to apart from the disconnects it heard of, account by account, so that a
//! disconnect of an account the platform no longer points at changes nothing, in any order.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ids::AccountId;
use super::platform::Platform;
use super::time::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    Connected,
    Expired,
    Revoked,
    Error,
    NotConnected,
}

impl ConnectionStatus {
    /// How urgently the status asks for the user: the tie-break at equal evidence times.
    pub fn attention(self) -> u8 {
        match self {
            ConnectionStatus::Revoked => 4,
            ConnectionStatus::Expired => 3,
            ConnectionStatus::Error => 2,
            ConnectionStatus::Connected => 1,
            ConnectionStatus::NotConnected => 0,
        }
    }

    pub fn needs_reconnect(self) -> bool {
        matches!(self, ConnectionStatus::Expired | ConnectionStatus::Revoked | ConnectionStatus::Error)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionStatus::Connected => "connected",
            ConnectionStatus::Expired => "expired",
            ConnectionStatus::Revoked => "revoked",
            ConnectionStatus::Error => "error",
            ConnectionStatus::NotConnected => "not_connected",
        }
    }
}

/// Why a connection is in its status, in the API's words.
pub mod reason {
    pub const TOKEN_EXPIRED: &str = "token_expired";
    pub const ACCOUNT_REMOVED: &str = "account_removed";
    pub const REVOKED: &str = "revoked";
    pub const RELINKED: &str = "relinked";
    pub const HEALTH_ERROR: &str = "health_error";
    /// Connected, but switched off for posting on the service (`enabled: false`).
    pub const NOT_ENABLED: &str = "not_enabled";
}

/// The account's picture and page, as last read from the live list. They belong to one account
/// and are shown only while the connection points at that account.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AccountLooks {
    pub evidence_at: Timestamp,
    pub account_id: AccountId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_url: Option<String>,
    /// When the account's token expires, as the service's health answer last said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_expires_at: Option<Timestamp>,
}

/// One platform's connection for a project, with the time of the evidence it rests on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    pub platform: Platform,
    pub status: ConnectionStatus,
    pub evidence_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<AccountId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub looks: Option<AccountLooks>,
}

/// What the API shows of a connection; `updated_at` moves only when this does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionView<'a> {
    pub status: ConnectionStatus,
    pub account_id: Option<&'a str>,
    pub username: Option<&'a str>,
    pub display_name: Option<&'a str>,
    pub avatar_url: Option<&'a str>,
    pub profile_url: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub token_expires_at: Option<Timestamp>,
}

impl Connection {
    /// The account a Connect asks the service to refresh (`reconnectAccountId`): the one an
    /// expired, revoked or errored connection holds, so the service does not add a second account
    /// beside it. A connected or never-connected platform reconnects nothing.
    pub fn to_reconnect(&self) -> Option<&AccountId> {
        self.status.needs_reconnect().then_some(self.account_id.as_ref()).flatten()
    }

    /// The order in which two pieces of evidence win: newer first, then the one needing
    /// attention, then (so that every arrival order agrees) the rest of what they say.
    fn precedence(&self) -> impl Ord + '_ {
        (self.evidence_at, self.status.attention(), &self.account_id, &self.username, &self.display_name, &self.reason)
    }

    pub fn join(&self, other: &Connection) -> Connection {
        let mut winner = if other.precedence() > self.precedence() { other.clone() } else { self.clone() };
        winner.looks = self.looks.clone().max(other.looks.clone());
        winner
    }

    pub fn view(&self) -> ConnectionView<'_> {
        let looks = self.looks.as_ref().filter(|l| Some(&l.account_id) == self.account_id.as_ref());
        ConnectionView {
            status: self.status,
            account_id: self.account_id.as_ref().map(AccountId::as_str),
            username: self.username.as_deref(),
            display_name: self.display_name.as_deref(),
            avatar_url: looks.and_then(|l| l.avatar_url.as_deref()),
            profile_url: looks.and_then(|l| l.profile_url.as_deref()),
            reason: self.reason.as_deref(),
            token_expires_at: looks.and_then(|l| l.token_expires_at),
        }
    }
}

/// The reason a connection the user disconnected shows.
pub const DISCONNECTED: &str = "disconnected";

/// What the user's Disconnect of a platform does, decided from the connection as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disconnect {
    /// The platform was never connected: nothing to disconnect (404).
    NeverConnected,
    /// Already disconnected by the user: answered as it is, nothing called or written.
    AlreadyDone,
    /// Delete this account on the service (when the record holds one), then record the platform
    /// `not_connected` (reason `disconnected`) at the Disconnect's time.
    Delete(Option<AccountId>),
}

/// The decision of a Disconnect (lifecycle.md).
pub fn disconnect(stored: Option<&Connection>) -> Disconnect {
    match stored {
        None => Disconnect::NeverConnected,
        Some(c) if c.status == ConnectionStatus::NotConnected && c.reason.as_deref() == Some(DISCONNECTED) => {
            Disconnect::AlreadyDone
        }
        Some(c) => Disconnect::Delete(c.account_id.clone()),
    }
}

/// The evidence a Disconnect records: the platform linked to nothing from `at`, so an
/// `account.connected` made before it cannot bring the connection back, and a later one can.
pub fn disconnected(platform: Platform, at: Timestamp) -> Connection {
    Connection {
        platform,
        status: ConnectionStatus::NotConnected,
        evidence_at: at,
        account_id: None,
        username: None,
        display_name: None,
        reason: Some(DISCONNECTED.to_owned()),
        looks: None,
    }
}

/// A piece of evidence about one platform's connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionEvidence {
    /// The platform is linked to this account, in this state: `account.connected` (authoritative,
    /// and it re-links), a Refresh's judgement, a publish that found the account stale.
    Linked(Connection),
    /// This account was disconnected (`account.disconnected`): news only while the platform is
    /// linked to that account.
    Disconnected(Connection),
}

impl ConnectionEvidence {
    pub fn platform(&self) -> Platform {
        match self {
            ConnectionEvidence::Linked(e) | ConnectionEvidence::Disconnected(e) => e.platform,
        }
    }

    fn connection(&self) -> &Connection {
        match self {
            ConnectionEvidence::Linked(e) | ConnectionEvidence::Disconnected(e) => e,
        }
    }
}

/// Everything known of one platform's connection: a join of evidence, in any order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionRecord {
    /// What the platform is linked to: the newest link evidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<Connection>,
    /// The newest disconnect heard of each account; one older than the link can never count again
    /// and is dropped.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub disconnects: BTreeMap<AccountId, Connection>,
}

impl ConnectionRecord {
    pub fn of(evidence: &ConnectionEvidence) -> ConnectionRecord {
        let mut record = ConnectionRecord::default();
        match evidence {
            ConnectionEvidence::Linked(e) => record.link = Some(e.clone()),
            ConnectionEvidence::Disconnected(e) => {
                if let Some(account) = &e.account_id {
                    record.disconnects.insert(account.clone(), e.clone());
                }
            }
        }
        record
    }

    pub fn join(&self, other: &ConnectionRecord) -> ConnectionRecord {
        let link = match (&self.link, &other.link) {
            (Some(a), Some(b)) => Some(a.join(b)),
            (a, b) => a.clone().or_else(|| b.clone()),
        };
        let mut disconnects = self.disconnects.clone();
        for (account, theirs) in &other.disconnects {
            let joined = disconnects.get(account).map_or_else(|| theirs.clone(), |ours| ours.join(theirs));
            disconnects.insert(account.clone(), joined);
        }
        if let Some(link) = &link {
            disconnects.retain(|_, d| d.evidence_at >= link.evidence_at);
        }
        ConnectionRecord { link, disconnects }
    }

    pub fn with(&self, evidence: &ConnectionEvidence) -> ConnectionRecord {
        self.join(&ConnectionRecord::of(evidence))
    }

    /// The connection as the API shows it: the link, unless its account was disconnected since
    /// (at equal times the disconnect, which needs attention, wins); with no link yet, the newest
    /// disconnect heard. `None` for a record that holds nothing.
    pub fn shown(&self) -> Option<Connection> {
        let Some(link) = &self.link else {
            return self.disconnects.values().max_by(|a, b| a.precedence().cmp(&b.precedence())).cloned();
        };
        let since = link.account_id.as_ref().and_then(|a| self.disconnects.get(a));
        match since {
            Some(d) if (d.evidence_at, d.status.attention()) > (link.evidence_at, link.status.attention()) => {
                Some(Connection {
                    status: d.status,
                    evidence_at: d.evidence_at,
                    reason: d.reason.clone(),
                    ..link.clone()
                })
            }
            _ => Some(link.clone()),
        }
    }
}

/// A record as it is to be written: the joined record, what it shows, and when what the API shows
/// last changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    pub record: ConnectionRecord,
    pub shown: Connection,
    pub updated_at: Timestamp,
}

/// Joins evidence into a stored record (with its `updated_at`). `None` when nothing changes, so
/// nothing is written; `updated_at` moves to `now` only when what the API shows moves.
pub fn settle(
    stored: Option<(&ConnectionRecord, Timestamp)>,
    evidence: &ConnectionEvidence,
    now: Timestamp,
) -> Option<Settled> {
    let record = stored.map_or_else(|| ConnectionRecord::of(evidence), |(r, _)| r.with(evidence));
    let shown = record.shown().unwrap_or_else(|| evidence.connection().clone());
    match stored {
        Some((r, _)) if *r == record => None,
        Some((r, updated_at)) if r.shown().is_some_and(|old| old.view() == shown.view()) => {
            Some(Settled { record, shown, updated_at })
        }
        _ => Some(Settled { record, shown, updated_at: now }),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn evidence(at: i64, status: ConnectionStatus, account: &str) -> Connection {
        Connection {
            platform: Platform::X,
            status,
            evidence_at: Timestamp::from_unix(at),
            account_id: Some(AccountId::parse(account).unwrap()),
            username: Some(format!("user-{account}")),
            display_name: None,
            reason: None,
            looks: None,
        }
    }

    #[test]
    fn a_disconnect_deletes_the_account_held_and_an_older_connect_cannot_undo_it_but_a_later_one_can() {
        assert_eq!(disconnect(None), Disconnect::NeverConnected);
        let live = evidence(100, ConnectionStatus::Connected, "a");
        assert_eq!(disconnect(Some(&live)), Disconnect::Delete(Some(AccountId::parse("a").unwrap())));
        let gone = super::disconnected(Platform::X, Timestamp::from_unix(200));
        assert_eq!(disconnect(Some(&gone)), Disconnect::AlreadyDone);
        let record = ConnectionRecord::of(&ConnectionEvidence::Linked(live)).with(&ConnectionEvidence::Linked(gone));
        assert_eq!(record.shown().unwrap().status, ConnectionStatus::NotConnected);
        let older_connect = ConnectionEvidence::Linked(evidence(150, ConnectionStatus::Connected, "a"));
        assert_eq!(record.with(&older_connect).shown().unwrap().status, ConnectionStatus::NotConnected);
        let later_connect = ConnectionEvidence::Linked(evidence(250, ConnectionStatus::Connected, "b"));
        assert_eq!(record.with(&later_connect).shown().unwrap().status, ConnectionStatus::Connected);
        // A platform shown not connected for another reason (its account removed) still records
        // the user's Disconnect, deleting whatever account it holds.
        let removed = Connection {
            status: ConnectionStatus::NotConnected,
            reason: Some("removed".into()),
            account_id: None,
            ..evidence(1, ConnectionStatus::Connected, "a")
        };
        assert_eq!(disconnect(Some(&removed)), Disconnect::Delete(None));
    }

    #[test]
    fn only_a_connection_that_needs_reconnecting_names_its_account_to_reconnect() {
        for status in [ConnectionStatus::Expired, ConnectionStatus::Revoked, ConnectionStatus::Error] {
            assert_eq!(evidence(1, status, "a").to_reconnect().map(AccountId::as_str), Some("a"));
        }
        for status in [ConnectionStatus::Connected, ConnectionStatus::NotConnected] {
            assert_eq!(evidence(1, status, "a").to_reconnect(), None);
        }
        let no_account = Connection { account_id: None, ..evidence(1, ConnectionStatus::Expired, "a") };
        assert_eq!(no_account.to_reconnect(), None);
    }

    #[test]
    fn newer_evidence_wins_in_either_arrival_order() {
        let old = evidence(100, ConnectionStatus::Expired, "a");
        let new = evidence(200, ConnectionStatus::Connected, "a");
        assert_eq!(old.join(&new).status, ConnectionStatus::Connected);
        assert_eq!(new.join(&old).status, ConnectionStatus::Connected);
    }

    #[test]
    fn at_equal_times_the_status_needing_attention_wins_in_either_order() {
        let ok = evidence(100, ConnectionStatus::Connected, "a");
        let broken = evidence(100, ConnectionStatus::Expired, "a");
        assert_eq!(ok.join(&broken).status, ConnectionStatus::Expired);
        assert_eq!(broken.join(&ok).status, ConnectionStatus::Expired);
        let revoked = evidence(100, ConnectionStatus::Revoked, "a");
        assert_eq!(broken.join(&revoked).status, ConnectionStatus::Revoked);
        let error = evidence(100, ConnectionStatus::Error, "a");
        assert_eq!(error.join(&ok).status, ConnectionStatus::Error);
    }

    #[test]
    fn a_picture_is_shown_only_for_the_account_it_belongs_to() {
        let mut refreshed = evidence(100, ConnectionStatus::Connected, "a");
        refreshed.looks = Some(AccountLooks {
            evidence_at: Timestamp::from_unix(100),
            account_id: AccountId::parse("a").unwrap(),
            avatar_url: Some("https://img/a".into()),
            profile_url: None,
            token_expires_at: None,
        });
        let reconnected_other = evidence(200, ConnectionStatus::Connected, "b");
        let joined = refreshed.join(&reconnected_other);
        assert_eq!(joined.view().account_id, Some("b"));
        assert_eq!(joined.view().avatar_url, None);
        let same_account_later = evidence(300, ConnectionStatus::Expired, "a");
        assert_eq!(joined.join(&same_account_later).view().avatar_url, Some("https://img/a"));
    }

    fn linked(at: i64, status: ConnectionStatus, account: &str) -> ConnectionEvidence {
        ConnectionEvidence::Linked(evidence(at, status, account))
    }

    fn disconnected(at: i64, status: ConnectionStatus, account: &str) -> ConnectionEvidence {
        ConnectionEvidence::Disconnected(evidence(at, status, account))
    }

    fn record(evidence: &[ConnectionEvidence]) -> ConnectionRecord {
        evidence.iter().fold(ConnectionRecord::default(), |r, e| r.with(e))
    }

    #[test]
    fn a_disconnect_of_an_account_the_record_does_not_hold_changes_nothing() {
        let b = [linked(100, ConnectionStatus::Connected, "b")];
        let other = disconnected(200, ConnectionStatus::Expired, "a");
        assert_eq!(record(&[b[0].clone(), other.clone()]).shown(), record(&b).shown());
        let own = disconnected(200, ConnectionStatus::Expired, "b");
        assert_eq!(record(&[b[0].clone(), own]).shown().map(|c| c.status), Some(ConnectionStatus::Expired));
        let relink = linked(300, ConnectionStatus::Connected, "a");
        let shown = record(&[b[0].clone(), relink]).shown().unwrap();
        assert_eq!((shown.view().account_id, shown.status), (Some("a"), ConnectionStatus::Connected));
    }

    #[test]
    fn a_relink_made_before_an_old_accounts_disconnect_is_not_undone_by_it_in_any_order() {
        // A linked at 100, B linked at 300, A disconnected at 400: B stays connected.
        let history = [
            linked(100, ConnectionStatus::Connected, "a"),
            disconnected(400, ConnectionStatus::Expired, "a"),
            linked(300, ConnectionStatus::Connected, "b"),
        ];
        let shown = record(&history).shown().unwrap();
        assert_eq!((shown.view().account_id, shown.status), (Some("b"), ConnectionStatus::Connected));
        let reversed: Vec<_> = history.iter().rev().cloned().collect();
        assert_eq!(record(&reversed).shown(), Some(shown));
    }

    #[test]
    fn updated_at_moves_only_when_what_the_api_shows_moves() {
        let stored = record(&[linked(100, ConnectionStatus::Connected, "a")]);
        let (then, now) = (Timestamp::from_unix(100), Timestamp::from_unix(500));
        let confirming = linked(300, ConnectionStatus::Connected, "a");
        let settled = settle(Some((&stored, then)), &confirming, now).unwrap();
        assert_eq!((settled.updated_at, settled.shown.evidence_at), (then, Timestamp::from_unix(300)));
        assert_eq!(settle(Some((&settled.record, then)), &confirming, now), None);
        let broken = disconnected(400, ConnectionStatus::Expired, "a");
        assert_eq!(settle(Some((&stored, then)), &broken, now).unwrap().updated_at, now);
        assert_eq!(settle(None, &broken, now).unwrap().updated_at, now);
    }

    fn any_news() -> impl Strategy<Value = ConnectionEvidence> {
        (any_evidence(), any::<bool>()).prop_map(|(mut e, link)| {
            if link {
                ConnectionEvidence::Linked(e)
            } else {
                e.looks = None;
                if e.status == ConnectionStatus::Connected {
                    e.status = ConnectionStatus::Expired;
                }
                ConnectionEvidence::Disconnected(e)
            }
        })
    }

    /// The rule read plainly: the newest link says which account; that account's newest
    /// disconnect, if it is newer (or as new and needs attention), says its status.
    fn model(history: &[ConnectionEvidence]) -> Option<(Option<String>, ConnectionStatus)> {
        let key = |e: &Connection| (e.evidence_at, e.status.attention(), e.account_id.clone(), e.username.clone());
        let links: Vec<&Connection> =
            history.iter().filter_map(|e| if let ConnectionEvidence::Linked(c) = e { Some(c) } else { None }).collect();
        let drops: Vec<&Connection> = history
            .iter()
            .filter_map(|e| if let ConnectionEvidence::Disconnected(c) = e { Some(c) } else { None })
            .collect();
        let Some(link) = links.iter().max_by_key(|c| key(c)) else {
            return drops.iter().max_by_key(|c| key(c)).map(|d| (d.account_id.as_deref().map(str::to_owned), d.status));
        };
        let newest_drop = drops.iter().filter(|d| d.account_id == link.account_id).max_by_key(|d| key(d));
        let status = match newest_drop {
            Some(d) if (d.evidence_at, d.status.attention()) > (link.evidence_at, link.status.attention()) => d.status,
            _ => link.status,
        };
        Some((link.account_id.as_deref().map(str::to_owned), status))
    }

    fn any_evidence() -> impl Strategy<Value = Connection> {
        let status = prop_oneof![
            Just(ConnectionStatus::Connected),
            Just(ConnectionStatus::Expired),
            Just(ConnectionStatus::Revoked),
            Just(ConnectionStatus::Error),
        ];
        (0i64..4, status, prop_oneof![Just("a"), Just("b")], any::<bool>()).prop_map(|(at, status, account, looks)| {
            let mut e = evidence(at, status, account);
            if looks {
                e.looks = Some(AccountLooks {
                    evidence_at: Timestamp::from_unix(at),
                    account_id: AccountId::parse(account).unwrap(),
                    avatar_url: Some(format!("https://img/{account}/{at}")),
                    profile_url: None,
                    token_expires_at: Some(Timestamp::from_unix(at + 1000)),
                });
            }
            e
        })
    }

    proptest! {
        #[test]
        fn join_is_commutative_associative_and_idempotent(a in any_evidence(), b in any_evidence(), c in any_evidence()) {
            prop_assert_eq!(a.join(&b), b.join(&a));
            prop_assert_eq!(a.join(&b).join(&c), a.join(&b.join(&c)));
            prop_assert_eq!(a.join(&a), a.clone());
        }

        #[test]
        fn records_join_in_any_order_to_what_a_plain_reading_says(
            history in prop::collection::vec(any_news(), 1..10),
            split in 0usize..10,
        ) {
            let forward = record(&history);
            let backward = record(&history.iter().rev().cloned().collect::<Vec<_>>());
            prop_assert_eq!(&forward, &backward);
            let (left, right) = history.split_at(split.min(history.len()));
            prop_assert_eq!(&record(left).join(&record(right)), &forward);
            let shown = forward.shown().map(|c| (c.account_id.as_deref().map(str::to_owned), c.status));
            prop_assert_eq!(shown, model(&history));
        }
    }
}
