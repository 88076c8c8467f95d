use super::*;
use crate::domain::subscription::Watched;

impl DynamoStore {
    /// Items of one kind in `shards` of the sparse index whose time is at most `before`, oldest
    /// first: every shard queried at once, the oldest `limit` of them all.
    pub(super) async fn attention(
        &self,
        kind: &str,
        shards: &[u32],
        before: Timestamp,
        limit: u32,
    ) -> Result<Vec<Item>, StoreError> {
        let shards =
            futures::future::try_join_all(index::keys(kind, shards).map(|key| self.attention_in(key, before, limit)));
        let mut items: Vec<(i64, Item)> = shards
            .await?
            .into_iter()
            .flatten()
            .map(|item| {
                (item.get(index::RANGE).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok()).unwrap_or(0), item)
            })
            .collect();
        items.sort_by_key(|(at, _)| *at);
        items.truncate(limit.max(1) as usize);
        Ok(items.into_iter().map(|(_, item)| item).collect())
    }

    /// The oldest items of one shard of the index, at most `before`.
    async fn attention_in(&self, key: String, before: Timestamp, limit: u32) -> Result<Vec<Item>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index::NAME)
            .key_condition_expression("#kind = :kind AND #at <= :before")
            .expression_attribute_names("#kind", index::HASH)
            .expression_attribute_names("#at", index::RANGE)
            .expression_attribute_values(":kind", AttributeValue::S(key))
            .expression_attribute_values(":before", AttributeValue::N(before.unix_millis().to_string()))
            .scan_index_forward(true)
            .limit(limit.max(1) as i32)
            .send()
            .await
            .map_err(store_error)?;
        Ok(out.items.unwrap_or_default())
    }
}

/// What the index says of an item: its time and the project (and post) it belongs to.
#[derive(Deserialize)]
pub(super) struct Indexed {
    pub(super) attention_at: i64,
    pub(super) project_id: ProjectId,
    #[serde(default)]
    pub(super) post_id: Option<PostId>,
}

#[derive(Serialize, Deserialize)]
struct WatchedItem {
    pk: String,
    sk: String,
    watched: Watched,
}

#[derive(Serialize, Deserialize)]
pub(super) struct LeaseItem {
    pub(super) pk: String,
    pub(super) sk: String,
    pub(super) until_ms: i64,
}

impl HealingStore for DynamoStore {
    async fn waiting_posts(
        &self,
        shards: &[u32],
        since_before: Timestamp,
        limit: u32,
    ) -> Result<Vec<(Timestamp, ProjectId, PostId)>, StoreError> {
        let items = self.attention(index::POST, shards, since_before, limit).await?;
        let found = items.into_iter().map(decode::<Indexed>).collect::<Result<Vec<_>, _>>()?;
        Ok(found
            .into_iter()
            .filter_map(|i| Some((Timestamp::from_unix_millis(i.attention_at), i.project_id, i.post_id?)))
            .collect())
    }

    async fn stale_projects(
        &self,
        shards: &[u32],
        checked_before: Timestamp,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<(Timestamp, ProjectId)>, StoreError> {
        let (checks, tokens) = tokio::join!(
            self.attention(index::PROJECT, shards, checked_before, limit),
            self.attention(index::TOKEN, shards, now, limit)
        );
        let mut found = Vec::new();
        for item in checks?.into_iter().chain(tokens?) {
            let i = decode::<Indexed>(item)?;
            found.push((Timestamp::from_unix_millis(i.attention_at), i.project_id));
        }
        Ok(found)
    }

    async fn postpone(
        &self,
        project: &ProjectId,
        post: &PostId,
        watch: Watch,
        version: u64,
    ) -> Result<bool, StoreError> {
        let watch_value: AttributeValue =
            serde_dynamo::to_attribute_value(watch).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let sent = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_map(keys::post(project, post))))
            .update_expression("SET watch = :watch, #at = :ms")
            .condition_expression("version = :v")
            .expression_attribute_names("#at", index::RANGE)
            .expression_attribute_values(":watch", watch_value)
            .expression_attribute_values(":ms", AttributeValue::N(watch.since.unix_millis().to_string()))
            .expression_attribute_values(":v", AttributeValue::N(version.to_string()))
            .send()
            .await;
        landed(sent)
    }

    async fn take_lease(&self, lease: u32, now: Timestamp, until: Timestamp) -> Result<bool, StoreError> {
        let (pk, sk) = keys::lease(lease);
        let item = encode(&LeaseItem { pk, sk, until_ms: until.unix_millis() })?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR until_ms < :now")
            .expression_attribute_values(":now", AttributeValue::N(now.unix_millis().to_string()));
        self.put(built(put.build())?).await
    }

    async fn release_lease(&self, lease: u32, until: Timestamp) -> Result<(), StoreError> {
        let (pk, sk) = keys::lease(lease);
        let item = encode(&LeaseItem { pk, sk, until_ms: 0 })?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("until_ms = :until")
            .expression_attribute_values(":until", AttributeValue::N(until.unix_millis().to_string()));
        // Not ours any more (it ran out and another pass took it): nothing to give back.
        self.put(built(put.build())?).await.map(|_| ())
    }

    async fn watched_subscription(&self) -> Result<Watched, StoreError> {
        let got = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_map(keys::watched_subscription())))
            .send()
            .await
            .map_err(store_error)?;
        match got.item {
            Some(item) => decode::<WatchedItem>(item).map(|i| i.watched),
            None => Ok(Watched::default()),
        }
    }

    async fn keep_watched_subscription(&self, watched: &Watched) -> Result<(), StoreError> {
        let (pk, sk) = keys::watched_subscription();
        let item = encode(&WatchedItem { pk, sk, watched: watched.clone() })?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map(|_| ())
            .map_err(store_error)
    }
}
