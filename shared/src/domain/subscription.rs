//! Watching our own webhook subscription on the service (healing-and-history.md, "Watching the
//! webhook subscription"): an outage of our endpoint loses every project's updates at once, and
//! after three days the service switches the subscription off. The reconciler reads it now and
//! then; these are the decisions, pure.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::time::Timestamp;

/// How long the service keeps its delivery logs: nothing older can be redelivered.
pub const LOG_RETENTION_SECONDS: i64 = 30 * 24 * 3600;
/// How often the reconciler reads the subscription when nothing is being repaired (a parameter).
pub const DEFAULT_CHECK_SECONDS: i64 = 900;

/// What to watch: our webhook endpoint's public URL (the subscription is found by it), and how
/// often to read the subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchSettings {
    pub url: String,
    pub every_seconds: i64,
}

/// A subscription as `GET /v1/webhooks/settings` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: String,
    pub url: String,
    pub active: bool,
    /// Consecutive failed deliveries; any success resets it.
    pub failure_count: u64,
}

/// One delivery attempt, as `GET /v1/webhooks/logs` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub event_id: String,
    pub ok: bool,
    pub at: Timestamp,
}

/// What the reconciler keeps between its reads of the subscription.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watched {
    /// When it was last read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_at: Option<Timestamp>,
    /// Its failure count then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_count: Option<u64>,
    /// The last read that found it on and with no failure: deliveries before it went well.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub good_at: Option<Timestamp>,
    /// An outage being repaired: the failed deliveries since then are redelivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repair_since: Option<Timestamp>,
}

/// Whether a pass reads the subscription now: every `every_seconds`, and every pass while an
/// outage is being repaired.
pub fn due(watched: &Watched, now: Timestamp, every_seconds: i64) -> bool {
    watched.repair_since.is_some() || watched.read_at.is_none_or(|at| now.unix() - at.unix() >= every_seconds)
}

/// The subscription among those listed that is ours: the one with our URL (scheme and host
/// compared without regard to case, a trailing slash ignored).
pub fn ours<'a>(listed: &'a [Subscription], url: &str) -> Option<&'a Subscription> {
    let same = |a: &str, b: &str| a.trim_end_matches('/').eq_ignore_ascii_case(b.trim_end_matches('/'));
    listed.iter().find(|s| same(&s.url, url))
}

/// Whether a read must first probe our endpoint: only when there may be something to switch on or
/// replay (it is off, its failures grew, or a repair is under way).
pub fn needs_probe(watched: &Watched, found: Option<&Subscription>) -> bool {
    let trouble = found.is_some_and(|s| !s.active || s.failure_count > watched.failure_count.unwrap_or(0));
    trouble || (found.is_some() && watched.repair_since.is_some())
}

/// What a read of the subscription calls for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    /// 1 when it is on, 0 when off or missing (the alarm reads it).
    pub active: u64,
    /// Its consecutive failures (0 when missing).
    pub failure_count: u64,
    /// Its failure count grew since the last read.
    pub failing: bool,
    /// Switch it back on (it is off, and our endpoint answers).
    pub switch_on: bool,
    /// Redeliver the failed deliveries since this time (after switching on, when it is).
    pub redeliver_since: Option<Timestamp>,
    /// What to keep for the next read.
    pub next: Watched,
}

/// The decision after a read at `now`: `found` is our subscription (none when missing),
/// `endpoint_answers` whether our endpoint answered a probe just now.
pub fn read(watched: &Watched, found: Option<&Subscription>, endpoint_answers: bool, now: Timestamp) -> Reading {
    let Some(sub) = found else {
        // Nothing to switch on or replay: the runbook registers it again (the alarm says so).
        let next = Watched { read_at: Some(now), ..watched.clone() };
        return Reading { active: 0, failure_count: 0, failing: false, switch_on: false, redeliver_since: None, next };
    };
    let failing = sub.failure_count > watched.failure_count.unwrap_or(0);
    let outage = !sub.active || failing;
    let oldest_kept = now.plus_seconds(-LOG_RETENTION_SECONDS);
    let repair_since = match watched.repair_since {
        Some(since) => Some(since),
        None if outage => Some(watched.good_at.unwrap_or(oldest_kept)),
        None => None,
    };
    let switch_on = !sub.active && endpoint_answers;
    let on_after = sub.active || switch_on;
    let good = sub.active && sub.failure_count == 0;
    Reading {
        active: u64::from(sub.active),
        failure_count: sub.failure_count,
        failing,
        switch_on,
        // Replayed only to a subscription that is on and to an endpoint that answers.
        redeliver_since: repair_since.filter(|_| on_after && endpoint_answers).map(|since| since.max(oldest_kept)),
        next: Watched {
            read_at: Some(now),
            failure_count: Some(if switch_on { 0 } else { sub.failure_count }),
            good_at: if good { Some(now) } else { watched.good_at },
            repair_since,
        },
    }
}

/// The events to redeliver, oldest first: those delivered since `since` whose latest attempt
/// failed (a redelivery that succeeded is logged as a success after the failure).
pub fn to_redeliver(logs: &[Delivery], since: Timestamp) -> Vec<String> {
    let mut latest: BTreeMap<&str, (&Delivery, Timestamp)> = BTreeMap::new();
    for log in logs.iter().filter(|l| l.at >= since) {
        let entry = latest.entry(log.event_id.as_str()).or_insert((log, log.at));
        entry.1 = entry.1.min(log.at);
        if log.at > entry.0.at || (log.at == entry.0.at && log.ok) {
            entry.0 = log;
        }
    }
    let mut failed: Vec<(Timestamp, &str)> =
        latest.into_iter().filter(|(_, (newest, _))| !newest.ok).map(|(id, (_, first))| (first, id)).collect();
    failed.sort();
    failed.into_iter().map(|(_, id)| id.to_owned()).collect()
}

