//! Never two posts on the service for one publication, under any timing: a model of the service's
//! two idempotency layers (publisher-zernio.md) driven by the real decisions
//! (`domain::publish::{next_step, is_ours, Sending::waits_in, Sending::given_up, follow_up_delay}`)
//! over (answer lost / late / in time) × (request-id window passed or not, key kept or not) ×
//! (webhook first or not), with the follow-ups' own back-off and any extra delay of the queue.

use proptest::prelude::*;
use shared::domain::post::{EntryStatus, PlatformReport, PostReport};
use shared::domain::publish::{self, Answer, Plan, Sender, Step, Target};
use shared::domain::{AccountId, Platform, PostId, PostState, ProjectId, ServicePostId, Timestamp};

/// How the route's own request ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FirstAnswer {
    InTime,
    /// The service answers after the route stopped waiting.
    Late,
    /// Taken, but the answer is lost (a gateway's 504).
    Lost,
}

/// One post on the model service.
struct ServicePost {
    id: ServicePostId,
    owner: (ProjectId, PostId, u32),
    content: String,
    created: i64,
    done: i64,
}

/// The service as publisher-zernio.md pins it: the request id for 300 s after its request ends,
/// the Idempotency-Key for 24 h (when `keeps_keys`), the content hash for 24 h.
struct Service {
    posts: Vec<ServicePost>,
    request_ids: Vec<(String, usize)>,
    keys: Vec<(String, usize, i64)>,
    keeps_keys: bool,
    duration: i64,
}

impl Service {
    fn report(&self, n: usize, at: i64) -> PostReport {
        let post = &self.posts[n];
        let live = at >= post.done;
        PostReport {
            service_post_id: post.id.clone(),
            generation: Some(post.owner.2),
            owner: Some((post.owner.0.clone(), post.owner.1.clone())),
            cancelled: false,
            published_at: None,
            scheduled_for: None,
            reported_at: Timestamp::from_unix(at),
            default_status: EntryStatus::Queued,
            platforms: vec![PlatformReport {
                url: live.then(|| "https://x.com/1".to_owned()),
                ..PlatformReport::bare(Platform::X, if live { EntryStatus::Published } else { EntryStatus::Queued })
            }],
        }
    }

    /// `POST /v1/posts` at `at` with this request id (also the key) for this publication.
    fn create(&mut self, at: i64, request_id: &str, owner: (ProjectId, PostId, u32), content: &str) -> Answer {
        if let Some((_, n)) = self.request_ids.iter().find(|(r, _)| r == request_id)
            && at <= self.posts[*n].done + 300
        {
            return Answer::Taken(self.report(*n, at));
        }
        if let Some((_, n, first)) = self.keys.iter().find(|(k, _, _)| k == request_id)
            && self.keeps_keys
            && at <= first + 24 * 3600
        {
            return if at < self.posts[*n].done {
                Answer::InFlight(Some(2))
            } else {
                Answer::Taken(self.report(*n, at))
            };
        }
        if let Some(same) = self.posts.iter().find(|p| p.content == content && at <= p.created + 24 * 3600) {
            return Answer::Duplicate(Some(same.id.clone()));
        }
        let n = self.posts.len();
        let id = ServicePostId::parse(format!("svc{n}")).unwrap();
        self.posts.push(ServicePost { id, owner, content: content.to_owned(), created: at, done: at + self.duration });
        self.request_ids.push((request_id.to_owned(), n));
        self.keys.push((request_id.to_owned(), n, at));
        Answer::Taken(self.report(n, at))
    }

    fn get(&self, id: &ServicePostId, at: i64) -> PostReport {
        let n = self.posts.iter().position(|p| &p.id == id).unwrap();
        self.report(n, at)
    }
}

#[derive(Debug, Clone)]
struct Timing {
    first: FirstAnswer,
    duration: i64,
    keeps_keys: bool,
    /// When a webhook brings the service's id (if it does): seconds after the post is done.
    webhook_after_done: Option<i64>,
    /// Extra seconds the queue holds each follow-up (a backlog, a throttle, an outage).
    queue_lag: i64,
    /// Another publication's post with the same content, made earlier (a genuine duplicate).
    genuine_duplicate: bool,
}

fn timing() -> impl Strategy<Value = Timing> {
    (
        prop_oneof![Just(FirstAnswer::InTime), Just(FirstAnswer::Late), Just(FirstAnswer::Lost)],
        1i64..600,
        any::<bool>(),
        prop::option::of(0i64..3600),
        prop_oneof![Just(0i64), 0i64..400, 0i64..40_000],
        any::<bool>(),
    )
        .prop_map(|(first, duration, keeps_keys, webhook_after_done, queue_lag, genuine_duplicate)| Timing {
            first,
            duration,
            keeps_keys,
            webhook_after_done,
            queue_lag,
            genuine_duplicate,
        })
}

