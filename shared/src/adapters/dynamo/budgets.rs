//! Budgets of calls to the publishing service: a project's bucket per kind of call, and the
//! shards of the shared API key's budget (`domain::budget`). Each is taken by one conditional
//! `UpdateItem` per round (`domain::limits::take`): a round that meets another writer's change
//! reads it from the refusal itself and decides again, so no taker is lost to contention.

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::*;
use crate::domain::budget::Lane;
use crate::domain::limits::{Move, ProjectLane, Rate, Seen};

/// A budget item's `expires_at`, from the moment it is written: TTL deletes an item at any time
/// after it (days late, never early), so it lies past the last moment any lane can still matter -
/// a shard shut for a 429 (at most `MAX_SHUT_SECONDS`), a place in line (a shard's `Retry-After`
/// plus `LINE_AHEAD_SECONDS`), a project's burst (two minutes) - with room to spare. An item
/// deleted early would lose its line and hand out places ahead of bookings already given.
const BUDGET_TTL_SECONDS: i64 = 3600;
/// The attribute a lane of a project's budget item is kept in.
fn lane_name(lane: ProjectLane) -> &'static str {
    match lane {
        ProjectLane::Calls => "tat",
        ProjectLane::PostWrites => "writes",
    }
}

pub(super) fn budget_of(item: Option<Item>) -> Seen {
    let lane = |lane| item.as_ref().and_then(|i| number(i, lane_name(lane)));
    Seen { calls: lane(ProjectLane::Calls), writes: lane(ProjectLane::PostWrites) }
}

fn number(item: &Item, name: &str) -> Option<i64> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok())
}

impl DynamoStore {
    /// Takes one call from every lane of the item at `key` (all or none), starting from what was
    /// seen of them, up to `ahead_ms` past their room (`limits::take_ahead`): what the lanes held
    /// before.
    async fn take_lanes(
        &self,
        key: (String, String),
        lanes: &[(&str, Rate)],
        mut seen: Vec<Option<i64>>,
        now: Timestamp,
        ahead_ms: i64,
    ) -> Result<Result<Vec<Option<i64>>, Limited>, StoreError> {
        // Lanes only move forward: each round that fails saw one start or the item refused.
        for _ in 0..=2 * lanes.len() + 1 {
            let asked: Vec<(Option<i64>, Rate)> = seen.iter().copied().zip(lanes.iter().map(|(_, r)| *r)).collect();
            let moves = match limits::take_ahead(&asked, now, ahead_ms) {
                Ok(moves) => moves,
                Err(limited) => return Ok(Err(limited)),
            };
            let mut update = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key_map(key.clone())))
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .return_values(ReturnValue::UpdatedOld)
                .expression_attribute_values(
                    ":expires",
                    AttributeValue::N((now.unix() + BUDGET_TTL_SECONDS).to_string()),
                );
            let (mut sets, mut conditions) = (vec!["expires_at = :expires".to_owned()], Vec::new());
            for (i, ((name, _), m)) in lanes.iter().zip(&moves).enumerate() {
                update = update.expression_attribute_names(format!("#l{i}"), *name);
                let n = |v: i64| AttributeValue::N(v.to_string());
                match *m {
                    Move::Start { now, to } => {
                        sets.push(format!("#l{i} = :to{i}"));
                        conditions.push(format!("(attribute_not_exists(#l{i}) OR #l{i} <= :now{i})"));
                        update = update.expression_attribute_values(format!(":to{i}"), n(to));
                        update = update.expression_attribute_values(format!(":now{i}"), n(now));
                    }
                    Move::Advance { now, at_most, by } => {
                        sets.push(format!("#l{i} = #l{i} + :by{i}"));
                        conditions.push(format!("(#l{i} > :now{i} AND #l{i} <= :most{i})"));
                        update = update.expression_attribute_values(format!(":by{i}"), n(by));
                        update = update.expression_attribute_values(format!(":now{i}"), n(now));
                        update = update.expression_attribute_values(format!(":most{i}"), n(at_most));
                    }
                }
            }
            let sent = update
                .update_expression(format!("SET {}", sets.join(", ")))
                .condition_expression(conditions.join(" AND "))
                .send()
                .await;
            match sent {
                Ok(out) => {
                    let before = out.attributes.unwrap_or_default();
                    return Ok(Ok(lanes.iter().map(|(name, _)| number(&before, name)).collect()));
                }
                Err(e) => match e.as_service_error() {
                    Some(UpdateItemError::ConditionalCheckFailedException(failed)) => {
                        let item = failed.item().cloned().unwrap_or_default();
                        seen = lanes.iter().map(|(name, _)| number(&item, name)).collect();
                    }
                    _ => return Err(store_error(e)),
                },
            }
        }
        Err(StoreError::Contention)
    }
}

