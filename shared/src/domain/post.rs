//! A post's state as a join-semilattice: any order and any repetition of the same evidence gives
//! the same state, and nothing ever moves backwards within a generation.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Deserializer, Serialize};

use super::connection::{Connection, ConnectionEvidence, ConnectionStatus, reason};
use super::ids::{AccountId, PostId, ProjectId, ServicePostId};
use super::platform::Platform;
use super::time::Timestamp;

/// Which publication of our post on the service an entry belongs to: 1 for the first publish,
/// one more for each publish again. Carried to the service and back in `metadata`.
pub type Generation = u32;

/// Where one platform's copy stands within a generation. The declaration order is the rank:
/// an entry only moves down this list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryStatus {
    Queued,
    Failed,
    Published,
    Removed,
}

/// What an entry reads as: its status, or `cancelled` for a copy of a cancelled publication that
/// never went live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShownStatus {
    Queued,
    Failed,
    Published,
    Removed,
    Cancelled,
}

impl ShownStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ShownStatus::Queued => "queued",
            ShownStatus::Failed => "failed",
            ShownStatus::Published => "published",
            ShownStatus::Removed => "removed",
            ShownStatus::Cancelled => "cancelled",
        }
    }
}

/// One platform's copy of a post.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformEntry {
    pub generation: Generation,
    pub status: EntryStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_post_id: Option<ServicePostId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<AccountId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_post_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The latest schedule the post was given: the generation it belongs to and its time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Schedule {
    pub generation: Generation,
    pub at: Timestamp,
}

/// Everything writers learn about a post's publications. `join` is the only way it changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostState {
    #[serde(default)]
    pub entries: BTreeMap<Platform, PlatformEntry>,
    /// The generations the service reported cancelled (or Sync found gone everywhere): a set
    /// that only grows. Items written before it was a set hold one number.
    #[serde(
        default,
        alias = "cancelled_generation",
        deserialize_with = "one_or_many",
        skip_serializing_if = "BTreeSet::is_empty"
    )]
    pub cancelled: BTreeSet<Generation>,
    /// When the post first went live anywhere; kept through cancellation and removal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
}

/// The overall status shown for a post, derived from its entries whenever it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PostStatus {
    Draft,
    Scheduled,
    Publishing,
    Published,
    PartiallyPublished,
    Failed,
    Cancelled,
    Removed,
}

impl PostStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PostStatus::Draft => "draft",
            PostStatus::Scheduled => "scheduled",
            PostStatus::Publishing => "publishing",
            PostStatus::Published => "published",
            PostStatus::PartiallyPublished => "partially_published",
            PostStatus::Failed => "failed",
            PostStatus::Cancelled => "cancelled",
            PostStatus::Removed => "removed",
        }
    }
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeSet<Generation>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(Generation),
        Many(BTreeSet<Generation>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => BTreeSet::new(),
        Some(OneOrMany::One(g)) => BTreeSet::from([g]),
        Some(OneOrMany::Many(set)) => set,
    })
}