/// Runs one publication to its end; returns the service and what the publication recorded.
fn run(t: &Timing) -> (Service, PostState, Option<Step>) {
    let (project, post) = (ProjectId::parse("proj").unwrap(), PostId::parse("post").unwrap());
    let mut service =
        Service { posts: vec![], request_ids: vec![], keys: vec![], keeps_keys: t.keeps_keys, duration: t.duration };
    if t.genuine_duplicate {
        let other = (project.clone(), PostId::parse("other").unwrap(), 1);
        service.create(-100, "other-request", other, "Hello");
    }
    let plan = Plan {
        generation: 1,
        targets: vec![Target { platform: Platform::X, account_id: AccountId::parse("acc").unwrap() }],
        request_id: "req-1".into(),
    };
    let sending = plan.sending(None, Timestamp::from_unix(0), true);
    let owner = (project.clone(), post.clone(), 1);
    let mut state = PostState::default();
    let record = |state: &mut PostState, report: &PostReport| {
        *state = state.join(&publish::evidence(&sending, report, state));
    };
    // The route's attempt at t = 0.
    let answer = service.create(0, &plan.request_id, owner.clone(), "Hello");
    let answer = match (t.first, answer) {
        (FirstAnswer::InTime, answer) => answer,
        (_, Answer::Taken(_)) => Answer::Unanswered(None),
        (_, other) => other,
    };
    let mut step = Some(publish::next_step(answer, Sender::Route));
    let mut now = 0;
    let mut attempt = 0;
    loop {
        match step.take() {
            Some(Step::Record(report)) => {
                record(&mut state, &report);
                return (service, state, None);
            }
            Some(Step::CheckExisting(id)) => {
                let found = service.get(&id, now);
                step = Some(if publish::is_ours(&found, &project, &post, 1) {
                    Step::Record(found)
                } else {
                    Step::Duplicate
                });
            }
            Some(Step::Later(after)) => {
                now += i64::try_from(publish::follow_up_delay(60, attempt, after)).unwrap() + t.queue_lag;
                attempt += 1;
                // A webhook may have brought the id meanwhile: the follow-up then has nothing to send.
                if let Some(after_done) = t.webhook_after_done
                    && let Some(ours) = service.posts.iter().position(|p| p.owner == owner)
                    && service.posts[ours].done + after_done <= now
                {
                    record(&mut state, &service.report(ours, service.posts[ours].done + after_done));
                }
                if !sending.waits_in(&state) {
                    return (service, state, None);
                }
                if sending.given_up(Timestamp::from_unix(now)) {
                    state = state.join(&sending.failed(publish::UNCONFIRMED));
                    return (service, state, None);
                }
                let answer = service.create(now, &plan.request_id, owner.clone(), "Hello");
                step = Some(publish::next_step(answer, Sender::FollowUp));
            }
            other => return (service, state, other),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn at_most_one_post_exists_for_a_publication_and_it_is_the_one_recorded(t in timing()) {
        let (service, state, refused) = run(&t);
        let ours: Vec<&ServicePost> = service.posts.iter().filter(|p| p.owner.1.as_str() == "post").collect();
        prop_assert!(ours.len() <= 1, "{} posts for one publication: {t:?}", ours.len());
        let recorded = state.entries.get(&Platform::X).and_then(|e| e.service_post_id.clone());
        match (ours.first(), t.genuine_duplicate) {
            // The route's request was taken: its post is the one recorded, never refused as a duplicate.
            (Some(post), _) => {
                prop_assert_eq!(recorded, Some(post.id.clone()), "{:?}", t);
                prop_assert!(refused.is_none());
            }
            // Another publication's post holds the content: refused, nothing adopted.
            (None, true) => {
                prop_assert_eq!(refused, Some(Step::Duplicate));
                prop_assert_eq!(recorded, None);
            }
            (None, false) => prop_assert!(false, "nothing was created: {t:?}"),
        }
    }
}

#[test]
fn a_lost_answer_after_both_windows_is_adopted_through_the_content_hash() {
    // GIVEN the answer was lost and the follow-up comes after the request id and the key are forgotten
    let t = Timing {
        first: FirstAnswer::Lost,
        duration: 30,
        keeps_keys: false,
        webhook_after_done: None,
        queue_lag: 3_600,
        genuine_duplicate: false,
    };
    // WHEN it runs THEN the 409 names our own post, which is adopted
    let (service, state, refused) = run(&t);
    assert_eq!((service.posts.len(), refused), (1, None));
    assert_eq!(state.entries[&Platform::X].service_post_id.as_ref().map(ServicePostId::as_str), Some("svc0"));
}