impl BudgetStore for DynamoStore {
    async fn take_budget(
        &self,
        project: &ProjectId,
        item: CallKind,
        seen: Seen,
        lanes: &[(ProjectLane, Rate)],
        now: Timestamp,
    ) -> Result<Result<(), Limited>, StoreError> {
        let named: Vec<(&str, Rate)> = lanes.iter().map(|(lane, rate)| (lane_name(*lane), *rate)).collect();
        let seen = lanes.iter().map(|(lane, _)| seen.lane(*lane)).collect();
        let taken = self.take_lanes(keys::budget(project, item), &named, seen, now, 0).await?;
        Ok(taken.map(|_| ()))
    }
}

impl SharedBudgetStore for DynamoStore {
    async fn take_shared(
        &self,
        shard: u32,
        lanes: &[(Lane, Rate)],
        now: Timestamp,
    ) -> Result<Result<(), Limited>, StoreError> {
        let named: Vec<(&str, Rate)> = lanes.iter().map(|(lane, rate)| (lane.name(), *rate)).collect();
        // Nothing read first: the first round assumes level lanes, a refusal shows what is stored.
        let taken = self.take_lanes(keys::shared_budget(shard), &named, vec![None; lanes.len()], now, 0).await?;
        Ok(taken.map(|_| ()))
    }

    async fn book_shared(
        &self,
        shard: u32,
        line: Rate,
        earliest: Timestamp,
        ahead_seconds: i64,
    ) -> Result<Result<Timestamp, Limited>, StoreError> {
        let lanes = [(Lane::Line.name(), line)];
        let key = keys::shared_budget(shard);
        let taken = self.take_lanes(key, &lanes, vec![None], earliest, ahead_seconds * 1000).await?;
        Ok(taken.map(|before| limits::slot(before[0], line, earliest)))
    }

    async fn shut_shared(&self, shard: u32, tat: i64, now: Timestamp) -> Result<(), StoreError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_map(keys::shared_budget(shard))))
            .update_expression("SET #all = :tat, expires_at = :expires")
            .condition_expression("attribute_not_exists(#all) OR #all < :tat")
            .expression_attribute_names("#all", Lane::All.name())
            .expression_attribute_values(":tat", AttributeValue::N(tat.to_string()))
            .expression_attribute_values(":expires", AttributeValue::N((now.unix() + BUDGET_TTL_SECONDS).to_string()));
        // Already shut as long or longer: nothing to do.
        landed(update.send().await).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::BUDGET_TTL_SECONDS;
    use crate::domain::budget::{LINE_AHEAD_SECONDS, MAX_SHUT_SECONDS};

    #[test]
    fn a_budget_item_expires_only_after_every_lane_it_holds_is_level_again() {
        // The furthest a lane can be ahead of the write that set it: a place in line booked from
        // a shard shut for the longest Retry-After, plus a lane's own interval and burst.
        let longest_shut = MAX_SHUT_SECONDS as i64;
        let longest_burst_and_interval = 2 * 60 + 60;
        let furthest = longest_shut + LINE_AHEAD_SECONDS + longest_burst_and_interval;
        assert!(BUDGET_TTL_SECONDS > furthest, "{BUDGET_TTL_SECONDS} s against {furthest} s");
    }
}
