//! The composition root: how each handler is assembled from the adapters, once per process. The
//! Lambda binaries (`from_env`, reading configuration and failing with the name of anything
//! missing) and the dev gateway (with its local adapters) both build handlers here.

use crate::adapters::aws;
use crate::adapters::dynamo::DynamoStore;
use crate::adapters::eventbridge::EventBridgeFeed;
use crate::adapters::sqs::SqsRetryQueue;
use crate::adapters::zernio::ZernioClient;
use crate::config::Limits;
use crate::domain::budget::{Class, Plan};
use crate::domain::event::EventParser;
use crate::domain::healing::Settings;
use crate::domain::history::Retention;
use crate::handlers::budget::{Prepaid, SharedBudget};
use crate::handlers::change_feed::ChangeFeed;
use crate::handlers::connections::{Connect, Disconnect, ListConnections, Refresh};
use crate::handlers::erasure::{Erase, EraseSteps, ErasureStatus};
use crate::handlers::history::{ConnectionHistory, PostHistory};
use crate::handlers::posts::{ManualDelete, Publish, ReadPost, Sync};
use crate::handlers::publishing::{PublishFollowUp, Timing};
use crate::handlers::reconciler::Reconciler;
use crate::handlers::retry::{FollowUps, RetryWorker};
use crate::handlers::webhook::Webhook;
use crate::ports::{FollowUp, QueueReader, SystemClock};
use crate::signature::WebhookKeys;

/// The publishing service's webhook format (Zernio).
pub const WEBHOOK_FORMAT: EventParser = crate::adapters::zernio::webhook::parse_event;
/// The retry queue's message format (SQS).
pub const QUEUE_FORMAT: QueueReader = crate::adapters::sqs::queued;

/// The service client of a function whose calls are of `class`: every request takes from the
/// shared budget first.
pub fn gated(publisher: ZernioClient, store: &DynamoStore, plan: Plan, class: Class) -> ZernioClient {
    publisher.with_gate(std::sync::Arc::new(SharedBudget { store: store.clone(), clock: SystemClock, plan, class }))
}

/// The retry worker's follow-ups, over DynamoDB, the service and the retry queue.
pub type LocalFollowUps = PublishFollowUp<DynamoStore, ZernioClient, SqsRetryQueue, SystemClock>;

/// The jobs the retry worker runs besides queued events: publish follow-ups, and the steps of
/// erasures (whose calls take from the shared budget's user share).
pub struct WorkerJobs {
    pub follow_ups: LocalFollowUps,
    pub erasures: EraseSteps<DynamoStore, ZernioClient, SqsRetryQueue, SystemClock>,
}

impl FollowUps for WorkerJobs {
    async fn run(&self, follow_up: &FollowUp) -> Result<(), String> {
        self.follow_ups.handle(follow_up).await
    }

    async fn erase(&self, project: &crate::domain::ProjectId) -> Result<(), String> {
        self.erasures.step(project).await
    }
}

/// Every handler the retry worker hosts.
pub type Worker = RetryWorker<DynamoStore, SystemClock, WorkerJobs>;

pub fn webhook(
    store: DynamoStore,
    queue: SqsRetryQueue,
    secrets: WebhookKeys,
) -> Webhook<DynamoStore, SqsRetryQueue, SystemClock> {
    Webhook { store, queue, clock: SystemClock, secrets, parse: WEBHOOK_FORMAT }
}

/// `publisher` sends publications; `reads`, gated as a user's reads, carries the erasures' calls.
pub fn retry_worker(
    store: DynamoStore,
    (publisher, reads): (ZernioClient, ZernioClient),
    queue: SqsRetryQueue,
    timing: Timing,
) -> Worker {
    let erasures = EraseSteps { store: store.clone(), publisher: reads, queue: queue.clone(), clock: SystemClock };
    let follow_ups = PublishFollowUp { store: store.clone(), publisher, queue, clock: SystemClock, timing };
    let jobs = WorkerJobs { follow_ups, erasures };
    RetryWorker { store, clock: SystemClock, parse: WEBHOOK_FORMAT, read: QUEUE_FORMAT, follow_ups: jobs }
}

pub fn erase(store: DynamoStore, queue: SqsRetryQueue) -> Erase<DynamoStore, SqsRetryQueue, SystemClock> {
    Erase { store, queue, clock: SystemClock }
}

pub fn erasure_status(store: DynamoStore) -> ErasureStatus<DynamoStore> {
    ErasureStatus { store }
}

