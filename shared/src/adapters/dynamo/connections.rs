use super::*;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionItem {
    pub pk: String,
    pub sk: String,
    pub project_id: ProjectId,
    pub profile_id: ProfileId,
    pub version: u64,
    pub updated_at: Timestamp,
    /// What the API shows, kept beside the record it is derived from for whoever reads the table.
    #[serde(flatten)]
    pub connection: Connection,
    #[serde(flatten)]
    pub record: ConnectionRecord,
    #[serde(flatten)]
    pub attention: Attention,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct RouteItem {
    pub(super) pk: String,
    pub(super) sk: String,
    pub(super) project_id: ProjectId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct ProjectProfileItem {
    pub(super) pk: String,
    pub(super) sk: String,
    pub(super) profile_id: ProfileId,
    /// The project (also in `pk`), for the reconciler's index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) project_id: Option<ProjectId>,
    /// When the connections were last checked against the live list (a Refresh).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) checked_at: Option<Timestamp>,
    #[serde(flatten)]
    pub(super) attention: Attention,
}

impl DynamoStore {
    /// One platform's connection under a profile, if any.
    pub async fn get_connection(
        &self,
        profile: &ProfileId,
        platform: Platform,
    ) -> Result<Option<ConnectionItem>, StoreError> {
        self.get(keys::connection(profile, platform)).await
    }

    /// Records the project's profile and the routing that lets account webhooks find the
    /// project, together.
    pub(super) async fn put_profile_link(&self, project: &ProjectId, profile: &ProfileId) -> Result<bool, StoreError> {
        let (pk, sk) = keys::project_profile(project);
        // Never checked against the live list: the reconciler looks at once.
        let never = Attention::at(index::PROJECT, project, Some(Timestamp::from_unix_millis(0)));
        let pointer = encode(&ProjectProfileItem {
            pk,
            sk,
            profile_id: profile.clone(),
            project_id: Some(project.clone()),
            checked_at: None,
            attention: never,
        })?;
        let (pk, sk) = keys::route(profile);
        let route = encode(&RouteItem { pk, sk, project_id: project.clone() })?;
        let pointer = built(Put::builder().table_name(&self.table).set_item(Some(pointer)).build())?;
        // A profile is one project's: the routing is written only if absent or already this project's.
        let route = built(
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(route))
                .condition_expression("attribute_not_exists(pk) OR project_id = :project")
                .expression_attribute_values(":project", AttributeValue::S(project.to_string()))
                .build(),
        )?;
        let mut items = [pointer, route].map(|put| TransactWriteItem::builder().put(put).build()).to_vec();
        items.push(TransactWriteItem::builder().condition_check(self.unsealed(project)?).build());
        if self.write_all(items).await? {
            return Ok(true);
        }
        self.unless_sealed(project).await?;
        Ok(false)
    }

    /// The project's record of a check against the live list at `now`, while it still points at
    /// `profile` (a Connect that moved it meanwhile cancels the write: another round).
    pub(super) fn checked(
        &self,
        project: &ProjectId,
        profile: &ProfileId,
        now: Timestamp,
    ) -> Result<Update, StoreError> {
        built(
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(key_map(keys::project_profile(project))))
                .update_expression("SET checked_at = :now, #kind = :kind, attention_at = :ms, project_id = :project")
                .condition_expression("profile_id = :profile")
                .expression_attribute_names("#kind", index::HASH)
                .expression_attribute_values(":now", AttributeValue::S(now.to_rfc3339()))
                .expression_attribute_values(":kind", AttributeValue::S(index::key(index::PROJECT, project)))
                .expression_attribute_values(":ms", AttributeValue::N(now.unix_millis().to_string()))
                .expression_attribute_values(":profile", AttributeValue::S(profile.to_string()))
                .expression_attribute_values(":project", AttributeValue::S(project.to_string()))
                .build(),
        )
    }
}

/// The history records of a connection going from `read` to `settled`.
pub(super) fn connection_records(
    project: &ProjectId,
    read: Option<&StoredConnection>,
    settled: &Settled,
    source: &Source,
    now: Timestamp,
) -> Vec<HistoryItem> {
    let platform = settled.shown.platform;
    let changes = connection_changes(platform, read.map(|r| &r.connection), Some(&settled.shown));
    history::records(project, Subject::Connection, &changes, source, now, next_version(read.map(|r| r.version)))
}

pub(super) fn connection_item(
    project: &ProjectId,
    profile: &ProfileId,
    settled: Settled,
    now: Timestamp,
) -> Result<Item, StoreError> {
    let (pk, sk) = keys::connection(profile, settled.shown.platform);
    let attention = Attention::at(index::TOKEN, project, token_look(&settled.shown, now));
    encode(&ConnectionItem {
        pk,
        sk,
        project_id: project.clone(),
        profile_id: profile.clone(),
        version: 0,
        updated_at: settled.updated_at,
        connection: settled.shown,
        record: settled.record,
        attention,
    })
}

impl ConnectionItem {
    pub(super) fn stored(self) -> StoredConnection {
        // An item written before records were kept holds its link alone.
        let record = if self.record == ConnectionRecord::default() {
            ConnectionRecord { link: Some(self.connection.clone()), ..ConnectionRecord::default() }
        } else {
            self.record
        };
        StoredConnection { connection: self.connection, record, updated_at: self.updated_at, version: self.version }
    }
}

