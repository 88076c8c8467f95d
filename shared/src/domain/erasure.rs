//! Erasing a project (lifecycle.md, "Erase a project"): the seal, what it forbids, and which step
//! of the erasure comes next. Pure: the steps run on the retry queue, each idempotent, and read
//! what is left before deciding, so a crash between any two steps (or inside one) resumes and ends
//! the same.
//!
//! The seal is one item that stays: it holds the erasure's progress, and every write that would
//! create an item of the project is conditioned on its absence.

use serde::{Deserialize, Serialize};

use super::ids::AccountId;
use super::time::Timestamp;

/// An erasure none of whose steps ran for this long has lost its chain, and a reconciler pass
/// queues a step again. Longer than any wait a step queues itself after (SQS's 15 minutes at
/// most) and the retry queue's redeliveries, so a live chain is never doubled.
pub const STALLED_AFTER_SECONDS: i64 = 20 * 60;

/// Whether a reconciler pass resumes `erasure` at `now`, and the seal it records doing so (its
/// next look a stall's length later): none when it is finished or a step ran recently.
pub fn resume(erasure: &Erasure, now: Timestamp) -> Option<Erasure> {
    erasure.resume_at().filter(|at| *at <= now).map(|_| erasure.stepped(now))
}

/// Items deleted in one step: one transaction of deletes with the seal's count beside them (so
/// the count is exact whatever crashes), within DynamoDB's 100 actions a transaction.
pub const ITEMS_PER_STEP: usize = 99;

/// A project's erasure, as its seal holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Erasure {
    /// When the project was sealed (the DELETE's answer).
    pub since: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    /// Accounts disconnected on the service (each counted once, in the write that records it).
    #[serde(default)]
    pub accounts_disconnected: u64,
    /// Accounts of the live list noted for disconnecting and not yet recorded gone: a crash after
    /// their DELETE is resumed by asking again (a 404 is gone), so each is counted exactly once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disconnecting: Vec<AccountId>,
    /// Items deleted from the table (counted in the transaction that deletes them).
    #[serde(default)]
    pub items_deleted: u64,
    /// The service's profile is deleted (or was already gone).
    #[serde(default)]
    pub profile_deleted: bool,
    /// The change feed's `project.erased` record was written (it is deleted with the rest).
    #[serde(default)]
    pub announced: bool,
    /// When a step last ran (wrote the seal): a step that made progress, or one waiting on the
    /// service that says it is still alive. None: no step has run since the seal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stepped_at: Option<Timestamp>,
}

impl Erasure {
    /// A project sealed at `now`.
    pub fn begin(now: Timestamp) -> Erasure {
        Erasure {
            since: now,
            finished_at: None,
            accounts_disconnected: 0,
            disconnecting: Vec::new(),
            items_deleted: 0,
            profile_deleted: false,
            announced: false,
            stepped_at: None,
        }
    }

    /// The same erasure, as a step running at `now` records it.
    pub fn stepped(&self, now: Timestamp) -> Erasure {
        Erasure { stepped_at: Some(now), ..self.clone() }
    }

    /// When a reconciler pass resumes this erasure if no step has run by then: its chain of
    /// steps was lost (a step dead-lettered after the store failed it, a DELETE whose step was
    /// never queued). None once it is finished.
    pub fn resume_at(&self) -> Option<Timestamp> {
        match self.finished_at {
            Some(_) => None,
            None => Some(self.stepped_at.unwrap_or(self.since).plus_seconds(STALLED_AFTER_SECONDS)),
        }
    }

    /// Whether a step waiting on the service (it queues itself again later, not having moved the
    /// erasure) records that it is alive, so no pass takes the erasure for stalled: when the last
    /// record is a quarter of the way to stalled, so at most every few minutes.
    pub fn keep_alive_due(&self, now: Timestamp) -> bool {
        let last = self.stepped_at.unwrap_or(self.since);
        self.finished_at.is_none() && now >= last.plus_seconds(STALLED_AFTER_SECONDS / 4)
    }

    pub fn status(&self) -> &'static str {
        if self.finished_at.is_some() { "erased" } else { "erasing" }
    }
}

/// What a step read of what is left, before deciding. Publications being sent need no step of
/// their own: the seal ends them (a follow-up reads it first and stops).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Left {
    /// The accounts the service's live list still holds for the project's profile.
    pub live_accounts: Vec<AccountId>,
    /// The project has a profile on the service not yet deleted.
    pub profile: bool,
    /// Items of the project in the table besides the seal (at most a step's worth is read).
    pub items: usize,
}