pub fn list_connections(store: DynamoStore, limits: &Limits) -> ListConnections<DynamoStore, SystemClock> {
    ListConnections { store, clock: SystemClock, limits: *limits }
}

pub fn refresh(
    store: DynamoStore,
    publisher: ZernioClient,
    limits: &Limits,
) -> Refresh<DynamoStore, ZernioClient, SystemClock> {
    Refresh { store, publisher, clock: SystemClock, limits: *limits }
}

pub fn connect(
    store: DynamoStore,
    publisher: ZernioClient,
    limits: &Limits,
    redirect_origins: Vec<String>,
) -> Connect<DynamoStore, ZernioClient, SystemClock> {
    Connect { store, publisher, clock: SystemClock, limits: *limits, redirect_origins }
}

pub fn disconnect(
    store: DynamoStore,
    publisher: ZernioClient,
    limits: &Limits,
) -> Disconnect<DynamoStore, ZernioClient, SystemClock> {
    Disconnect { store, publisher, clock: SystemClock, limits: *limits }
}

pub fn publish(
    store: DynamoStore,
    publisher: ZernioClient,
    queue: SqsRetryQueue,
    limits: &Limits,
    timing: Timing,
) -> Publish<DynamoStore, ZernioClient, SqsRetryQueue, SystemClock> {
    Publish { store, publisher, queue, clock: SystemClock, limits: *limits, timing }
}

pub fn read_post(store: DynamoStore, limits: &Limits) -> ReadPost<DynamoStore, SystemClock> {
    ReadPost { store, clock: SystemClock, limits: *limits }
}

pub fn sync(
    store: DynamoStore,
    publisher: ZernioClient,
    limits: &Limits,
) -> Sync<DynamoStore, ZernioClient, SystemClock> {
    Sync { store, publisher, clock: SystemClock, limits: *limits }
}

pub fn manual_delete(store: DynamoStore, limits: &Limits) -> ManualDelete<DynamoStore, SystemClock> {
    ManualDelete { store, clock: SystemClock, limits: *limits }
}

pub fn post_history(
    store: DynamoStore,
    limits: &Limits,
    retention: Retention,
) -> PostHistory<DynamoStore, SystemClock> {
    PostHistory { store, clock: SystemClock, limits: *limits, retention }
}

pub fn connection_history(
    store: DynamoStore,
    limits: &Limits,
    retention: Retention,
) -> ConnectionHistory<DynamoStore, SystemClock> {
    ConnectionHistory { store, clock: SystemClock, limits: *limits, retention }
}

pub fn change_feed(feed: EventBridgeFeed) -> ChangeFeed<EventBridgeFeed> {
    ChangeFeed { publisher: feed, read: crate::adapters::dynamo::history::feed_event }
}

pub fn reconciler(
    store: DynamoStore,
    publisher: ZernioClient,
    queue: SqsRetryQueue,
    settings: Settings,
) -> Reconciler<DynamoStore, ZernioClient, SqsRetryQueue, SystemClock> {
    // One operation at a time: its calls are taken from the budget before its first.
    let budget = std::sync::Arc::new(Prepaid::new(publisher.gate()));
    let publisher = publisher.with_gate(budget.clone());
    Reconciler { store, publisher, queue, clock: SystemClock, settings, budget, subscription: None }
}

/// The same handlers, from a Lambda function's environment.
pub mod from_env {
    use super::*;
    use crate::config::{self, ConfigError};

    async fn sdk() -> aws_config::SdkConfig {
        aws::sdk_config().await
    }

    fn store(sdk: &aws_config::SdkConfig) -> Result<DynamoStore, ConfigError> {
        let store = DynamoStore::new(aws::dynamodb_client(sdk, &Default::default()), config::table_name()?);
        Ok(store.with_history_retention(config::history_retention()?))
    }

    pub async fn webhook() -> Result<Webhook<DynamoStore, SqsRetryQueue, SystemClock>, ConfigError> {
        let sdk = sdk().await;
        Ok(super::webhook(store(&sdk)?, queue(&sdk)?, config::webhook_keys(&sdk).await?))
    }

    /// The service client, its calls of `class` taken from the shared budget.
    async fn publisher(
        sdk: &aws_config::SdkConfig,
        store: &DynamoStore,
        class: Class,
    ) -> Result<ZernioClient, ConfigError> {
        Ok(super::gated(config::publisher(sdk).await?, store, config::budget_plan()?, class))
    }

    fn queue(sdk: &aws_config::SdkConfig) -> Result<SqsRetryQueue, ConfigError> {
        Ok(SqsRetryQueue::new(aws::sqs_client(sdk, &Default::default()), config::retry_queue_url()?))
    }

