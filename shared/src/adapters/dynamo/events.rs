use super::*;
use crate::domain::post::Unapplied;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct EventItem {
    pub(super) pk: String,
    pub(super) sk: String,
    pub(super) taken_at: Timestamp,
    pub(super) expires_at: i64,
}

/// What to do with the items an event concerns, decided by the pure domain.
pub(super) enum Plan {
    /// Nothing to change: only take the event id.
    Nothing,
    /// Write these items, each on condition that its stored version is still the one expected
    /// (none: absent), with the history records of what they change.
    Write(Vec<(Item, Option<u64>)>, Vec<HistoryItem>),
    Defer,
    Ignore,
}

impl DynamoStore {
    pub(super) fn event_put(&self, event: &EventId, now: Timestamp) -> Result<Put, StoreError> {
        let (pk, sk) = keys::event(event);
        let item =
            encode(&EventItem { pk, sk, taken_at: now, expires_at: now.plus_seconds(EVENT_RETENTION_SECONDS).unix() })?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR expires_at < :now")
            .expression_attribute_values(":now", AttributeValue::N(now.unix().to_string()));
        built(put.build())
    }

    /// Reads the event record and the given items in one consistent request; `None` when the
    /// read overlapped a concurrent transactional write (another round).
    pub(super) async fn read(
        &self,
        event: &EventId,
        keys: &[(String, String)],
        now: Timestamp,
    ) -> Result<Option<(bool, Vec<Option<Item>>)>, StoreError> {
        let mut gets: Vec<TransactGetItem> = Vec::with_capacity(keys.len() + 1);
        for key in std::iter::once(keys::event(event)).chain(keys.iter().cloned()) {
            let get = built(Get::builder().table_name(&self.table).set_key(Some(key_map(key))).build())?;
            gets.push(TransactGetItem::builder().get(get).build());
        }
        let out = match self.client.transact_get_items().set_transact_items(Some(gets)).send().await {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| read_failure(s) == ReadFailure::Conflict) => {
                return Ok(None);
            }
            Err(e) => return Err(store_error(e)),
        };
        let mut items: Vec<Option<Item>> =
            out.responses.unwrap_or_default().into_iter().map(|r| r.item.filter(|i| !i.is_empty())).collect();
        items.resize(keys.len() + 1, None);
        // Emulators (and DynamoDB for up to 48 h) keep expired items: compare the expiry here.
        let taken = match items.remove(0) {
            Some(record) => decode::<EventItem>(record)?.expires_at >= now.unix(),
            None => false,
        };
        Ok(Some((taken, items)))
    }

    /// Read → plan → one write that takes the event id together with the planned change, until
    /// the write lands on what was read.
    pub(super) async fn apply(
        &self,
        event: &EventId,
        keys: &[(String, String)],
        now: Timestamp,
        plan: impl Fn(Vec<Option<Item>>) -> Result<Plan, StoreError>,
    ) -> Result<Outcome, StoreError> {
        let plan = &plan;
        until_landed(|_| async move {
            let Some((taken, items)) = self.read(event, keys, now).await? else { return Ok(Round::Raced) };
            if taken {
                return Ok(Round::Done(Outcome::Duplicate));
            }
            let writes = match plan(items)? {
                Plan::Ignore => return Ok(Round::Done(Outcome::Ignored)),
                Plan::Defer => return Ok(Round::Done(Outcome::Deferred)),
                Plan::Nothing => {
                    let landed = self.put(self.event_put(event, now)?).await?;
                    return Ok(Round::Done(if landed {
                        Outcome::Applied { changed: false }
                    } else {
                        Outcome::Duplicate
                    }));
                }
                Plan::Write(writes, records) => (writes, records),
            };
            let (writes, records) = writes;
            let mut items = vec![TransactWriteItem::builder().put(self.event_put(event, now)?).build()];
            for (item, expected) in writes {
                items.push(TransactWriteItem::builder().put(self.conditional_put(item, expected)?).build());
            }
            for record in &records {
                items
                    .push(TransactWriteItem::builder().put(history::put(&self.table, record, self.retention)?).build());
            }
            // Cancelled: a copy of this event landed first, or the item moved. The next round's read
            // tells which; cancellation reasons are not trusted for it, so no emulator's way of
            // reporting them can lose an event.
            Ok(if self.write_all(items).await? {
                Round::Done(Outcome::Applied { changed: true })
            } else {
                Round::Raced
            })
        })
        .await
    }
}

