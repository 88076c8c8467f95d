//! Refresh: what the live account list says about each connection, as evidence to join.

use std::collections::BTreeMap;

use super::connection::{AccountLooks, Connection, ConnectionStatus, reason};
use super::ids::AccountId;
use super::platform::{Platform, spoken_list};
use super::time::Timestamp;

/// An account in the service's live list for a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveAccount {
    pub id: AccountId,
    pub platform: Platform,
    pub username: Option<String>,
    pub display_name: Option<String>,
    pub avatar_url: Option<String>,
    pub profile_url: Option<String>,
    /// Active and not flagged as needing reconnection.
    pub usable: bool,
    /// Connected but switched off for posting on the service (`enabled: false`).
    pub enabled: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthStatus {
    Healthy,
    Warning,
    Error,
}

/// The service's health signal for one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountHealth {
    pub account_id: AccountId,
    pub status: Option<HealthStatus>,
    pub needs_reconnect: bool,
    pub token_expires_at: Option<Timestamp>,
}

/// The evidence a Refresh brings for every platform it can say something about, from the live
/// list (and the health answer, a hint: empty when it could not be read) requested at `at`.
/// First match wins, as `state-rules.md` lists: gone → expired; live under another id → re-link,
/// then judge; unusable → expired; health error → error; otherwise connected.
pub fn reconcile(
    stored: &BTreeMap<Platform, Connection>,
    live: &[LiveAccount],
    health: &[AccountHealth],
    at: Timestamp,
) -> BTreeMap<Platform, Connection> {
    let mut evidence = BTreeMap::new();
    for platform in Platform::ALL {
        let on_platform: Vec<&LiveAccount> = live.iter().filter(|a| a.platform == platform).collect();
        let known = stored.get(&platform);
        let same = known.and_then(|c| on_platform.iter().find(|a| Some(&a.id) == c.account_id.as_ref()));
        // Another live account on the platform: prefer a usable one, then the lowest id, so the
        // choice does not depend on the order of the list.
        let other = on_platform.iter().copied().min_by_key(|a| (!a.usable, a.id.clone()));
        let judged = match (known, same, other) {
            (_, Some(account), _) => judge(account, health, at, false),
            (Some(_), None, Some(account)) => judge(account, health, at, true),
            (None, None, Some(account)) => judge(account, health, at, false),
            (Some(c), None, None) => Connection {
                status: ConnectionStatus::Expired,
                evidence_at: at,
                reason: Some(reason::ACCOUNT_REMOVED.to_owned()),
                ..c.clone()
            },
            (None, None, None) => continue,
        };
        evidence.insert(platform, judged);
    }
    evidence
}

/// Why an account cannot be posted to, if it cannot: gone from the list, or not usable.
fn unusable(account: Option<&LiveAccount>, signal: Option<&AccountHealth>) -> Option<&'static str> {
    match account {
        None => Some(reason::ACCOUNT_REMOVED),
        Some(a) if !a.usable || signal.is_some_and(|h| h.needs_reconnect) => Some(reason::TOKEN_EXPIRED),
        Some(_) => None,
    }
}

fn judge(account: &LiveAccount, health: &[AccountHealth], at: Timestamp, relinked: bool) -> Connection {
    let signal = health.iter().find(|h| h.account_id == account.id);
    let (status, why) = if let Some(why) = unusable(Some(account), signal) {
        (ConnectionStatus::Expired, Some(why))
    } else if !account.enabled {
        (ConnectionStatus::Error, Some(reason::NOT_ENABLED))
    } else if signal.is_some_and(|h| h.status == Some(HealthStatus::Error)) {
        (ConnectionStatus::Error, Some(reason::HEALTH_ERROR))
    } else {
        (ConnectionStatus::Connected, relinked.then_some(reason::RELINKED))
    };
    Connection {
        platform: account.platform,
        status,
        evidence_at: at,
        account_id: Some(account.id.clone()),
        username: account.username.clone(),
        display_name: account.display_name.clone(),
        reason: why.map(str::to_owned),
        looks: Some(AccountLooks {
            evidence_at: at,
            account_id: account.id.clone(),
            avatar_url: account.avatar_url.clone(),
            profile_url: account.profile_url.clone(),
            token_expires_at: signal.and_then(|h| h.token_expires_at),
        }),
    }
}