impl ConnectionStore for DynamoStore {
    async fn profile_and_budget(
        &self,
        project: &ProjectId,
        kind: CallKind,
    ) -> Result<(Option<ProfileId>, Seen), StoreError> {
        // The seal is read in the same request: a sealed project's route goes no further.
        let keys = [keys::project_profile(project), keys::budget(project, kind), keys::seal(project)];
        let mut items = self.get_many(&keys).await?.into_iter();
        let profile = items.next().flatten().map(decode::<ProjectProfileItem>).transpose()?.map(|p| p.profile_id);
        let budget = budget_of(items.next().flatten());
        refuse_sealed(items.next().flatten())?;
        Ok((profile, budget))
    }

    async fn project_profile(&self, project: &ProjectId) -> Result<Option<ProfileId>, StoreError> {
        Ok(self.get::<ProjectProfileItem>(keys::project_profile(project)).await?.map(|p| p.profile_id))
    }

    async fn connections(&self, profile: &ProfileId) -> Result<Vec<StoredConnection>, StoreError> {
        let (pk, _) = keys::route(profile);
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :conn)")
            .expression_attribute_values(":pk", AttributeValue::S(pk))
            .expression_attribute_values(":conn", AttributeValue::S("CONN#".into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        out.items
            .unwrap_or_default()
            .into_iter()
            .map(|i| decode::<ConnectionItem>(i).map(ConnectionItem::stored))
            .collect()
    }

    async fn save_connections(
        &self,
        project: &ProjectId,
        profile: &ProfileId,
        read: Vec<StoredConnection>,
        evidence: Vec<Connection>,
        source: &Source,
        now: Timestamp,
    ) -> Result<Vec<StoredConnection>, StoreError> {
        let (read, evidence) = (&read, &evidence);
        until_landed(|round| async move {
            let stored = match round {
                0 => read.clone(),
                _ => self.connections(profile).await?,
            };
            let mut result = stored.clone();
            let mut writes = Vec::new();
            for e in evidence {
                let current = stored.iter().find(|s| s.connection.platform == e.platform);
                let news = ConnectionEvidence::Linked(e.clone());
                let Some(settled) = settle(current.map(StoredConnection::settled), &news, now) else { continue };
                let expected = current.map(|s| s.version);
                let written = StoredConnection {
                    connection: settled.shown.clone(),
                    record: settled.record.clone(),
                    updated_at: settled.updated_at,
                    version: expected.map_or(1, |v| v + 1),
                };
                for record in connection_records(project, current, &settled, source, now) {
                    writes.push(
                        TransactWriteItem::builder().put(history::put(&self.table, &record, self.retention)?).build(),
                    );
                }
                let put = self.conditional_put(connection_item(project, profile, settled, now)?, expected)?;
                writes.push(TransactWriteItem::builder().put(put).build());
                result.retain(|s| s.connection.platform != e.platform);
                result.push(written);
            }
            if source.checks_connections() {
                writes.push(TransactWriteItem::builder().update(self.checked(project, profile, now)?).build());
            }
            // A connection made anew is refused once the project is sealed.
            let creates = evidence.iter().any(|e| !stored.iter().any(|s| s.connection.platform == e.platform));
            if creates && !writes.is_empty() {
                writes.push(TransactWriteItem::builder().condition_check(self.unsealed(project)?).build());
            }
            if !self.write_all(writes).await? {
                if creates {
                    self.unless_sealed(project).await?;
                }
                return Ok(Round::Raced);
            }
            result.sort_by_key(|s| s.connection.platform);
            Ok(Round::Done(result))
        })
        .await
    }

    async fn forget_profile(
        &self,
        project: &ProjectId,
        profile: &ProfileId,
        read: &[StoredConnection],
        source: &Source,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let delete = |key: (String, String)| Delete::builder().table_name(&self.table).set_key(Some(key_map(key)));
        let pointer = delete(keys::project_profile(project))
            .condition_expression("attribute_not_exists(pk) OR profile_id = :profile")
            .expression_attribute_values(":profile", AttributeValue::S(profile.to_string()));
        let mut deletes = vec![pointer, delete(keys::route(profile))];
        // Each connection only as it was read: one written meanwhile (a Connect completing) cancels.
        deletes.extend(read.iter().map(|s| {
            delete(keys::connection(profile, s.connection.platform))
                .condition_expression("version = :v")
                .expression_attribute_values(":v", AttributeValue::N(s.version.to_string()))
        }));
        let mut items = deletes
            .into_iter()
            .map(|d| built(d.build()).map(|d| TransactWriteItem::builder().delete(d).build()))
            .collect::<Result<Vec<_>, _>>()?;
        // Each connection now reads `not_connected`: a visible change, recorded with it.
        for s in read {
            let platform = s.connection.platform;
            let changes = connection_changes(platform, Some(&s.connection), None);
            let version = next_version(Some(s.version));
            for record in history::records(project, Subject::Connection, &changes, source, now, version) {
                items.push(
                    TransactWriteItem::builder().put(history::put(&self.table, &record, self.retention)?).build(),
                );
            }
        }
        self.write_all(items).await
    }

    async fn link_profile(&self, project: &ProjectId, profile: &ProfileId) -> Result<bool, StoreError> {
        self.put_profile_link(project, profile).await
    }
}