/// What a webhook's report does to the post (and, for a copy that failed on an expired token, to
/// that platform's connection): joined into what is stored, or deferred when it names a
/// publication we have not stored yet. `items` are the post, then the connections the news is about.
pub(super) fn plan_post(
    ids: (&ProjectId, &PostId, Option<&ProfileId>),
    items: Vec<Option<Item>>,
    now: Timestamp,
    report: &PostReport,
    news: &[ConnectionEvidence],
    source: &Source,
) -> Result<Plan, StoreError> {
    let (project, post, profile) = ids;
    let mut items = items.into_iter();
    let stored = items.next().flatten().map(decode::<PostItem>).transpose()?.map(PostItem::stored);
    let evidence = match report.to_state(stored.as_ref().map(|s| &s.state)) {
        Ok(evidence) => evidence,
        Err(Unapplied::UnknownGeneration) => return Ok(Plan::Defer),
        Err(Unapplied::AnotherServicePost) => {
            tracing::warn!(project = %project, post = %post, service_post = %report.service_post_id,
                           "post event ignored: it names another service post than the publication's");
            return Ok(Plan::Ignore);
        }
    };
    let (mut writes, mut records) = (Vec::new(), Vec::new());
    if let (next, true) = next_post(stored.as_ref(), None, &evidence, None, now) {
        let expected = stored.as_ref().map(|s| s.version);
        let changes = history_changes(stored.as_ref(), &next, now);
        records.extend(history::records(project, Subject::Post(post), &changes, source, now, next_version(expected)));
        writes.push((encode(&PostItem::new(project, post, &next))?, expected));
    }
    if let Some(profile) = profile {
        for (item, news) in items.zip(news) {
            // Only a connection on record: the copy went out through it.
            let Some(read) = item.map(decode::<ConnectionItem>).transpose()?.map(ConnectionItem::stored) else {
                continue;
            };
            if let Some(settled) = settle(Some(read.settled()), news, now) {
                records.extend(connection_records(project, Some(&read), &settled, source, now));
                writes.push((connection_item(project, profile, settled, now)?, Some(read.version)));
            }
        }
    }
    Ok(if writes.is_empty() { Plan::Nothing } else { Plan::Write(writes, records) })
}

impl EventStore for DynamoStore {
    async fn apply_post_report(
        &self,
        event: &EventId,
        project: &ProjectId,
        post: &PostId,
        report: &PostReport,
        now: Timestamp,
    ) -> Result<Outcome, StoreError> {
        let news = report.connection_news();
        // The connections the news is about live under the project's profile: read it first (only
        // on this rare path), then read and write the post and those connections together.
        let profile = match news.is_empty() {
            true => None,
            false => self.get::<ProjectProfileItem>(keys::project_profile(project)).await?.map(|p| p.profile_id),
        };
        // The project's seal is read with the post, in the same request: a sealed project's
        // events are ignored.
        let mut keys = vec![keys::seal(project), keys::post(project, post)];
        if let Some(profile) = &profile {
            keys.extend(news.iter().map(|n| keys::connection(profile, n.platform())));
        }
        let ids = (project, post, profile.as_ref());
        let source = Source::Webhook(event.clone());
        self.apply(event, &keys, now, |mut items| {
            if items.first().is_some_and(Option::is_some) {
                tracing::info!(project = %project, "post event ignored: the project is erased");
                return Ok(Plan::Ignore);
            }
            items.remove(0);
            plan_post(ids, items, now, report, &news, &source)
        })
        .await
    }

    async fn apply_account_news(
        &self,
        event: &EventId,
        profile: &ProfileId,
        news: &ConnectionEvidence,
        now: Timestamp,
    ) -> Result<Outcome, StoreError> {
        let keys = [keys::route(profile), keys::connection(profile, news.platform())];
        let source = Source::Webhook(event.clone());
        let owner = std::sync::Mutex::new(None);
        let outcome = self
            .apply(event, &keys, now, |mut items| {
                let stored: Option<ConnectionItem> = items.pop().flatten().map(decode).transpose()?;
                let Some(route) = items.pop().flatten().map(decode::<RouteItem>).transpose()? else {
                    return Ok(Plan::Ignore);
                };
                let read = stored.map(ConnectionItem::stored);
                match settle(read.as_ref().map(StoredConnection::settled), news, now) {
                    None => Ok(Plan::Nothing),
                    Some(settled) => {
                        let records = connection_records(&route.project_id, read.as_ref(), &settled, &source, now);
                        let item = connection_item(&route.project_id, profile, settled, now)?;
                        *owner.lock().expect("not poisoned") = Some(route.project_id);
                        Ok(Plan::Write(vec![(item, read.map(|r| r.version))], records))
                    }
                }
            })
            .await?;
        let changed = matches!(outcome, Outcome::Applied { changed: true });
        if let Some(project) = owner.into_inner().expect("not poisoned").filter(|_| source.counts_as_check(changed)) {
            // After the event landed, on its own: a project still on this profile is checked now.
            // Not landing only means the reconciler checks it as it would have.
            let update = self.checked(&project, profile, now)?;
            let sent = self
                .client
                .update_item()
                .table_name(update.table_name())
                .set_key(Some(update.key().clone()))
                .update_expression(update.update_expression())
                .set_condition_expression(update.condition_expression().map(str::to_owned))
                .set_expression_attribute_names(update.expression_attribute_names().cloned())
                .set_expression_attribute_values(update.expression_attribute_values().cloned())
                .send()
                .await;
            if let Err(e) = landed(sent) {
                tracing::info!(project = %project, error = %e, "the project's check was not recorded");
            }
        }
        Ok(outcome)
    }
}
