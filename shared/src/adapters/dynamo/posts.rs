use super::*;

/// A post's item: its state and bookkeeping. Its draft (content and media, up to ~225 KB) is kept
/// in an item of its own ([`DraftItem`]) written only when the draft changes, so every webhook
/// rewrites only this small item; items written before held the draft here, and keep it here
/// until the draft changes or the store rewrites them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostItem {
    pub pk: String,
    pub sk: String,
    pub project_id: ProjectId,
    pub post_id: PostId,
    pub version: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The digest of the draft kept apart: a read of both finds them matching, or reads again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draft_digest: Option<String>,
    /// Items written before drafts were kept apart: the draft's content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Items written before drafts were kept apart: typed media, or (older still) bare `media_urls`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub media: Vec<Media>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub media_urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<Watch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sending: Option<Sending>,
    #[serde(flatten)]
    pub attention: Attention,
    #[serde(flatten)]
    pub state: PostState,
}

/// A post's draft, beside it: `PROJECT#{project}` / `DRAFT#{post}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DraftItem {
    pub pk: String,
    pub sk: String,
    pub digest: String,
    pub content: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub media: Vec<Media>,
}

/// What tells one draft from another (hex, 128 bits of SHA-256): the post item names its draft by
/// it, so a read that caught the two items at different writes is told by a mismatch, whatever
/// was written between.
pub(super) fn digest(draft: &Draft) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    hash.update((draft.content.len() as u64).to_be_bytes());
    hash.update(draft.content.as_bytes());
    for m in &draft.media {
        hash.update(serde_json::to_vec(m).unwrap_or_default());
        hash.update([0]);
    }
    hex::encode(&hash.finalize()[..16])
}

impl PostItem {
    /// The one way a post item is made: from the post as stored (or to be stored). The draft goes
    /// into it only where it was kept before (no `draft_digest`).
    pub(super) fn new(project: &ProjectId, post: &PostId, stored: &StoredPost) -> PostItem {
        let (pk, sk) = keys::post(project, post);
        let inline = stored.draft.as_ref().filter(|_| stored.draft_digest.is_none());
        PostItem {
            pk,
            sk,
            project_id: project.clone(),
            post_id: post.clone(),
            version: stored.version,
            created_at: stored.created_at,
            updated_at: stored.updated_at,
            draft_digest: stored.draft_digest.clone(),
            content: inline.map(|d| d.content.clone()),
            media: inline.map(|d| d.media.clone()).unwrap_or_default(),
            media_urls: Vec::new(),
            watch: stored.watch,
            sending: stored.sending.clone(),
            attention: Attention::at(index::POST, project, stored.watch.map(|w| w.since)),
            state: stored.state.clone(),
        }
    }

    /// The post as this item holds it: without its draft when the draft is kept apart.
    pub(super) fn stored(self) -> StoredPost {
        StoredPost {
            state: self.state,
            draft: self.content.map(|content| Draft { content, media: media::combine(&self.media_urls, &self.media) }),
            created_at: self.created_at,
            updated_at: self.updated_at,
            version: self.version,
            watch: self.watch,
            sending: self.sending,
            draft_digest: self.draft_digest,
        }
    }
}

impl DraftItem {
    fn new(project: &ProjectId, post: &PostId, draft: &Draft, digest: String) -> DraftItem {
        let (pk, sk) = keys::draft(project, post);
        DraftItem { pk, sk, digest, content: draft.content.clone(), media: draft.media.clone() }
    }

    /// Its put in a transaction: unconditional, since the post item's write beside it is the
    /// condition that guards them both.
    fn write(&self, table: &str) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder().table_name(table).set_item(Some(encode(self)?));
        Ok(TransactWriteItem::builder().put(built(put.build())?).build())
    }
}

