//! A connection's state: the last writer by evidence time wins, and at equal times the status
//! that needs attention wins, so a tie never hides a broken connection.

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
}

impl Connection {
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
        }
    }
}

/// Joins evidence into what is stored (or into nothing, for a first record).
pub fn join_connection(stored: Option<&Connection>, evidence: &Connection) -> Connection {
    match stored {
        Some(stored) => stored.join(evidence),
        None => evidence.clone(),
    }
}

/// A connection as it is to be written: the joined state and when what the API shows last changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    pub connection: Connection,
    pub updated_at: Timestamp,
}

/// Joins evidence into a stored connection (with its `updated_at`). `None` when nothing changes,
/// so nothing is written; `updated_at` moves to `now` only when what the API shows moves.
pub fn settle(stored: Option<(&Connection, Timestamp)>, evidence: &Connection, now: Timestamp) -> Option<Settled> {
    let joined = join_connection(stored.map(|(c, _)| c), evidence);
    match stored {
        Some((c, _)) if *c == joined => None,
        Some((c, updated_at)) if c.view() == joined.view() => Some(Settled { connection: joined, updated_at }),
        _ => Some(Settled { connection: joined, updated_at: now }),
    }
}

/// What an `account.*` webhook says about one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountNews {
    /// The account is connected: authoritative, and re-links the platform to it.
    Connected(Connection),
    /// The account was disconnected: news only for a record that holds that account.
    Disconnected(Connection),
}

impl AccountNews {
    /// The evidence to join into the platform's record, if the news concerns it: a disconnect
    /// of an account the record does not point at changes nothing.
    pub fn evidence_for(&self, stored: Option<&Connection>) -> Option<&Connection> {
        match self {
            AccountNews::Connected(evidence) => Some(evidence),
            AccountNews::Disconnected(evidence) => {
                stored.is_none_or(|s| s.account_id == evidence.account_id).then_some(evidence)
            }
        }
    }

    pub fn platform(&self) -> Platform {
        match self {
            AccountNews::Connected(e) | AccountNews::Disconnected(e) => e.platform,
        }
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
        });
        let reconnected_other = evidence(200, ConnectionStatus::Connected, "b");
        let joined = refreshed.join(&reconnected_other);
        assert_eq!(joined.view().account_id, Some("b"));
        assert_eq!(joined.view().avatar_url, None);
        let same_account_later = evidence(300, ConnectionStatus::Expired, "a");
        assert_eq!(joined.join(&same_account_later).view().avatar_url, Some("https://img/a"));
    }

    #[test]
    fn a_disconnect_of_an_account_the_record_does_not_hold_changes_nothing() {
        let stored = evidence(100, ConnectionStatus::Connected, "b");
        let news = AccountNews::Disconnected(evidence(200, ConnectionStatus::Expired, "a"));
        assert_eq!(news.evidence_for(Some(&stored)), None);
        let own = AccountNews::Disconnected(evidence(200, ConnectionStatus::Expired, "b"));
        assert_eq!(own.evidence_for(Some(&stored)).map(|e| e.status), Some(ConnectionStatus::Expired));
        let relink = AccountNews::Connected(evidence(200, ConnectionStatus::Connected, "a"));
        let joined = join_connection(Some(&stored), relink.evidence_for(Some(&stored)).unwrap());
        assert_eq!(joined.view().account_id, Some("a"));
    }

    #[test]
    fn updated_at_moves_only_when_what_the_api_shows_moves() {
        let stored = evidence(100, ConnectionStatus::Connected, "a");
        let (then, now) = (Timestamp::from_unix(100), Timestamp::from_unix(500));
        let confirming = evidence(300, ConnectionStatus::Connected, "a");
        let settled = settle(Some((&stored, then)), &confirming, now).unwrap();
        assert_eq!((settled.updated_at, settled.connection.evidence_at), (then, Timestamp::from_unix(300)));
        assert_eq!(settle(Some((&settled.connection, then)), &confirming, now), None);
        let broken = evidence(400, ConnectionStatus::Expired, "a");
        assert_eq!(settle(Some((&stored, then)), &broken, now).unwrap().updated_at, now);
        assert_eq!(settle(None, &broken, now).unwrap().updated_at, now);
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
    }
}