/// After the service refused a publish over its accounts: which of this publish's platforms have
/// no usable live account with the stored id, as `expired` evidence read at `at`. Every other
/// connection is left alone.
pub fn stale_at_publish(
    stored: &[Connection],
    live: &[LiveAccount],
    platforms: &[Platform],
    at: Timestamp,
) -> Vec<Connection> {
    platforms
        .iter()
        .filter_map(|p| stored.iter().find(|c| c.platform == *p))
        .filter_map(|c| {
            let account = live.iter().find(|a| a.platform == c.platform && Some(&a.id) == c.account_id.as_ref());
            let why = unusable(account, None)?;
            Some(Connection {
                status: ConnectionStatus::Expired,
                evidence_at: at,
                reason: Some(why.to_owned()),
                ..c.clone()
            })
        })
        .collect()
}

/// The sentence that tells how many connections need attention.
/// The sentence that tells how many connections need attention, and which connected ones expire
/// within a week (`domain::healing::expires_soon`).
pub fn message(needing: &[Platform], expiring: &[Platform]) -> String {
    let mut said = match needing.len() {
        0 if expiring.is_empty() => "All your connections are working.".to_owned(),
        0 => String::new(),
        1 => format!("1 connection needs reconnecting: {}.", spoken_list(needing)),
        n => format!("{n} connections need reconnecting: {}.", spoken_list(needing)),
    };
    if !expiring.is_empty() {
        let verb = if expiring.len() == 1 { "expires" } else { "expire" };
        let soon = format!("{} {verb} within 7 days: reconnect to keep posting.", spoken_list(expiring));
        said = if said.is_empty() { soon } else { format!("{said} {soon}") };
    }
    said
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> Timestamp {
        Timestamp::from_unix(1_000)
    }

    fn live(id: &str, platform: Platform, usable: bool) -> LiveAccount {
        LiveAccount {
            id: AccountId::parse(id).unwrap(),
            platform,
            username: Some(format!("u_{id}")),
            display_name: None,
            avatar_url: Some(format!("https://img/{id}")),
            profile_url: None,
            usable,
            enabled: true,
        }
    }

    fn stored(platform: Platform, account: &str) -> (Platform, Connection) {
        let c = Connection {
            platform,
            status: ConnectionStatus::Connected,
            evidence_at: Timestamp::from_unix(1),
            account_id: Some(AccountId::parse(account).unwrap()),
            username: Some("old".into()),
            display_name: None,
            reason: None,
            looks: None,
        };
        (platform, c)
    }

    fn health(id: &str, status: Option<HealthStatus>, needs_reconnect: bool) -> AccountHealth {
        AccountHealth { account_id: AccountId::parse(id).unwrap(), status, needs_reconnect, token_expires_at: None }
    }

    #[test]
    fn each_rule_in_order() {
        let known = BTreeMap::from([
            stored(Platform::X, "x1"),
            stored(Platform::Linkedin, "li_old"),
            stored(Platform::Facebook, "fb1"),
            stored(Platform::Instagram, "ig1"),
        ]);
        let accounts = [
            live("x1", Platform::X, true),
            live("li_new", Platform::Linkedin, true),
            live("fb1", Platform::Facebook, false),
        ];
        let out = reconcile(&known, &accounts, &[], at());
        assert_eq!(out[&Platform::X].status, ConnectionStatus::Connected);
        assert_eq!(out[&Platform::X].username.as_deref(), Some("u_x1"));
        assert_eq!(out[&Platform::X].view().avatar_url, Some("https://img/x1"));
        let li = &out[&Platform::Linkedin];
        assert_eq!(
            (li.status, li.account_id.as_deref(), li.reason.as_deref()),
            (ConnectionStatus::Connected, Some("li_new"), Some("relinked"))
        );
        assert_eq!(
            (out[&Platform::Facebook].status, out[&Platform::Facebook].reason.as_deref()),
            (ConnectionStatus::Expired, Some("token_expired"))
        );
        let ig = &out[&Platform::Instagram];
        assert_eq!(
            (ig.status, ig.reason.as_deref(), ig.account_id.as_deref()),
            (ConnectionStatus::Expired, Some("account_removed"), Some("ig1"))
        );
    }

    #[test]
    fn health_error_is_error_a_warning_stays_connected_and_needs_reconnect_expires() {
        let known = BTreeMap::from([
            stored(Platform::X, "x1"),
            stored(Platform::Linkedin, "li1"),
            stored(Platform::Facebook, "fb1"),
        ]);
        let accounts = [
            live("x1", Platform::X, true),
            live("li1", Platform::Linkedin, true),
            live("fb1", Platform::Facebook, true),
        ];
        let signals = [
            health("x1", Some(HealthStatus::Error), false),
            health("li1", Some(HealthStatus::Warning), false),
            health("fb1", Some(HealthStatus::Healthy), true),
        ];
        let out = reconcile(&known, &accounts, &signals, at());
        assert_eq!(out[&Platform::X].status, ConnectionStatus::Error);
        assert_eq!(out[&Platform::Linkedin].status, ConnectionStatus::Connected);
        assert_eq!(out[&Platform::Facebook].status, ConnectionStatus::Expired);
    }

    #[test]
    fn an_account_connected_outside_the_app_is_recorded() {
        let out = reconcile(&BTreeMap::new(), &[live("ig9", Platform::Instagram, true)], &[], at());
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[&Platform::Instagram].status, out[&Platform::Instagram].reason.as_deref()),
            (ConnectionStatus::Connected, None)
        );
    }

    #[test]
    fn a_recorded_account_gone_is_relinked_to_a_usable_one_on_the_platform_before_anything_expires() {
        let known = BTreeMap::from([stored(Platform::Linkedin, "person")]);
        let accounts = [live("page_b", Platform::Linkedin, false), live("page_a", Platform::Linkedin, true)];
        let li = &reconcile(&known, &accounts, &[], at())[&Platform::Linkedin];
        assert_eq!(
            (li.status, li.account_id.as_ref().map(AccountId::as_str), li.reason.as_deref()),
            (ConnectionStatus::Connected, Some("page_a"), Some("relinked"))
        );
    }

    #[test]
    fn an_account_switched_off_for_posting_is_an_error_not_expired() {
        let mut off = live("x1", Platform::X, true);
        off.enabled = false;
        let judged = reconcile(&BTreeMap::from([stored(Platform::X, "x1")]), &[off], &[], at());
        let x = &judged[&Platform::X];
        assert_eq!((x.status, x.reason.as_deref()), (ConnectionStatus::Error, Some(reason::NOT_ENABLED)));
    }

    #[test]
    fn at_publish_only_the_platforms_without_a_usable_stored_account_are_marked() {
        let known: Vec<Connection> = [
            stored(Platform::X, "x1"),
            stored(Platform::Linkedin, "li1"),
            stored(Platform::Facebook, "fb1"),
            stored(Platform::Instagram, "ig1"),
        ]
        .into_iter()
        .map(|(_, c)| c)
        .collect();
        let accounts = [
            live("x1", Platform::X, true),
            live("li1", Platform::Linkedin, false),
            live("ig1", Platform::Instagram, false),
        ];
        let stale = stale_at_publish(&known, &accounts, &[Platform::X, Platform::Linkedin, Platform::Facebook], at());
        let got: Vec<(Platform, Option<&str>)> = stale.iter().map(|c| (c.platform, c.reason.as_deref())).collect();
        assert_eq!(
            got,
            vec![(Platform::Linkedin, Some("token_expired")), (Platform::Facebook, Some("account_removed"))]
        );
    }

    #[test]
    fn the_message_counts_and_names_the_platforms() {
        assert_eq!(message(&[], &[]), "All your connections are working.");
        assert_eq!(message(&[Platform::Linkedin], &[]), "1 connection needs reconnecting: LinkedIn.");
        assert_eq!(message(&[], &[Platform::X]), "X expires within 7 days: reconnect to keep posting.");
        assert_eq!(
            message(&[Platform::Linkedin], &[Platform::X, Platform::Facebook]),
            "1 connection needs reconnecting: LinkedIn. X and Facebook expire within 7 days: reconnect to keep posting."
        );
        assert_eq!(
            message(&[Platform::Instagram, Platform::Linkedin, Platform::X], &[]),
            "3 connections need reconnecting: Instagram, LinkedIn and X."
        );
    }
}