/// The next step of an erasure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Note these accounts of the live list (not only our records) on the seal, to disconnect.
    Note(Vec<AccountId>),
    /// Disconnect these noted accounts on the service (200 or 404: gone), then record them gone
    /// and counted.
    Disconnect(Vec<AccountId>),
    /// Delete the service's profile (after its accounts, as the service requires).
    DeleteProfile,
    /// Delete up to `ITEMS_PER_STEP` items, counting them on the seal in the same transaction.
    DeleteItems,
    /// Write the change feed's one `project.erased` event (a record, itself deleted after).
    Announce,
    /// Nothing of the project is left but its seal: record the erasure's end.
    Finish,
    /// The erasure is over.
    Done,
}

/// Accounts disconnected in one step (each a call from the shared budget's user share).
pub const ACCOUNTS_PER_STEP: usize = 4;

/// The one decision of an erasure: in order, the accounts of the live list, the profile, the
/// items, one announcement (whose record is an item too), the end.
pub fn next_step(erasure: &Erasure, left: &Left) -> Step {
    if erasure.finished_at.is_some() {
        return Step::Done;
    }
    if !erasure.disconnecting.is_empty() {
        return Step::Disconnect(erasure.disconnecting.iter().take(ACCOUNTS_PER_STEP).cloned().collect());
    }
    if !left.live_accounts.is_empty() {
        return Step::Note(left.live_accounts.clone());
    }
    if left.profile && !erasure.profile_deleted {
        return Step::DeleteProfile;
    }
    if left.items > 0 {
        return Step::DeleteItems;
    }
    if !erasure.announced {
        return Step::Announce;
    }
    Step::Finish
}

/// What a seal forbids: every app route of the project but the erasure's status (410
/// `project_erased`), applying any webhook about it (`ignored`), and any write that would create
/// an item of it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// An app route other than `GET /projects/{projectId}/erasure`.
    Route,
    /// `GET /projects/{projectId}/erasure`.
    ErasureStatus,
    /// `DELETE /projects/{projectId}`: answered as it stands, never begun again.
    Erase,
    /// A webhook or its retry applied to the project.
    Webhook,
    /// A reconciler pass's work for the project.
    Reconcile,
}

