//! The service's answers read into what the domain knows: pure, so the client and the fuzz
//! targets read them the same way. A body that is not JSON reads as `{}`; anything unexpected in
//! it is skipped, never a panic.

use serde::Deserialize;
use serde_json::{Value, json};

use super::wire::{WirePost, flag, id_or_object, object, string};
use crate::domain::budget::TooMany;
use crate::domain::post::EntryStatus;
use crate::domain::publish::AccountLimit;
use crate::domain::text::{bounded_text, bounded_url};
use crate::domain::{AccountId, Platform, PostReport, Timestamp};
use crate::ports::{AccountHealth, HealthStatus, LiveAccount};

/// A body as JSON, `{}` when it is not.
pub fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|_| json!({}))
}

/// `GET /v1/accounts`: the usable and unusable accounts we manage.
pub fn accounts(body: &Value) -> Vec<LiveAccount> {
    list::<WireLiveAccount>(body, "accounts").into_iter().filter_map(live_account).collect()
}

/// Where the next page of the accounts list is, if the answer says there is one: `nextCursor`
/// (cursor paging), or the next `page` while `page < pages`, always with its `limit` (the
/// service refuses `page` alone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextPage {
    Cursor(String),
    Page { page: u64, limit: u64 },
}

/// The page size assumed when an offset-paged answer does not say its own.
const PAGE_LIMIT: u64 = 100;

pub fn next_page(body: &Value) -> Option<NextPage> {
    let pagination = body.get("pagination")?;
    if let Some(cursor) = pagination.get("nextCursor").and_then(Value::as_str).filter(|c| !c.is_empty()) {
        return Some(NextPage::Cursor(cursor.to_owned()));
    }
    let page = pagination.get("page").and_then(Value::as_u64)?;
    let pages = pagination.get("pages").and_then(Value::as_u64)?;
    let limit = pagination.get("limit").and_then(Value::as_u64).filter(|l| (1..=500).contains(l)).unwrap_or(PAGE_LIMIT);
    (page < pages).then_some(NextPage::Page { page: page + 1, limit })
}

impl NextPage {
    /// The query parameters that ask for this page.
    pub fn query(&self) -> Vec<(&'static str, String)> {
        match self {
            NextPage::Cursor(cursor) => vec![("cursor", cursor.clone())],
            NextPage::Page { page, limit } => vec![("page", page.to_string()), ("limit", limit.to_string())],
        }
    }
}

/// A create's answer (201, 207, or 200 with the original): the post in `post` or `existingPost`.
pub fn created_post(body: &Value, asked_at: Timestamp) -> Option<PostReport> {
    let post = body.get("post").filter(|p| p.is_object()).or_else(|| body.get("existingPost"));
    let post: WirePost = post.cloned().and_then(object).unwrap_or_default();
    post.report(EntryStatus::Queued, false, asked_at)
}

/// The post a content-hash 409 names: `existingPostId` at the top or under `details`.
pub fn existing_post_id(body: &Value) -> Option<crate::domain::ServicePostId> {
    let id = body.get("existingPostId").or_else(|| body.pointer("/details/existingPostId"))?;
    crate::domain::ServicePostId::parse(id.as_str()?).ok()
}

