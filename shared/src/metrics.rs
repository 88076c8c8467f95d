//! Counters as CloudWatch embedded-metric-format (EMF) lines: in Lambda, a JSON line on stdout in
//! this shape becomes a metric without any API call. Elsewhere they go to the debug log.

use serde_json::{Value, json};

pub const NAMESPACE: &str = "StaccSocial";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    EventsProcessed,
    EventsDuplicate,
    EventsIgnored,
    EventsQueued,
    StaleConnectionsFound,
    Syncs,
    Refreshes,
    PublisherErrors,
    /// The service refused our own API key (after one re-read): an outage on our side.
    PublisherKeyRefused,
    /// A route answered 503 `publisher_unavailable`.
    PublisherUnavailable,
    /// A webhook delivery whose signature matched no secret (a mis-rotated secret shows here).
    SignaturesRefused,
    /// Stuck posts a reconciler pass settled.
    PostsHealed,
    /// Calls a reconciler pass made to the service.
    ReconcileCalls,
    /// Work a reconciler pass found and left for the next one.
    ReconcileWorkLeft,
    /// A reconciler pass ended early: the service was unavailable.
    ReconcileOutages,
    /// A publication whose answer did not come in time, queued for a follow-up.
    PublishesFollowedUp,
    /// A 409 that named our own earlier attempt, adopted.
    PublishesAdopted,
    /// A call to the service taken from the shared budget (capacity.md).
    BudgetCalls,
    /// A call the shared budget had no room for (not sent).
    BudgetRefused,
    /// A 429 from the service: the shared budget shut for its `Retry-After`.
    ServiceThrottled,
    /// Seconds the shared budget was shut by a 429.
    BudgetShutSeconds,
    /// A reconciler pass ended early: the shared budget had no room left for it.
    ReconcileThrottled,
    /// A publish the shared budget had no room for, queued in its line.
    PublishesQueued,
    /// Seconds between a publish's place in line (or its follow-up's due time) and its send.
    FollowUpLagSeconds,
    /// A 429 that limits one connected account or provider: the shared budget stays open.
    AccountLimited,
    /// The service refused for our own service account (402 `PAYMENT_REQUIRED`, the profile limit):
    /// an operator must act.
    PublisherAccountNeedsAttention,
    /// The webhook subscription as the reconciler last read it: 1 on, 0 off or missing.
    SubscriptionActive,
    /// The subscription's consecutive failed deliveries, as the service counts them.
    SubscriptionFailureCount,
    /// The reconciler switched the webhook subscription back on.
    SubscriptionReactivated,
    /// Failed deliveries the reconciler asked the service to send again.
    DeliveriesRedelivered,
    /// A project's erasure ended: nothing of it is left but its seal.
    ProjectsErased,
    /// An erasure whose steps had stalled, resumed by the reconciler.
    ErasuresResumed,
}