fn earliest(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl PlatformEntry {
    /// A copy of generation `generation` in `status`, knowing nothing else yet.
    pub fn bare(generation: Generation, status: EntryStatus) -> PlatformEntry {
        PlatformEntry {
            generation,
            status,
            service_post_id: None,
            account_id: None,
            url: None,
            platform_post_id: None,
            published_at: None,
            error: None,
        }
    }

    /// A newer generation replaces an older one whole; within one generation every field joins.
    pub fn join(&self, other: &PlatformEntry) -> PlatformEntry {
        if self.generation != other.generation {
            return if self.generation > other.generation { self.clone() } else { other.clone() };
        }
        PlatformEntry {
            generation: self.generation,
            status: self.status.max(other.status),
            service_post_id: self.service_post_id.clone().max(other.service_post_id.clone()),
            account_id: self.account_id.clone().max(other.account_id.clone()),
            url: self.url.clone().max(other.url.clone()),
            platform_post_id: self.platform_post_id.clone().max(other.platform_post_id.clone()),
            published_at: earliest(self.published_at, other.published_at),
            error: self.error.clone().max(other.error.clone()),
        }
        .normalized()
    }

    /// What a state implies for the fields: a live copy has no error, a removed one no link.
    /// Both conditions only ever become true as the status rises, so the join stays a join.
    pub fn normalized(mut self) -> PlatformEntry {
        if self.status >= EntryStatus::Published {
            self.error = None;
        }
        if self.status == EntryStatus::Removed {
            self.url = None;
        }
        self
    }
}

impl PostState {
    pub fn join(&self, other: &PostState) -> PostState {
        let mut entries = self.entries.clone();
        for (platform, theirs) in &other.entries {
            let joined = match entries.get(platform) {
                Some(ours) => ours.join(theirs),
                None => theirs.clone().normalized(),
            };
            entries.insert(*platform, joined);
        }
        PostState {
            entries,
            cancelled: self.cancelled.union(&other.cancelled).copied().collect(),
            published_at: earliest(self.published_at, other.published_at),
            schedule: self.schedule.max(other.schedule),
        }
    }

    /// The newest generation any entry belongs to.
    pub fn latest_generation(&self) -> Option<Generation> {
        self.entries.values().map(|e| e.generation).max()
    }

    /// The generation the service knows by this id, if any entry records it.
    pub fn generation_of(&self, service_post_id: &ServicePostId) -> Option<Generation> {
        self.entries.values().find(|e| e.service_post_id.as_ref() == Some(service_post_id)).map(|e| e.generation)
    }

    /// Whether the entry's publication was cancelled: settled, never queued or live.
    pub fn is_cancelled(&self, entry: &PlatformEntry) -> bool {
        self.cancelled.contains(&entry.generation)
    }

    /// What an entry reads as.
    pub fn shown(&self, entry: &PlatformEntry) -> ShownStatus {
        match entry.status {
            EntryStatus::Queued | EntryStatus::Failed if self.is_cancelled(entry) => ShownStatus::Cancelled,
            EntryStatus::Queued => ShownStatus::Queued,
            EntryStatus::Failed => ShownStatus::Failed,
            EntryStatus::Published => ShownStatus::Published,
            EntryStatus::Removed => ShownStatus::Removed,
        }
    }

    /// The platforms among `platforms` whose current copy is queued or live and not cancelled: a
    /// publish to them again would post twice.
    pub fn still_active(&self, platforms: &[Platform]) -> Vec<Platform> {
        let active = |p: &Platform| {
            self.entries.get(p).is_some_and(|e| {
                !self.is_cancelled(e) && matches!(e.status, EntryStatus::Queued | EntryStatus::Published)
            })
        };
        platforms.iter().copied().filter(active).collect()
    }

    /// The generation a new publish gets: above every one this post has heard of.
    pub fn next_generation(&self) -> Generation {
        let highest = [self.latest_generation(), self.cancelled.last().copied(), self.schedule.map(|s| s.generation)];
        highest.into_iter().flatten().max().unwrap_or(0) + 1
    }

    /// The time the post is scheduled for, while its newest publication is the scheduled one.
    pub fn scheduled_for(&self) -> Option<Timestamp> {
        self.schedule.filter(|s| self.latest_generation().is_none_or(|g| s.generation >= g)).map(|s| s.at)
    }

    /// The overall status at `now`, first match wins, as `state-rules.md` lists.
    pub fn overall(&self, now: Timestamp) -> PostStatus {
        if self.entries.is_empty() {
            return PostStatus::Draft;
        }
        if self.entries.values().all(|e| self.is_cancelled(e)) {
            return PostStatus::Cancelled;
        }
        let open: Vec<&PlatformEntry> =
            self.entries.values().filter(|e| e.status != EntryStatus::Removed && !self.is_cancelled(e)).collect();
        if open.is_empty() {
            let any_cancelled = self.entries.values().any(|e| self.is_cancelled(e));
            return if any_cancelled { PostStatus::Cancelled } else { PostStatus::Removed };
        }
        if let Some(queued) = open.iter().filter(|e| e.status == EntryStatus::Queued).map(|e| e.generation).max() {
            let before_its_time = self.schedule.is_some_and(|s| s.generation >= queued && now < s.at);
            return if before_its_time { PostStatus::Scheduled } else { PostStatus::Publishing };
        }
        let published = open.iter().filter(|e| e.status == EntryStatus::Published).count();
        match published {
            n if n == open.len() => PostStatus::Published,
            0 => PostStatus::Failed,
            _ => PostStatus::PartiallyPublished,
        }
    }
}

/// What the service said about one of its posts (one generation of ours), from a webhook or
/// from `GET /v1/posts/{id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostReport {
    pub service_post_id: ServicePostId,
    /// Our generation, echoed in `metadata`; absent on posts we did not tag.
    pub generation: Option<Generation>,
    /// The project and post its `metadata` names, when it names them.
    pub owner: Option<(ProjectId, PostId)>,
    pub cancelled: bool,
    pub published_at: Option<Timestamp>,
    pub scheduled_for: Option<Timestamp>,
    /// When the report was made (a webhook's `timestamp`, the moment a read or publish was sent):
    /// the time a copy reported live without a time of its own went live by.
    pub reported_at: Timestamp,
    /// Used for a platform the report lists without a status of its own.
    pub default_status: EntryStatus,
    pub platforms: Vec<PlatformReport>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformReport {
    pub platform: Platform,
    pub status: Option<EntryStatus>,
    pub account_id: Option<AccountId>,
    pub url: Option<String>,
    pub platform_post_id: Option<String>,
    pub published_at: Option<Timestamp>,
    pub error: Option<String>,
    /// The service said the copy failed because the account's token expired (`errorCategory:
    /// "auth_expired"`): news about the connection too (`PostReport::connection_news`).
    pub auth_expired: bool,
}

impl PlatformReport {
    /// A copy reported with a status and nothing else known about it.
    pub fn bare(platform: Platform, status: EntryStatus) -> PlatformReport {
        PlatformReport {
            platform,
            status: Some(status),
            account_id: None,
            url: None,
            platform_post_id: None,
            published_at: None,
            error: None,
            auth_expired: false,
        }
    }
}

/// Why a report could not be applied yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unapplied {
    /// The report names a service post we have no generation for: the publish that created it
    /// has not stored its answer yet.
    UnknownGeneration,
    /// The report is about another service post than the one recorded for the publication its
    /// metadata names (a second stack on the same account, or a crafted body): it is no evidence
    /// about that publication, now or later.
    AnotherServicePost,
}

