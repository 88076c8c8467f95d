//! A project's seal (`domain::erasure`): one item, `PROJECT#{project}` / `SEAL`, that holds the
//! erasure's progress and stays after every other item of the project is gone; and the erasure's
//! reads and deletes.

use aws_sdk_dynamodb::types::{ConditionCheck, Delete};

use super::*;
use crate::domain::erasure::Erasure;
use crate::ports::{ErasureStore, ItemKey, SealStore};

#[derive(Serialize, Deserialize)]
struct SealItem {
    pk: String,
    sk: String,
    version: u64,
    /// For the index: whose seal, and when a pass resumes the erasure if no step ran by then
    /// (`domain::erasure::Erasure::resume_at`, a due look like a token's); none once finished.
    project_id: ProjectId,
    #[serde(flatten)]
    attention: Attention,
    #[serde(flatten)]
    erasure: Erasure,
}

impl DynamoStore {
    /// The condition every write that creates an item of the project carries: no seal (checked in
    /// the same transaction, so a write racing the seal can never land after it).
    pub fn unsealed(&self, project: &ProjectId) -> Result<ConditionCheck, StoreError> {
        built(
            ConditionCheck::builder()
                .table_name(&self.table)
                .set_key(Some(key_map(keys::seal(project))))
                .condition_expression("attribute_not_exists(pk)")
                .build(),
        )
    }

    /// After a creating write of the project did not land: `Sealed` when the seal is why.
    pub(super) async fn unless_sealed(&self, project: &ProjectId) -> Result<(), StoreError> {
        match self.erasure(project).await? {
            Some(_) => Err(StoreError::Sealed),
            None => Ok(()),
        }
    }

    fn seal_put(&self, project: &ProjectId, erasure: &Erasure, version: u64) -> Result<Put, StoreError> {
        let (pk, sk) = keys::seal(project);
        let attention = Attention::at(index::TOKEN, project, erasure.resume_at());
        let item = encode(&SealItem {
            pk,
            sk,
            version: version + 1,
            project_id: project.clone(),
            attention,
            erasure: erasure.clone(),
        })?;
        let put = Put::builder().table_name(&self.table).set_item(Some(item));
        let put = match version {
            0 => put.condition_expression("attribute_not_exists(pk)"),
            v => put
                .condition_expression("version = :v")
                .expression_attribute_values(":v", AttributeValue::N(v.to_string())),
        };
        built(put.build())
    }

    /// The keys of up to `limit` items of one partition, besides `skip`, read consistently.
    async fn keys_of(&self, pk: &str, skip: &[&str], limit: usize) -> Result<Vec<ItemKey>, StoreError> {
        let mut found = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
                .projection_expression("pk, sk")
                .consistent_read(true)
                .limit(i32::try_from(limit + skip.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(store_error)?;
            for item in out.items.unwrap_or_default() {
                let sk = item.get("sk").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
                if !skip.contains(&sk.as_str()) && found.len() < limit {
                    found.push(ItemKey(pk.to_owned(), sk));
                }
            }
            start = out.last_evaluated_key;
            if start.is_none() || found.len() >= limit {
                return Ok(found);
            }
        }
    }
}

/// A seal read beside a route's first items: `Sealed` when the project is erased (its routes
/// answer 410), nothing else read or changed.
pub(super) fn refuse_sealed(seal: Option<Item>) -> Result<(), StoreError> {
    let seal = seal.map(decode::<SealItem>).transpose()?.map(|s| s.erasure);
    match crate::domain::erasure::allows(seal.as_ref(), crate::domain::erasure::Action::Route) {
        true => Ok(()),
        false => Err(StoreError::Sealed),
    }
}

impl SealStore for DynamoStore {
    async fn erasure(&self, project: &ProjectId) -> Result<Option<(Erasure, u64)>, StoreError> {
        let item: Option<SealItem> = self.get(keys::seal(project)).await?;
        Ok(item.map(|i| (i.erasure, i.version)))
    }

    async fn seal(&self, project: &ProjectId, now: Timestamp) -> Result<(Erasure, u64), StoreError> {
        let profile = self.get::<ProjectProfileItem>(keys::project_profile(project)).await?.map(|p| p.profile_id);
        let begun = Erasure::begin(now);
        let mut writes = vec![TransactWriteItem::builder().put(self.seal_put(project, &begun, 0)?).build()];
        if let Some(profile) = &profile {
            // No account webhook reaches the project from now on (it finds no routing: ignored).
            let delete = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(key_map(keys::route(profile))))
                .condition_expression("attribute_not_exists(pk) OR project_id = :project")
                .expression_attribute_values(":project", AttributeValue::S(project.to_string()));
            writes.push(TransactWriteItem::builder().delete(built(delete.build())?).build());
        }
        if self.write_all(writes).await? {
            return Ok((begun, 1));
        }
        self.erasure(project)
            .await?
            .ok_or_else(|| StoreError::Unavailable("the seal was refused and cannot be read".into()))
    }
}

impl ErasureStore for DynamoStore {
    async fn erased_profile(&self, project: &ProjectId) -> Result<Option<ProfileId>, StoreError> {
        Ok(self.get::<ProjectProfileItem>(keys::project_profile(project)).await?.map(|p| p.profile_id))
    }

    async fn items_left(&self, project: &ProjectId, limit: usize) -> Result<Vec<ItemKey>, StoreError> {
        let profile = self.erased_profile(project).await?;
        if let Some(profile) = &profile {
            let (pk, _) = keys::route(profile);
            let theirs = self.keys_of(&pk, &[], limit).await?;
            if !theirs.is_empty() {
                return Ok(theirs);
            }
        }
        let (pk, _) = keys::seal(project);
        let own = self.keys_of(&pk, &["SEAL", "PROFILE"], limit).await?;
        if !own.is_empty() || profile.is_none() {
            return Ok(own);
        }
        // The pointer to the profile goes last: until then it says where the profile's items are.
        let (pk, sk) = keys::project_profile(project);
        Ok(vec![ItemKey(pk, sk)])
    }

    async fn delete_items(
        &self,
        project: &ProjectId,
        items: &[ItemKey],
        next: &Erasure,
        version: u64,
    ) -> Result<bool, StoreError> {
        let mut writes = vec![TransactWriteItem::builder().put(self.seal_put(project, next, version)?).build()];
        for ItemKey(pk, sk) in items {
            let delete = Delete::builder().table_name(&self.table).set_key(Some(key_map((pk.clone(), sk.clone()))));
            writes.push(TransactWriteItem::builder().delete(built(delete.build())?).build());
        }
        self.write_all(writes).await
    }

    async fn save_erasure(
        &self,
        project: &ProjectId,
        next: &Erasure,
        version: u64,
        announce: bool,
    ) -> Result<bool, StoreError> {
        let mut writes = vec![TransactWriteItem::builder().put(self.seal_put(project, next, version)?).build()];
        if announce {
            let record = history::erased(project, next.since, Timestamp::from(time::OffsetDateTime::now_utc()));
            writes.push(TransactWriteItem::builder().put(history::put(&self.table, &record, self.retention)?).build());
        }
        self.write_all(writes).await
    }
}