impl Metric {
    /// Every metric the functions emit.
    pub const ALL: [Metric; 32] = [
        Metric::EventsProcessed,
        Metric::EventsDuplicate,
        Metric::EventsIgnored,
        Metric::EventsQueued,
        Metric::StaleConnectionsFound,
        Metric::Syncs,
        Metric::Refreshes,
        Metric::PublisherErrors,
        Metric::PublisherKeyRefused,
        Metric::PublisherUnavailable,
        Metric::SignaturesRefused,
        Metric::PostsHealed,
        Metric::ReconcileCalls,
        Metric::ReconcileWorkLeft,
        Metric::ReconcileOutages,
        Metric::PublishesFollowedUp,
        Metric::PublishesAdopted,
        Metric::BudgetCalls,
        Metric::BudgetRefused,
        Metric::ServiceThrottled,
        Metric::BudgetShutSeconds,
        Metric::ReconcileThrottled,
        Metric::PublishesQueued,
        Metric::FollowUpLagSeconds,
        Metric::AccountLimited,
        Metric::PublisherAccountNeedsAttention,
        Metric::SubscriptionActive,
        Metric::SubscriptionFailureCount,
        Metric::SubscriptionReactivated,
        Metric::DeliveriesRedelivered,
        Metric::ProjectsErased,
        Metric::ErasuresResumed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Metric::EventsProcessed => "EventsProcessed",
            Metric::EventsDuplicate => "EventsDuplicate",
            Metric::EventsIgnored => "EventsIgnored",
            Metric::EventsQueued => "EventsQueued",
            Metric::StaleConnectionsFound => "StaleConnectionsFound",
            Metric::Syncs => "Syncs",
            Metric::Refreshes => "Refreshes",
            Metric::PublisherErrors => "PublisherErrors",
            Metric::PublisherKeyRefused => "PublisherKeyRefused",
            Metric::PublisherUnavailable => "PublisherUnavailable",
            Metric::SignaturesRefused => "SignaturesRefused",
            Metric::PostsHealed => "PostsHealed",
            Metric::ReconcileCalls => "ReconcileCalls",
            Metric::ReconcileWorkLeft => "ReconcileWorkLeft",
            Metric::ReconcileOutages => "ReconcileOutages",
            Metric::PublishesFollowedUp => "PublishesFollowedUp",
            Metric::PublishesAdopted => "PublishesAdopted",
            Metric::BudgetCalls => "BudgetCalls",
            Metric::BudgetRefused => "BudgetRefused",
            Metric::ServiceThrottled => "ServiceThrottled",
            Metric::BudgetShutSeconds => "BudgetShutSeconds",
            Metric::ReconcileThrottled => "ReconcileThrottled",
            Metric::PublishesQueued => "PublishesQueued",
            Metric::FollowUpLagSeconds => "FollowUpLagSeconds",
            Metric::AccountLimited => "AccountLimited",
            Metric::PublisherAccountNeedsAttention => "PublisherAccountNeedsAttention",
            Metric::SubscriptionActive => "SubscriptionActive",
            Metric::SubscriptionFailureCount => "SubscriptionFailureCount",
            Metric::SubscriptionReactivated => "SubscriptionReactivated",
            Metric::DeliveriesRedelivered => "DeliveriesRedelivered",
            Metric::ProjectsErased => "ProjectsErased",
            Metric::ErasuresResumed => "ErasuresResumed",
        }
    }
}

/// The EMF document for one count.
pub fn document(metric: Metric, count: u64, function: &str, timestamp_ms: i64) -> Value {
    json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Function"]],
                "Metrics": [{"Name": metric.name(), "Unit": "Count"}],
            }],
        },
        "Function": function,
        // Lambda drops a JSON line below its log level, and reads one without a level or without
        // an RFC 3339 timestamp as INFO: a metric must survive a level raised to ERROR.
        "level": "ERROR",
        "timestamp": rfc3339(timestamp_ms),
        metric.name(): count,
    })
}

fn rfc3339(timestamp_ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(timestamp_ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

/// Counts `count` of `metric`, under the function's stable name (`METRICS_FUNCTION`, the binary's
/// name, set by the template, so alarms need not know generated function names).
pub fn count(metric: Metric, count: u64) {
    match std::env::var("METRICS_FUNCTION").or_else(|_| std::env::var("AWS_LAMBDA_FUNCTION_NAME")) {
        Ok(function) => {
            let now_ms = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
            println!("{}", document(metric, count, &function, now_ms));
        }
        Err(_) => tracing::debug!(metric = metric.name(), count, "metric"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_is_a_valid_emf_document() {
        let doc = document(Metric::EventsQueued, 2, "webhook", 1_700_000_000_000);
        let declared = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(declared["Namespace"], NAMESPACE);
        assert_eq!(declared["Metrics"][0]["Name"], "EventsQueued");
        // Every declared dimension and metric is a top-level member, as EMF requires.
        assert_eq!(doc["Function"], "webhook");
        assert_eq!(doc["EventsQueued"], 2);
        assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_000i64);
    }

    #[test]
    fn a_count_survives_every_lambda_log_level() {
        // Lambda keeps a JSON line at its `level` only with an RFC 3339 `timestamp` beside it.
        let doc = document(Metric::PublisherErrors, 1, "sync-post", 1_700_000_000_123);
        assert_eq!(doc["level"], "ERROR");
        assert_eq!(doc["timestamp"], "2023-11-14T22:13:20.123Z");
    }
}