    pub async fn retry_worker() -> Result<Worker, ConfigError> {
        let sdk = sdk().await;
        let store = store(&sdk)?;
        let sends = publisher(&sdk, &store, Class::Publish).await?;
        let reads = super::gated(sends.clone(), &store, config::budget_plan()?, Class::Reads);
        Ok(super::retry_worker(store, (sends, reads), queue(&sdk)?, config::publish_timing()?))
    }

    pub async fn erase() -> Result<Erase<DynamoStore, SqsRetryQueue, SystemClock>, ConfigError> {
        let sdk = sdk().await;
        Ok(super::erase(store(&sdk)?, queue(&sdk)?))
    }

    pub async fn erasure_status() -> Result<ErasureStatus<DynamoStore>, ConfigError> {
        Ok(super::erasure_status(store(&sdk().await)?))
    }

    pub async fn list_connections() -> Result<ListConnections<DynamoStore, SystemClock>, ConfigError> {
        Ok(super::list_connections(store(&sdk().await)?, &config::limits()?))
    }

    pub async fn refresh() -> Result<Refresh<DynamoStore, ZernioClient, SystemClock>, ConfigError> {
        let sdk = sdk().await;
        let store = store(&sdk)?;
        let publisher = publisher(&sdk, &store, Class::Reads).await?;
        Ok(super::refresh(store, publisher, &config::limits()?))
    }

    pub async fn connect() -> Result<Connect<DynamoStore, ZernioClient, SystemClock>, ConfigError> {
        let sdk = sdk().await;
        let store = store(&sdk)?;
        let publisher = publisher(&sdk, &store, Class::Reads).await?;
        Ok(super::connect(store, publisher, &config::limits()?, config::redirect_origins()?))
    }

    pub async fn disconnect() -> Result<Disconnect<DynamoStore, ZernioClient, SystemClock>, ConfigError> {
        let sdk = sdk().await;
        let store = store(&sdk)?;
        let publisher = publisher(&sdk, &store, Class::Reads).await?;
        Ok(super::disconnect(store, publisher, &config::limits()?))
    }

    pub async fn publish() -> Result<Publish<DynamoStore, ZernioClient, SqsRetryQueue, SystemClock>, ConfigError> {
        let sdk = sdk().await;
        let store = store(&sdk)?;
        let publisher = publisher(&sdk, &store, Class::Publish).await?;
        Ok(super::publish(store, publisher, queue(&sdk)?, &config::limits()?, config::publish_timing()?))
    }

    pub async fn read_post() -> Result<ReadPost<DynamoStore, SystemClock>, ConfigError> {
        Ok(super::read_post(store(&sdk().await)?, &config::limits()?))
    }

    pub async fn sync() -> Result<Sync<DynamoStore, ZernioClient, SystemClock>, ConfigError> {
        let sdk = sdk().await;
        let store = store(&sdk)?;
        let publisher = publisher(&sdk, &store, Class::Reads).await?;
        Ok(super::sync(store, publisher, &config::limits()?))
    }

    pub async fn manual_delete() -> Result<ManualDelete<DynamoStore, SystemClock>, ConfigError> {
        Ok(super::manual_delete(store(&sdk().await)?, &config::limits()?))
    }

    pub async fn post_history() -> Result<PostHistory<DynamoStore, SystemClock>, ConfigError> {
        Ok(super::post_history(store(&sdk().await)?, &config::limits()?, config::history_retention()?))
    }

    pub async fn connection_history() -> Result<ConnectionHistory<DynamoStore, SystemClock>, ConfigError> {
        Ok(super::connection_history(store(&sdk().await)?, &config::limits()?, config::history_retention()?))
    }

    pub async fn change_feed() -> Result<ChangeFeed<EventBridgeFeed>, ConfigError> {
        let sdk = sdk().await;
        let client = aws::eventbridge_client(&sdk, &Default::default());
        Ok(super::change_feed(EventBridgeFeed::new(client, config::required("EVENT_BUS_NAME")?)))
    }

    pub async fn reconciler() -> Result<Reconciler<DynamoStore, ZernioClient, SqsRetryQueue, SystemClock>, ConfigError>
    {
        let sdk = sdk().await;
        let store = store(&sdk)?;
        let publisher = publisher(&sdk, &store, Class::Reconciler).await?;
        let reconciler = super::reconciler(store, publisher, queue(&sdk)?, config::healing()?);
        Ok(reconciler.watching(config::subscription_watch()?))
    }
}