/// A 429, read: whose limit it is (`domain::budget::TooMany`) and, for an account's, what it names.
/// `remaining_zero`: it carried `X-RateLimit-Remaining: 0`; `retry_after`: its `Retry-After` (or
/// reset time) in seconds.
pub fn too_many(
    remaining_zero: bool,
    retry_after: Option<u64>,
    body: &Value,
    now: Timestamp,
) -> (TooMany, AccountLimit) {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    let details = body.get("details").filter(|d| d.is_object()).unwrap_or(&Value::Null);
    let listed = body
        .get("rateLimitedAccounts")
        .or_else(|| details.get("rateLimitedAccounts"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut account_ids: Vec<String> =
        [body.get("accountId"), details.get("accountId")].into_iter().filter_map(&text).collect();
    account_ids.extend(listed.iter().filter_map(|a| text(a.get("accountId"))));
    let mut platform_names: Vec<String> =
        [body.get("platform"), details.get("platform")].into_iter().filter_map(&text).collect();
    platform_names.extend(listed.iter().filter_map(|a| text(a.get("platform"))));
    let untils: Vec<String> = [body.get("rateLimitedUntil"), details.get("rateLimitedUntil"), details.get("resetsAt")]
        .into_iter()
        .filter_map(&text)
        .chain(listed.iter().filter_map(|a| text(a.get("rateLimitedUntil"))))
        .collect();
    let message = text(body.get("error")).map(|m| bounded_text(Some(&m)).unwrap_or_default()).unwrap_or_default();
    let quota = details.get("quotaExhausted").and_then(Value::as_bool).unwrap_or(false);
    let until = untils
        .iter()
        .filter_map(|t| Timestamp::parse(t))
        .max()
        .or_else(|| time_in(&message))
        .or_else(|| retry_after.map(|s| now.plus_seconds(i64::try_from(s).unwrap_or(i64::MAX / 2_000))));
    let signs = TooMany {
        throughput_headers: remaining_zero,
        names_account: !account_ids.is_empty() || !untils.is_empty(),
        names_platform: !platform_names.is_empty() || quota,
        retry_after,
    };
    let limit = AccountLimit {
        accounts: account_ids.into_iter().filter_map(|a| AccountId::parse(a).ok()).collect(),
        platforms: platform_names.iter().filter_map(|p| Platform::from_wire(p).ok()).collect(),
        until,
        message,
    };
    (signs, limit)
}

/// The first RFC 3339 time in a message ("…will publish automatically after 2026-12-07T12:00:00Z").
fn time_in(message: &str) -> Option<Timestamp> {
    message
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ',')
        .map(|w| w.trim_end_matches(['.', ';', ':']))
        .find_map(Timestamp::parse)
}

/// The first profile of a `GET /v1/profiles` list.
pub fn first_profile(body: &Value) -> Option<crate::domain::ProfileId> {
    let profiles = body.get("profiles")?.as_array()?;
    profiles.iter().find_map(|p| {
        let id = p.get("_id").or_else(|| p.get("id"))?.as_str()?;
        crate::domain::ProfileId::parse(id).ok()
    })
}

/// `GET /v1/webhooks/settings`: the subscriptions (one without an id or URL is skipped).
pub fn subscriptions(body: &Value) -> Vec<crate::domain::subscription::Subscription> {
    let items = body.get("webhooks").and_then(Value::as_array).cloned().unwrap_or_default();
    items
        .iter()
        .filter_map(|w| {
            Some(crate::domain::subscription::Subscription {
                id: w.get("_id").or_else(|| w.get("id"))?.as_str()?.to_owned(),
                url: w.get("url")?.as_str()?.to_owned(),
                // A flag of another type is no news: the subscription is on unless it says false.
                active: w.get("isActive").and_then(Value::as_bool).unwrap_or(true),
                failure_count: w.get("failureCount").and_then(Value::as_u64).unwrap_or(0),
            })
        })
        .collect()
}

/// `GET /v1/webhooks/logs`: the attempts of one page (one without an event id or time is
/// skipped), and whether more follow.
pub fn deliveries(body: &Value) -> (Vec<crate::domain::subscription::Delivery>, bool) {
    let items = body.get("logs").and_then(Value::as_array).cloned().unwrap_or_default();
    let logs = items
        .iter()
        .filter_map(|l| {
            Some(crate::domain::subscription::Delivery {
                event_id: l.get("eventId")?.as_str()?.to_owned(),
                ok: l.get("status")?.as_str()? == "success",
                at: Timestamp::parse(l.get("createdAt")?.as_str()?)?,
            })
        })
        .collect();
    let more = body.pointer("/pagination/hasMore").and_then(Value::as_bool).unwrap_or(false);
    (logs, more)
}

/// `GET /v1/accounts/health`.
pub fn health(body: &Value) -> Vec<AccountHealth> {
    list::<WireHealth>(body, "accounts")
        .into_iter()
        .filter_map(|h| {
            Some(AccountHealth {
                account_id: AccountId::parse(h.account_id?).ok()?,
                status: match h.status.as_deref() {
                    Some("healthy") => Some(HealthStatus::Healthy),
                    Some("warning") => Some(HealthStatus::Warning),
                    Some("error") => Some(HealthStatus::Error),
                    _ => None,
                },
                needs_reconnect: h.needs_reconnect.unwrap_or(false),
                token_expires_at: h.token_expires_at.as_deref().and_then(Timestamp::parse),
            })
        })
        .collect()
}

/// `GET /v1/posts/{id}` or a create's answer: the post's report as of `asked_at`; `None` when it
/// carries no post id.
pub fn post(body: &Value, asked_at: Timestamp) -> Option<PostReport> {
    let post: WirePost = body.get("post").cloned().and_then(object).unwrap_or_default();
    post.report(EntryStatus::Queued, false, asked_at)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireLiveAccount {
    #[serde(default, rename = "_id", deserialize_with = "string")]
    id: Option<String>,
    #[serde(default, deserialize_with = "string")]
    platform: Option<String>,
    #[serde(default, deserialize_with = "string")]
    username: Option<String>,
    #[serde(default, deserialize_with = "string")]
    display_name: Option<String>,
    #[serde(default, deserialize_with = "string")]
    profile_picture: Option<String>,
    #[serde(default, deserialize_with = "string")]
    profile_url: Option<String>,
    #[serde(default, deserialize_with = "flag")]
    is_active: Option<bool>,
    #[serde(default, deserialize_with = "flag")]
    needs_reconnection: Option<bool>,
    #[serde(default, deserialize_with = "flag")]
    enabled: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireHealth {
    #[serde(default, deserialize_with = "id_or_object")]
    account_id: Option<String>,
    #[serde(default, deserialize_with = "string")]
    status: Option<String>,
    #[serde(default, deserialize_with = "flag")]
    needs_reconnect: Option<bool>,
    #[serde(default, deserialize_with = "string")]
    token_expires_at: Option<String>,
}

/// The objects listed under `field`: an item of any other type is skipped.
fn list<T: serde::de::DeserializeOwned>(body: &Value, field: &str) -> Vec<T> {
    let items = body.get(field).and_then(Value::as_array);
    items.map(|items| items.iter().cloned().filter_map(object).collect()).unwrap_or_default()
}

/// An account of the live list; one without an id or on a platform we do not manage is skipped,
/// and flags of unexpected types never drop it (it is live, whatever its flags say).
fn live_account(a: WireLiveAccount) -> Option<LiveAccount> {
    Some(LiveAccount {
        id: AccountId::parse(a.id?).ok()?,
        platform: Platform::from_wire(a.platform.as_deref()?).ok()?,
        username: bounded_text(a.username.as_deref()),
        display_name: bounded_text(a.display_name.as_deref()),
        avatar_url: bounded_url(a.profile_picture.as_deref()),
        profile_url: bounded_url(a.profile_url.as_deref()),
        usable: a.is_active.unwrap_or(true) && !a.needs_reconnection.unwrap_or(false),
        enabled: a.enabled.unwrap_or(true),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_with_flags_of_unexpected_types_is_still_live() {
        let read = |account: Value| accounts(&json!({"accounts": [account]})).pop();
        let usable = |account: Value| read(account).map(|a| a.usable);
        assert_eq!(usable(json!({"_id": "a", "platform": "twitter", "isActive": false})), Some(false));
        assert_eq!(usable(json!({"_id": "a", "platform": "twitter", "needsReconnection": true})), Some(false));
        // A flag that is not a boolean is no news: the account is judged as if it were absent.
        assert_eq!(usable(json!({"_id": "a", "platform": "twitter", "isActive": "false"})), Some(true));
        assert_eq!(usable(json!({"_id": "a", "platform": "twitter", "needsReconnection": "true"})), Some(true));
        assert!(read(json!(["a", "twitter"])).is_none(), "an account given as an array is no account");
        assert_eq!(usable(json!({"_id": "a", "platform": "twitter", "isActive": {"odd": 1}})), Some(true));
        assert!(read(json!({"_id": "a", "platform": "tiktok"})).is_none());
        assert!(read(json!({"_id": "a".repeat(300), "platform": "twitter"})).is_none());
    }

    #[test]
    fn a_create_is_read_from_post_or_existing_post_and_a_409_names_its_post_either_way() {
        let at = Timestamp::from_unix_millis(0);
        let post = json!({"_id": "p1", "status": "published", "platforms": []});
        assert!(created_post(&json!({"post": post}), at).is_some());
        assert!(created_post(&json!({"existingPost": post}), at).is_some());
        assert!(created_post(&json!({"message": "no post"}), at).is_none());
        let id = |body: Value| existing_post_id(&body).map(|id| id.as_str().to_owned());
        assert_eq!(id(json!({"error": "dup", "existingPostId": "p9"})).as_deref(), Some("p9"));
        assert_eq!(id(json!({"error": "dup", "details": {"existingPostId": "p8"}})).as_deref(), Some("p8"));
        assert_eq!(id(json!({"error": "in flight"})), None);
    }

    #[test]
    fn a_429_is_the_teams_only_with_its_headers_and_naming_nothing() {
        use crate::domain::budget::Whose;
        let now = Timestamp::parse("2026-12-07T12:00:00Z").unwrap();
        let read = |zero: bool, body: Value| too_many(zero, Some(30), &body, now);
        let (team, _) = read(true, json!({"error": "Rate limit exceeded", "type": "rate_limit_error"}));
        assert_eq!(team.whose(), Whose::Team);
        let (velocity, limit) = read(
            true,
            json!({"error": "Velocity limit: 25 posts an hour", "details": {"accountId": "a1", "platform": "twitter"}}),
        );
        assert_eq!(velocity.whose(), Whose::Account);
        assert_eq!((limit.accounts[0].as_str(), limit.platforms.clone()), ("a1", vec![Platform::X]));
        assert_eq!(limit.until, Some(now.plus_seconds(30)), "Retry-After says when");
        let (cooldown, limit) =
            read(true, json!({"error": "Account in cooldown", "rateLimitedUntil": "2026-12-08T00:00:00Z"}));
        assert_eq!(cooldown.whose(), Whose::Account);
        assert_eq!(limit.until, Timestamp::parse("2026-12-08T00:00:00Z"));
        let (quota, _) = read(true, json!({"error": "quota", "details": {"quotaExhausted": true}}));
        assert_eq!(quota.whose(), Whose::Account);
        let (headerless, _) = read(false, json!({"error": "Daily limit reached"}));
        assert_eq!(headerless.whose(), Whose::Account, "no throughput headers: not the team's");
        let (_, text) =
            too_many(false, None, &json!({"error": "Daily cap reached; try after 2026-12-08T06:00:00Z."}), now);
        assert_eq!(text.until, Timestamp::parse("2026-12-08T06:00:00Z"), "a time in the text");
    }

    #[test]
    fn subscriptions_and_their_deliveries_are_read_and_odd_items_skipped() {
        let listed = subscriptions(&json!({"webhooks": [
            {"_id": "w1", "url": "https://h/z", "isActive": false, "failureCount": 20},
            {"_id": "w2", "url": "https://h/y", "isActive": "no"},
            {"url": "https://no-id"}, 7]}));
        assert_eq!(listed.len(), 2);
        assert_eq!((listed[0].active, listed[0].failure_count), (false, 20));
        assert_eq!((listed[1].active, listed[1].failure_count), (true, 0));
        let (logs, more) = deliveries(&json!({"logs": [
            {"eventId": "e1", "status": "failed", "createdAt": "2026-12-07T10:00:00Z"},
            {"eventId": "e2", "status": "success", "createdAt": "2026-12-07T09:00:00Z"},
            {"eventId": "e3", "status": "failed"}], "pagination": {"hasMore": true}}));
        assert_eq!(
            logs.iter().map(|l| (l.event_id.as_str(), l.ok)).collect::<Vec<_>>(),
            vec![("e1", false), ("e2", true)]
        );
        assert!(more);
    }

    #[test]
    fn the_accounts_list_pages_by_cursor_or_by_page() {
        assert_eq!(
            next_page(&json!({"pagination": {"limit": 2, "nextCursor": "c2"}})),
            Some(NextPage::Cursor("c2".into()))
        );
        let second = next_page(&json!({"pagination": {"page": 1, "pages": 3, "limit": 2}})).unwrap();
        assert_eq!(second, NextPage::Page { page: 2, limit: 2 });
        assert_eq!(second.query(), vec![("page", "2".to_owned()), ("limit", "2".to_owned())], "never page alone");
        let unsized_page = next_page(&json!({"pagination": {"page": 1, "pages": 3}})).unwrap();
        assert!(unsized_page.query().iter().any(|(k, _)| *k == "limit"));
        assert_eq!(next_page(&json!({"pagination": {"page": 3, "pages": 3}})), None);
        assert_eq!(next_page(&json!({"accounts": []})), None);
    }

    #[test]
    fn a_body_that_is_not_json_or_not_the_shape_reads_as_nothing() {
        assert_eq!(json(b"<html>"), json!({}));
        assert!(accounts(&json!({"accounts": "no"})).is_empty());
        assert!(post(&json!({"post": []}), Timestamp::from_unix_millis(0)).is_none());
    }
}
