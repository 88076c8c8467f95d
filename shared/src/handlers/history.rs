//! The history routes: what changed, when and why, newest first, a page at a time.

use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};

use super::app::{self, Refusal};
use super::http;
use crate::domain::history::Retention;
use crate::domain::limits::Limits;
use crate::domain::{Platform, PostId, Timestamp};
use crate::ports::{BudgetStore, Clock, HistoryPage, HistoryStore, PostStore, SealStore, StoreError};

/// `GET /projects/{projectId}/posts/{postId}/history`.
pub struct PostHistory<S, C> {
    pub store: S,
    pub clock: C,
    /// The project's budgets (its reads).
    pub limits: Limits,
    /// How long records are shown (`HISTORY_RETENTION_DAYS`).
    pub retention: Retention,
}

/// `GET /projects/{projectId}/connections/history`.
pub struct ConnectionHistory<S, C> {
    pub store: S,
    pub clock: C,
    /// The project's budgets (its reads).
    pub limits: Limits,
    /// How long records are shown (`HISTORY_RETENTION_DAYS`).
    pub retention: Retention,
}

/// Records a page holds unless `limit` says otherwise, and the most it may ask for.
pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 100;

/// The query string's parameters, as given.
fn query(request: &Request) -> Vec<(String, String)> {
    let raw = request.uri().query().unwrap_or("");
    form_urlencoded::parse(raw.as_bytes()).into_owned().collect()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// `limit` (1–100, default 50) and `cursor`.
fn paging(params: &[(String, String)]) -> Result<(u32, Option<&str>), Refusal> {
    let limit =
        match param(params, "limit") {
            None => DEFAULT_LIMIT,
            Some(raw) => raw.parse().ok().filter(|n| (1..=MAX_LIMIT).contains(n)).ok_or_else(|| {
                Refusal::InvalidRequest(format!("limit must be a whole number from 1 to {MAX_LIMIT}."))
            })?,
        };
    Ok((limit, param(params, "cursor").filter(|c| !c.is_empty())))
}

fn bad_cursor(e: StoreError) -> Refusal {
    match e {
        StoreError::Invalid(_) => Refusal::InvalidRequest("cursor is not one this history gave out.".into()),
        other => other.into(),
    }
}

/// The page as shown at `now`: a record past its retention is never shown (TTL removes it days
/// late), and the history ends at the first such record.
fn page(mut page: HistoryPage, retention: Retention, now: Timestamp) -> Response<Body> {
    let times: Vec<Timestamp> = page.records.iter().map(|r| r.at).collect();
    let shown = retention.shown(&times, now);
    if shown < page.records.len() {
        page.records.truncate(shown);
        page.next_cursor = None;
    }
    let changes: Vec<Value> = page
        .records
        .into_iter()
        .map(|r| {
            json!({"at": r.at.to_rfc3339(), "platform": r.platform, "field": r.field, "from": r.from, "to": r.to,
                   "source": r.source, "evidence": r.evidence})
        })
        .collect();
    http::json(200, &json!({"changes": changes, "next_cursor": page.next_cursor}))
}

impl<S: PostStore + HistoryStore + BudgetStore + SealStore, C: Clock> PostHistory<S, C> {
    pub async fn handle(&self, request: Request) -> Response<Body> {
        app::answer(
            async {
                // The request is checked whole before the project is read (and its seal).
                let raw = app::path_param(&request, "postId").unwrap_or_default();
                let post = PostId::parse(raw).map_err(|e| Refusal::InvalidRequest(format!("postId: {e}.")))?;
                let params = query(&request);
                let (limit, cursor) = paging(&params)?;
                let project = app::reader(&request, &self.store, &self.limits, self.clock.now()).await?;
                if self.store.post(&project, &post).await?.is_none() {
                    return Err(Refusal::NotFound(format!("There is no post {post} in this project.")));
                }
                let found = self.store.post_history(&project, &post, limit, cursor).await.map_err(bad_cursor)?;
                Ok(page(found, self.retention, self.clock.now()))
            }
            .await,
        )
    }
}

impl<S: HistoryStore + BudgetStore + SealStore, C: Clock> ConnectionHistory<S, C> {
    pub async fn handle(&self, request: Request) -> Response<Body> {
        app::answer(
            async {
                let params = query(&request);
                let platform = match param(&params, "platform") {
                    None | Some("") => None,
                    Some(name) => {
                        Some(Platform::from_api(name).map_err(|_| Refusal::InvalidPlatform(name.to_owned()))?)
                    }
                };
                let (limit, cursor) = paging(&params)?;
                let project = app::reader(&request, &self.store, &self.limits, self.clock.now()).await?;
                let found =
                    self.store.connection_history(&project, platform, limit, cursor).await.map_err(bad_cursor)?;
                Ok(page(found, self.retention, self.clock.now()))
            }
            .await,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_is_bounded_and_defaults_to_fifty() {
        let of = |q: &str| {
            let params: Vec<(String, String)> = form_urlencoded::parse(q.as_bytes()).into_owned().collect();
            paging(&params).map(|(l, c)| (l, c.map(str::to_owned)))
        };
        assert_eq!(of(""), Ok((50, None)));
        assert_eq!(of("limit=100&cursor=abc"), Ok((100, Some("abc".to_owned()))));
        for bad in ["limit=0", "limit=101", "limit=ten", "limit=-1"] {
            assert!(matches!(of(bad), Err(Refusal::InvalidRequest(_))), "{bad}");
        }
    }

    #[test]
    fn a_record_shows_every_field() {
        let at = crate::domain::Timestamp::from_unix(0);
        let response = page(
            HistoryPage {
                records: vec![crate::ports::Recorded {
                    at: crate::domain::Timestamp::from_unix(0),
                    platform: None,
                    field: "status".into(),
                    from: None,
                    to: Some("publishing".into()),
                    source: "publish".into(),
                    evidence: None,
                }],
                next_cursor: None,
            },
            Retention { days: 0 },
            at,
        );
        let body: Value = serde_json::from_slice(response.body().as_ref()).unwrap();
        assert_eq!(body["changes"][0]["to"], "publishing");
        assert!(body["changes"][0]["platform"].is_null() && body["next_cursor"].is_null());
    }
}