/// After redelivering what a pass could: the repair ends once no failed delivery is left since
/// its start (`left` counts those not redelivered yet).
pub fn repaired(watched: Watched, left: usize) -> Watched {
    if left == 0 { Watched { repair_since: None, ..watched } } else { watched }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_unix(1_800_000_000 + s)
    }

    fn sub(active: bool, failures: u64) -> Subscription {
        Subscription { id: "wh1".into(), url: "https://hooks.example/zernio".into(), active, failure_count: failures }
    }

    #[test]
    fn a_healthy_subscription_is_read_every_interval_and_marks_a_good_time() {
        let first = read(&Watched::default(), Some(&sub(true, 0)), true, at(0));
        assert_eq!((first.active, first.switch_on, first.redeliver_since), (1, false, None));
        assert_eq!(first.next.good_at, Some(at(0)));
        assert!(!due(&first.next, at(899), 900));
        assert!(due(&first.next, at(900), 900));
    }

    #[test]
    fn switched_off_with_our_endpoint_answering_it_is_switched_on_and_the_failures_since_the_last_good_read_replayed() {
        let good = read(&Watched::default(), Some(&sub(true, 0)), true, at(0)).next;
        let off = read(&good, Some(&sub(false, 20)), true, at(1_000));
        assert!(off.switch_on);
        assert_eq!((off.active, off.failure_count), (0, 20));
        assert_eq!(off.redeliver_since, Some(at(0)));
        assert!(due(&off.next, at(1_001), 900), "read every pass while repairing");
        // Our endpoint does not answer: not switched on, nothing replayed, the repair waits.
        let broken = read(&good, Some(&sub(false, 20)), false, at(1_000));
        assert!(!broken.switch_on && broken.redeliver_since.is_none());
        assert_eq!(broken.next.repair_since, Some(at(0)));
        // Repaired once nothing is left.
        assert_eq!(repaired(off.next.clone(), 3).repair_since, Some(at(0)));
        assert_eq!(repaired(off.next, 0).repair_since, None);
    }

    #[test]
    fn a_growing_failure_count_is_an_outage_even_while_it_is_on_and_missing_is_reported_off() {
        let good = read(&Watched::default(), Some(&sub(true, 0)), true, at(0)).next;
        let failing = read(&good, Some(&sub(true, 3)), true, at(900));
        assert!(failing.failing && !failing.switch_on);
        assert_eq!(failing.redeliver_since, Some(at(0)));
        assert_eq!(failing.next.good_at, Some(at(0)), "not a good read");
        let missing = read(&good, None, true, at(900));
        assert_eq!((missing.active, missing.switch_on, missing.redeliver_since), (0, false, None));
        let first_ever = read(&Watched::default(), Some(&sub(false, 5)), true, at(0));
        assert_eq!(first_ever.redeliver_since, Some(at(-LOG_RETENTION_SECONDS)), "as far back as logs go");
    }

    #[test]
    fn our_subscription_is_found_by_its_url() {
        let listed = vec![
            Subscription { url: "https://other.example/hook".into(), ..sub(true, 0) },
            Subscription { id: "wh2".into(), url: "HTTPS://hooks.example/zernio/".into(), ..sub(true, 0) },
        ];
        assert_eq!(ours(&listed, "https://hooks.example/zernio").map(|s| s.id.as_str()), Some("wh2"));
        assert_eq!(ours(&listed, "https://nowhere.example"), None);
    }

    fn delivery(id: &str, ok: bool, s: i64) -> Delivery {
        Delivery { event_id: id.into(), ok, at: at(s) }
    }

    #[test]
    fn only_events_whose_latest_attempt_failed_are_redelivered_oldest_first() {
        let logs = vec![
            delivery("b", false, 20),
            delivery("a", false, 10),
            delivery("a", true, 30), // redelivered already
            delivery("c", false, 40),
            delivery("old", false, -5),
        ];
        assert_eq!(to_redeliver(&logs, at(0)), vec!["b".to_owned(), "c".to_owned()]);
    }

    proptest! {
        /// Whatever the logs, every event redelivered failed at its latest attempt since the
        /// start, none twice, and an event whose latest attempt succeeded is never sent again.
        #[test]
        fn redelivery_takes_each_failed_event_once_and_never_a_delivered_one(
            logs in prop::collection::vec((0u8..8, any::<bool>(), 0i64..100), 0..40),
            since in 0i64..100,
        ) {
            let logs: Vec<Delivery> = logs.into_iter().map(|(id, ok, s)| delivery(&format!("e{id}"), ok, s)).collect();
            let chosen = to_redeliver(&logs, at(since));
            let mut seen = std::collections::HashSet::new();
            for id in &chosen {
                prop_assert!(seen.insert(id.clone()), "twice: {id}");
                let newest = logs.iter().filter(|l| &l.event_id == id && l.at >= at(since)).max_by_key(|l| (l.at, l.ok)).unwrap();
                prop_assert!(!newest.ok);
            }
            for l in logs.iter().filter(|l| l.at >= at(since)) {
                let newest = logs.iter().filter(|m| m.event_id == l.event_id && m.at >= at(since)).max_by_key(|m| (m.at, m.ok)).unwrap();
                prop_assert_eq!(!newest.ok, chosen.contains(&l.event_id));
            }
        }
    }
}
