//! A post's state as a join-semilattice: any order and any repetition of the same evidence gives
//! the same state, and nothing ever moves backwards within a generation.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ids::ServicePostId;
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

/// One platform's copy of a post.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformEntry {
    pub generation: Generation,
    pub status: EntryStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_post_id: Option<ServicePostId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
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
    /// The newest generation the service reported cancelled (or Sync found gone everywhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled_generation: Option<Generation>,
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

fn earliest(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl PlatformEntry {
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
            cancelled_generation: self.cancelled_generation.max(other.cancelled_generation),
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

    /// The overall status at `now`, first match wins, as `state-rules.md` lists.
    pub fn overall(&self, now: Timestamp) -> PostStatus {
        if let Some(cancelled) = self.cancelled_generation
            && self.latest_generation().is_none_or(|latest| cancelled >= latest)
        {
            return PostStatus::Cancelled;
        }
        if self.entries.is_empty() {
            return PostStatus::Draft;
        }
        let live: Vec<&PlatformEntry> = self.entries.values().filter(|e| e.status != EntryStatus::Removed).collect();
        if live.is_empty() {
            return PostStatus::Removed;
        }
        if let Some(queued) = live.iter().filter(|e| e.status == EntryStatus::Queued).map(|e| e.generation).max() {
            let before_its_time = self.schedule.is_some_and(|s| s.generation >= queued && now < s.at);
            return if before_its_time { PostStatus::Scheduled } else { PostStatus::Publishing };
        }
        let published = live.iter().filter(|e| e.status == EntryStatus::Published).count();
        match published {
            n if n == live.len() => PostStatus::Published,
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
    pub cancelled: bool,
    pub published_at: Option<Timestamp>,
    pub scheduled_for: Option<Timestamp>,
    /// Used for a platform the report lists without a status of its own.
    pub default_status: EntryStatus,
    pub platforms: Vec<PlatformReport>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformReport {
    pub platform: Platform,
    pub status: Option<EntryStatus>,
    pub account_id: Option<String>,
    pub url: Option<String>,
    pub platform_post_id: Option<String>,
    pub published_at: Option<Timestamp>,
    pub error: Option<String>,
}

/// Why a report could not be applied yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unapplied {
    /// The report names a service post we have no generation for: the publish that created it
    /// has not stored its answer yet.
    UnknownGeneration,
}

impl PostReport {
    /// The report as a piece of state, ready to be joined into the stored one.
    pub fn to_state(&self, stored: Option<&PostState>) -> Result<PostState, Unapplied> {
        let generation = self
            .generation
            .or_else(|| stored.and_then(|s| s.generation_of(&self.service_post_id)))
            .ok_or(Unapplied::UnknownGeneration)?;
        let mut entries = BTreeMap::new();
        for p in &self.platforms {
            let entry = PlatformEntry {
                generation,
                status: p.status.unwrap_or(self.default_status),
                service_post_id: Some(self.service_post_id.clone()),
                account_id: p.account_id.clone(),
                url: p.url.clone(),
                platform_post_id: p.platform_post_id.clone(),
                published_at: p.published_at,
                error: p.error.clone(),
            };
            let joined = match entries.get(&p.platform) {
                Some(existing) => PlatformEntry::join(existing, &entry),
                None => entry.normalized(),
            };
            entries.insert(p.platform, joined);
        }
        if self.platforms.is_empty() {
            // A report that lists no platforms speaks for every entry of its generation.
            for (platform, entry) in stored.map(|s| &s.entries).into_iter().flatten() {
                if entry.generation == generation {
                    let mut said = entry.clone();
                    said.status = said.status.max(self.default_status);
                    entries.insert(*platform, said.normalized());
                }
            }
        }
        let first_live = entries.values().filter_map(|e| e.published_at).min();
        Ok(PostState {
            entries,
            cancelled_generation: self.cancelled.then_some(generation),
            published_at: earliest(self.published_at, first_live),
            schedule: self.scheduled_for.map(|at| Schedule { generation, at }),
        })
    }
}

/// "I deleted this on [platform] myself": that platform's current copy is removed.
pub fn manual_delete(stored: &PostState, platform: Platform) -> Option<PostState> {
    let current = stored.entries.get(&platform)?;
    let removed = PlatformEntry {
        generation: current.generation,
        status: EntryStatus::Removed,
        service_post_id: None,
        account_id: None,
        url: None,
        platform_post_id: None,
        published_at: None,
        error: None,
    };
    Some(stored.join(&PostState { entries: BTreeMap::from([(platform, removed)]), ..PostState::default() }))
}

#[cfg(test)]
mod tests;