impl PostReport {
    /// What the report says about connections: a copy that failed with the account's token
    /// expired makes that account's connection `expired` / `token_expired`, at the report's time.
    /// It is a disconnect of that account, so it counts only while the platform is linked to it,
    /// and only if newer than what is known (`ConnectionRecord`).
    pub fn connection_news(&self) -> Vec<ConnectionEvidence> {
        self.platforms
            .iter()
            .filter(|p| p.auth_expired && p.status == Some(EntryStatus::Failed))
            .filter_map(|p| {
                Some(ConnectionEvidence::Disconnected(Connection {
                    platform: p.platform,
                    status: ConnectionStatus::Expired,
                    evidence_at: self.reported_at,
                    account_id: Some(p.account_id.clone()?),
                    username: None,
                    display_name: None,
                    reason: Some(reason::TOKEN_EXPIRED.to_owned()),
                    looks: None,
                }))
            })
            .collect()
    }

    /// The report as a piece of state, ready to be joined into the stored one. A report listing
    /// no platforms changes no entry (it may still cancel its publication or give its schedule).
    pub fn to_state(&self, stored: Option<&PostState>) -> Result<PostState, Unapplied> {
        let generation = self
            .generation
            .or_else(|| stored.and_then(|s| s.generation_of(&self.service_post_id)))
            .ok_or(Unapplied::UnknownGeneration)?;
        let recorded = stored.into_iter().flat_map(|s| s.entries.values()).filter(|e| e.generation == generation);
        if recorded.filter_map(|e| e.service_post_id.as_ref()).any(|id| *id != self.service_post_id) {
            return Err(Unapplied::AnotherServicePost);
        }
        let mut entries = BTreeMap::new();
        for p in &self.platforms {
            let status = p.status.unwrap_or(self.default_status);
            // A copy reported live without its own time went live no later than the report. (A
            // removed one says nothing of when, or whether, it went live.)
            let published_at = (status == EntryStatus::Published)
                .then(|| p.published_at.or(self.published_at).unwrap_or(self.reported_at));
            let entry = PlatformEntry {
                generation,
                status,
                service_post_id: Some(self.service_post_id.clone()),
                account_id: p.account_id.clone(),
                url: p.url.clone(),
                platform_post_id: p.platform_post_id.clone(),
                published_at: published_at.or(p.published_at),
                error: p.error.clone(),
            };
            let joined = match entries.get(&p.platform) {
                Some(existing) => PlatformEntry::join(existing, &entry),
                None => entry.normalized(),
            };
            entries.insert(p.platform, joined);
        }
        let first_live = entries.values().filter_map(|e| e.published_at).min();
        Ok(PostState {
            entries,
            cancelled: if self.cancelled { BTreeSet::from([generation]) } else { BTreeSet::new() },
            published_at: first_live,
            schedule: self.scheduled_for.map(|at| Schedule { generation, at }),
        })
    }
}