/// Whether `action` may go on for a project whose seal is `seal` (none: not sealed).
pub fn allows(seal: Option<&Erasure>, action: Action) -> bool {
    seal.is_none() || matches!(action, Action::ErasureStatus | Action::Erase)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_unix(1_800_000_000 + s)
    }

    #[test]
    fn a_seal_forbids_every_route_but_its_status_and_every_webhook() {
        let seal = Erasure::begin(at(0));
        for action in [Action::Route, Action::Webhook, Action::Reconcile] {
            assert!(!allows(Some(&seal), action), "{action:?}");
            assert!(allows(None, action));
        }
        assert!(allows(Some(&seal), Action::ErasureStatus) && allows(Some(&seal), Action::Erase));
        assert_eq!(seal.status(), "erasing");
        assert_eq!(Erasure { finished_at: Some(at(9)), ..seal }.status(), "erased");
    }

    #[test]
    fn a_stalled_erasure_is_resumed_once_a_stall_long_and_a_living_one_never() {
        let sealed = Erasure::begin(at(0));
        assert_eq!(resume(&sealed, at(STALLED_AFTER_SECONDS - 1)), None, "its first step may still come");
        let resumed = resume(&sealed, at(STALLED_AFTER_SECONDS)).expect("no step for a stall's length");
        assert_eq!(resumed.stepped_at, Some(at(STALLED_AFTER_SECONDS)));
        assert_eq!(resume(&resumed, at(STALLED_AFTER_SECONDS + 60)), None, "not again before another stall");
        // A step waiting on the service keeps it alive every few minutes: never stalled.
        let mut waiting = sealed.stepped(at(10));
        for minute in 1..120 {
            let now = at(10 + minute * 60);
            assert_eq!(resume(&waiting, now), None, "minute {minute}");
            if waiting.keep_alive_due(now) {
                waiting = waiting.stepped(now);
            }
        }
        assert!(!sealed.keep_alive_due(at(STALLED_AFTER_SECONDS / 4 - 1)));
        let finished = Erasure { finished_at: Some(at(5)), ..sealed };
        assert_eq!((finished.resume_at(), resume(&finished, at(1_000_000))), (None, None));
        assert!(!finished.keep_alive_due(at(1_000_000)));
    }

    #[test]
    fn the_steps_come_in_order() {
        let e = Erasure::begin(at(0));
        let a = |n: &str| AccountId::parse(n).unwrap();
        let no_sending = Left { live_accounts: vec![a("x")], profile: true, items: 5 };
        assert_eq!(next_step(&e, &no_sending), Step::Note(vec![a("x")]));
        let noted = Erasure { disconnecting: vec![a("x")], ..e.clone() };
        assert_eq!(next_step(&noted, &no_sending), Step::Disconnect(vec![a("x")]));
        let no_accounts = Left { live_accounts: vec![], ..no_sending };
        assert_eq!(next_step(&e, &no_accounts), Step::DeleteProfile);
        let gone = Erasure { profile_deleted: true, ..e.clone() };
        assert_eq!(next_step(&gone, &no_accounts), Step::DeleteItems);
        assert_eq!(next_step(&gone, &Left::default()), Step::Announce);
        let announced = Erasure { announced: true, ..gone };
        assert_eq!(next_step(&announced, &Left { items: 1, ..Left::default() }), Step::DeleteItems);
        assert_eq!(next_step(&announced, &Left::default()), Step::Finish);
        let finished = Erasure { finished_at: Some(at(5)), ..announced };
        assert_eq!(next_step(&finished, &Left { items: 3, ..Left::default() }), Step::Done);
    }

    /// A model of what an erasure meets: the service's accounts and profile, the table's items,
    /// publications being sent; each step either lands whole or (a crash) not at all, and the
    /// seal's record of it lands with it or not (never half).
    #[derive(Debug, Clone)]
    struct World {
        accounts: Vec<AccountId>,
        profile: bool,
        items: usize,
        seal: Erasure,
        calls: usize,
        announcements: usize,
    }

    impl World {
        fn left(&self) -> Left {
            Left { live_accounts: self.accounts.clone(), profile: self.profile, items: self.items.min(ITEMS_PER_STEP) }
        }

        /// One step; `crash_after_effect`: the service or table changed, the seal's record did
        /// not (for a table step both are one transaction, so nothing changed at all).
        fn run(&mut self, step: &Step, crash_after_effect: bool) {
            match step {
                Step::Note(_) if crash_after_effect => {}
                Step::Note(accounts) => self.seal.disconnecting = accounts.clone(),
                Step::Disconnect(accounts) => {
                    for account in accounts {
                        self.calls += 1;
                        self.accounts.retain(|a| a != account);
                    }
                    if !crash_after_effect {
                        self.seal.disconnecting.retain(|a| !accounts.contains(a));
                        self.seal.accounts_disconnected += accounts.len() as u64;
                    }
                }
                Step::DeleteProfile => {
                    self.calls += 1;
                    self.profile = false;
                    if !crash_after_effect {
                        self.seal.profile_deleted = true;
                    }
                }
                Step::DeleteItems if crash_after_effect => {}
                Step::DeleteItems => {
                    let n = self.items.min(ITEMS_PER_STEP);
                    self.items -= n;
                    self.seal.items_deleted += n as u64;
                }
                // The record and the seal's mark are one transaction.
                Step::Announce if crash_after_effect => {}
                Step::Announce => {
                    self.announcements += 1;
                    self.items += 1;
                    self.seal.announced = true;
                }
                Step::Finish if crash_after_effect => {}
                Step::Finish => self.seal.finished_at = Some(at(100)),
                Step::Done => {}
            }
        }
    }

    proptest! {
        /// Whatever is left to erase and wherever the steps crash, the erasure ends erased, with
        /// nothing left, every item counted exactly once, one announcement, and the calls to the
        /// service bounded by what there was to delete plus the crashes.
        #[test]
        fn an_erasure_crashing_anywhere_resumes_and_ends_the_same(
            accounts in 0usize..9,
            profile in any::<bool>(),
            items in 0usize..1_000,
            crashes in prop::collection::vec(any::<bool>(), 0..200),
        ) {
            let accounts: Vec<AccountId> = (0..accounts).map(|n| AccountId::parse(format!("a{n}")).unwrap()).collect();
            let mut world = World {
                accounts: accounts.clone(), profile, items,
                seal: Erasure::begin(at(0)), calls: 0, announcements: 0,
            };
            let mut crashes = crashes.into_iter();
            let mut crashed = 0;
            for _ in 0..10_000 {
                let step = next_step(&world.seal, &world.left());
                if step == Step::Done {
                    break;
                }
                let crash = crashes.next().unwrap_or(false);
                crashed += usize::from(crash);
                world.run(&step, crash);
            }
            prop_assert_eq!(world.seal.status(), "erased");
            prop_assert!(world.accounts.is_empty() && !world.profile && world.items == 0);
            prop_assert_eq!(world.seal.items_deleted, items as u64 + 1, "every item counted once, the announcement's too");
            prop_assert_eq!(world.seal.accounts_disconnected, accounts.len() as u64, "every account counted once");
            prop_assert_eq!(world.announcements, 1);
            let most = accounts.len() + usize::from(profile) + crashed * ACCOUNTS_PER_STEP.max(1);
            prop_assert!(world.calls <= most, "{} calls for {} to delete", world.calls, most);
        }
    }
}