/// The post read together with its draft item; `Err(())` when the two were caught at different
/// writes (read again).
fn joined(post: Option<Item>, draft: Option<Item>) -> Result<Result<Option<StoredPost>, ()>, StoreError> {
    let Some(post) = post.map(decode::<PostItem>).transpose()?.map(PostItem::stored) else { return Ok(Ok(None)) };
    let Some(expected) = &post.draft_digest else { return Ok(Ok(Some(post))) };
    match draft.map(decode::<DraftItem>).transpose()? {
        Some(d) if &d.digest == expected => {
            Ok(Ok(Some(StoredPost { draft: Some(Draft { content: d.content, media: d.media }), ..post })))
        }
        _ => Ok(Err(())),
    }
}

impl DynamoStore {
    /// The post's own item, if any.
    pub async fn get_post(&self, project: &ProjectId, post: &PostId) -> Result<Option<PostItem>, StoreError> {
        self.get(keys::post(project, post)).await
    }

    /// The post with its draft, and the `others` items, in one consistent `BatchGetItem` (again
    /// when it caught the post and its draft at different writes).
    async fn read_post(
        &self,
        project: &ProjectId,
        post: &PostId,
        others: &[(String, String)],
    ) -> Result<(Option<StoredPost>, Vec<Option<Item>>), StoreError> {
        let keys: Vec<_> =
            [keys::post(project, post), keys::draft(project, post)].into_iter().chain(others.iter().cloned()).collect();
        for round in 0..MAX_ROUNDS {
            if round > 0 {
                back_off(round).await;
            }
            let mut items = self.get_many(&keys).await?.into_iter();
            if let Ok(stored) = joined(items.next().flatten(), items.next().flatten())? {
                return Ok((stored, items.collect()));
            }
        }
        Err(StoreError::Unavailable("the post and its draft kept being read at different writes".into()))
    }
}

impl PostStore for DynamoStore {
    async fn post(&self, project: &ProjectId, post: &PostId) -> Result<Option<StoredPost>, StoreError> {
        Ok(self.read_post(project, post, &[]).await?.0)
    }

    async fn post_profile_and_budget(&self, project: &ProjectId, post: &PostId) -> Result<PublishRead, StoreError> {
        let others = [keys::project_profile(project), keys::budget(project, CallKind::Publish), keys::seal(project)];
        let (post, others) = self.read_post(project, post, &others).await?;
        let mut others = others.into_iter();
        let profile = others.next().flatten().map(decode::<ProjectProfileItem>).transpose()?.map(|p| p.profile_id);
        let budget = budget_of(others.next().flatten());
        refuse_sealed(others.next().flatten())?;
        Ok(PublishRead { post, profile, budget })
    }

    async fn post_and_budget(
        &self,
        project: &ProjectId,
        post: &PostId,
        kind: CallKind,
    ) -> Result<(Option<StoredPost>, Seen), StoreError> {
        let (post, others) = self.read_post(project, post, &[keys::budget(project, kind), keys::seal(project)]).await?;
        let mut others = others.into_iter();
        let budget = budget_of(others.next().flatten());
        refuse_sealed(others.next().flatten())?;
        Ok((post, budget))
    }

