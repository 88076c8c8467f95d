//! The service's answers read into what the domain knows: pure, so the client and the fuzz
//! targets read them the same way. A body that is not JSON reads as `{}`; anything unexpected in
//! it is skipped, never a panic.

use serde::Deserialize;
use serde_json::{Value, json};

use super::wire::{WirePost, flag, id_or_object, object, string};
use crate::domain::post::EntryStatus;
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
/// (cursor paging), or the next `page` while `page < pages`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextPage {
    Cursor(String),
    Page(u64),
}

pub fn next_page(body: &Value) -> Option<NextPage> {
    let pagination = body.get("pagination")?;
    if let Some(cursor) = pagination.get("nextCursor").and_then(Value::as_str).filter(|c| !c.is_empty()) {
        return Some(NextPage::Cursor(cursor.to_owned()));
    }
    let page = pagination.get("page").and_then(Value::as_u64)?;
    let pages = pagination.get("pages").and_then(Value::as_u64)?;
    (page < pages).then_some(NextPage::Page(page + 1))
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
    fn the_accounts_list_pages_by_cursor_or_by_page() {
        assert_eq!(
            next_page(&json!({"pagination": {"limit": 2, "nextCursor": "c2"}})),
            Some(NextPage::Cursor("c2".into()))
        );
        assert_eq!(next_page(&json!({"pagination": {"page": 1, "pages": 3}})), Some(NextPage::Page(2)));
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