/// What the service answered about one publication when asked (`GET /v1/posts/{id}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceAnswer {
    Found(PostReport),
    /// The service's own 404: deleted on its side.
    Gone,
}

/// What a Sync's answers say about connections: each found report's `connection_news`.
pub fn sync_news(answers: &[(Generation, ServiceAnswer)]) -> Vec<ConnectionEvidence> {
    answers
        .iter()
        .filter_map(|(_, answer)| match answer {
            ServiceAnswer::Found(report) => Some(report.connection_news()),
            ServiceAnswer::Gone => None,
        })
        .flatten()
        .collect()
}

/// The publications a Sync asks about, one per generation; none for a post never published.
pub fn publications(state: &PostState) -> Vec<(Generation, ServicePostId)> {
    let known: BTreeSet<(Generation, ServicePostId)> =
        state.entries.values().filter_map(|e| e.service_post_id.clone().map(|id| (e.generation, id))).collect();
    known.into_iter().collect()
}

/// Sync's reading of the service's answers, as evidence to join: what was found joins like a
/// webhook; gone everywhere cancels those publications; gone for some removes their copies.
pub fn sync_evidence(stored: &PostState, answers: Vec<(Generation, ServiceAnswer)>) -> PostState {
    let all_gone = answers.iter().all(|(_, a)| *a == ServiceAnswer::Gone);
    let mut evidence = PostState::default();
    for (generation, answer) in answers {
        match answer {
            ServiceAnswer::Found(mut report) => {
                report.generation = Some(generation);
                if let Ok(state) = report.to_state(Some(stored)) {
                    evidence = evidence.join(&state);
                }
            }
            ServiceAnswer::Gone if all_gone => {
                evidence.cancelled.insert(generation);
            }
            ServiceAnswer::Gone => {
                for (platform, entry) in stored.entries.iter().filter(|(_, e)| e.generation == generation) {
                    let removed = PlatformEntry { status: EntryStatus::Removed, ..entry.clone() }.normalized();
                    evidence.entries.insert(*platform, removed);
                }
            }
        }
    }
    evidence
}

/// What "I deleted this on [platform] myself" does to a post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManualDelete {
    /// The post has no copy on that platform.
    NoEntry,
    /// That copy never went live (queued, failed or cancelled): nothing to mark deleted.
    NotLive,
    /// Already marked deleted: the same answer again, nothing written.
    AlreadyRemoved,
    /// Join this into the stored state.
    Remove(PostState),
}

/// "I deleted this on [platform] myself": that platform's live copy is removed.
pub fn manual_delete(stored: &PostState, platform: Platform) -> ManualDelete {
    let Some(current) = stored.entries.get(&platform) else { return ManualDelete::NoEntry };
    match stored.shown(current) {
        ShownStatus::Removed => ManualDelete::AlreadyRemoved,
        ShownStatus::Queued | ShownStatus::Failed | ShownStatus::Cancelled => ManualDelete::NotLive,
        ShownStatus::Published => {
            let removed = PlatformEntry::bare(current.generation, EntryStatus::Removed);
            ManualDelete::Remove(PostState { entries: BTreeMap::from([(platform, removed)]), ..PostState::default() })
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