    async fn save_post(
        &self,
        project: &ProjectId,
        post: &PostId,
        read: Option<&StoredPost>,
        change: PostChange<'_>,
        now: Timestamp,
    ) -> Result<StoredPost, StoreError> {
        let PostChange { source, evidence, draft, news, sending } = change;
        // News about connections (rare): they live under the project's profile.
        let profile = match news.is_empty() {
            true => None,
            false => self.get::<ProjectProfileItem>(keys::project_profile(project)).await?.map(|p| p.profile_id),
        };
        let profile = &profile;
        until_landed(|round| async move {
            let stored = match round {
                0 => read.cloned(),
                _ => self.read_post(project, post, &[]).await?.0,
            };
            let (mut next, changed) = next_post(stored.as_ref(), draft, evidence, sending, now);
            let expected = stored.as_ref().map(|s| s.version);
            let mut writes = Vec::new();
            if changed {
                // The draft goes to its own item when it changed, or when it was kept in the post's.
                // With no new draft given, one already apart is as it was: no need to hash it.
                let may_move = draft.is_some() || next.draft_digest.is_none();
                if let Some(kept) = next.draft.as_ref().filter(|_| may_move)
                    && let fresh = digest(kept)
                    && next.draft_digest.as_ref() != Some(&fresh)
                {
                    writes.push(DraftItem::new(project, post, kept, fresh.clone()).write(&self.table)?);
                    next.draft_digest = Some(fresh);
                }
                let changes = history_changes(stored.as_ref(), &next, now);
                for record in
                    history::records(project, Subject::Post(post), &changes, source, now, next_version(expected))
                {
                    writes.push(
                        TransactWriteItem::builder().put(history::put(&self.table, &record, self.retention)?).build(),
                    );
                }
                let put = self.conditional_put(encode(&PostItem::new(project, post, &next))?, expected)?;
                writes.push(TransactWriteItem::builder().put(put).build());
            }
            if let Some(profile) = profile {
                let connections = self.connections(profile).await?;
                for news in news {
                    // Only a connection on record: the copy went out through it.
                    let Some(current) = connections.iter().find(|c| c.connection.platform == news.platform()) else {
                        continue;
                    };
                    let Some(settled) = settle(Some(current.settled()), news, now) else { continue };
                    for record in connection_records(project, Some(current), &settled, source, now) {
                        writes.push(
                            TransactWriteItem::builder()
                                .put(history::put(&self.table, &record, self.retention)?)
                                .build(),
                        );
                    }
                    let item = connection_item(project, profile, settled, now)?;
                    let put = self.conditional_put(item, Some(current.version))?;
                    writes.push(TransactWriteItem::builder().put(put).build());
                }
            }
            if writes.is_empty() {
                return Ok(Round::Done(next));
            }
            // A write that creates the post is refused once the project is sealed (an update of
            // one that exists fails by itself once the erasure deleted it).
            let creates = changed && expected.is_none();
            if creates {
                writes.push(TransactWriteItem::builder().condition_check(self.unsealed(project)?).build());
            }
            if !self.write_all(writes).await? {
                if creates {
                    self.unless_sealed(project).await?;
                }
                return Ok(Round::Raced);
            }
            if changed {
                next.version = expected.map_or(1, |v| v + 1);
            }
            Ok(Round::Done(next))
        })
        .await
    }

    async fn abandon(
        &self,
        project: &ProjectId,
        post: &PostId,
        begun: &StoredPost,
        before: Option<&StoredPost>,
    ) -> Result<(), StoreError> {
        let restored = match before {
            Some(before) => PostItem::new(project, post, before),
            None => {
                PostItem::new(project, post, &StoredPost { sending: None, version: begun.version + 1, ..begun.clone() })
            }
        };
        // The item exactly as it was, on condition that nothing was written since the publication
        // began (a writer that read it before then finds it as it read it).
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(encode(&restored)?))
            .condition_expression("version = :v")
            .expression_attribute_values(":v", AttributeValue::N(begun.version.to_string()));
        let mut writes = vec![TransactWriteItem::builder().put(built(put.build())?).build()];
        // Its draft too, if the publication brought a new one.
        if let Some(before) = before
            && let (Some(draft), Some(digest)) = (&before.draft, &before.draft_digest)
            && before.draft_digest != begun.draft_digest
        {
            writes.push(DraftItem::new(project, post, draft, digest.clone()).write(&self.table)?);
        }
        if self.write_all(writes).await? {
            return Ok(());
        }
        let Some(generation) = begun.sending.as_ref().map(|s| s.generation) else { return Ok(()) };
        let nothing = PostState::default();
        let end = PostChange::new(&Source::Publish, &nothing).with_sending(SendingChange::End(generation));
        self.save_post(project, post, None, end, begun.updated_at).await.map(|_| ())
    }
}
