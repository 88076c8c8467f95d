//! The dev gateway: on one machine, it plays API Gateway, the webhook's function URL and the SQS
//! event source mapping, handing every request to the same handler the Lambda binaries run.

pub mod auth;
pub mod bridge;
pub mod feed;
pub mod infra;
pub mod local_dynamo;
pub mod poller;
pub mod standalone;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use aws_config::{Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use axum::Router;
use axum::body::Body as AxumBody;
use axum::extract::Path;
use axum::http::Request as HttpRequest;
use axum::routing::{any, delete, get, post};
use shared::adapters::aws::{self, ClientOptions, as_function};
use shared::adapters::dynamo::DynamoStore;
use shared::adapters::sqs::SqsRetryQueue;
use shared::adapters::zernio::ZernioClient;
use shared::domain::budget::Class;
use shared::handlers::connections::{Connect, Disconnect, ListConnections, Refresh};
use shared::handlers::http;
use shared::handlers::posts::{ManualDelete, Publish, ReadPost, Sync};
use shared::handlers::webhook::Webhook;
use shared::ports::SystemClock;
use shared::signature::WebhookSecrets;
use shared::wiring;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use poller::PollSettings;

/// SDK settings for the local stand-ins: fixed credentials and region, the Lambda timeouts.
pub async fn local_sdk_config() -> SdkConfig {
    aws::sdk_loader()
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("local", "local", None, None, "local-stack"))
        .load()
        .await
}

/// Where the gateway's parts are.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub listen: SocketAddr,
    pub dynamodb: ClientOptions,
    pub sqs: ClientOptions,
    pub table: String,
    pub retry_queue_url: String,
    pub secrets: WebhookSecrets,
    /// Runs the retry-queue poller when set.
    pub poll: Option<PollSettings>,
    pub publisher_base_url: String,
    pub publisher_api_key: String,
    /// What app tokens must show: the issuer (whose JWKS has the keys) and the audience.
    pub jwt: auth::Expect,
    /// Each project's budgets of calls to the publishing service and of post writes.
    pub limits: shared::config::Limits,
    /// How long history is kept and shown (`HISTORY_RETENTION_DAYS`).
    pub history_retention: shared::domain::history::Retention,
    /// The origins a Connect's `redirect_url` may go to.
    pub redirect_origins: Vec<String>,
    /// The shared budget of the API key every call to the service takes from.
    pub budget: shared::domain::budget::Plan,
    /// How long a publish waits for the service, and the first follow-up's delay.
    pub publish_timing: shared::handlers::publishing::Timing,
    /// Runs a reconciler pass this often (the schedule's stand-in), when set.
    pub reconcile: Option<Reconcile>,
    /// Reads the table's stream into the change feed, publishing to this EventBridge bus (moto,
    /// at the SQS endpoint), when set.
    pub feed: Option<String>,
    /// Where the change feed reads the table's stream, when not at `dynamodb` (which may be a
    /// fault proxy: the stream is DynamoDB Streams, not the table).
    pub streams: Option<ClientOptions>,
}

/// The reconciler's local schedule: a pass every `interval`, with these settings, watching the
/// webhook subscription when told where our endpoint is.
#[derive(Debug, Clone)]
pub struct Reconcile {
    pub interval: std::time::Duration,
    pub settings: shared::domain::healing::Settings,
    pub subscription: Option<shared::domain::subscription::WatchSettings>,
}

type LocalWebhook = Webhook<DynamoStore, SqsRetryQueue, SystemClock>;

/// One handler per route, each assembled by the same composition root as the Lambda functions.
struct AppState {
    webhook: LocalWebhook,
    list_connections: ListConnections<DynamoStore, shared::ports::SystemClock>,
    refresh: Refresh<DynamoStore, ZernioClient, SystemClock>,
    connect: Connect<DynamoStore, ZernioClient, SystemClock>,
    disconnect: Disconnect<DynamoStore, ZernioClient, SystemClock>,
    erase: shared::handlers::erasure::Erase<DynamoStore, SqsRetryQueue, SystemClock>,
    erasure_status: shared::handlers::erasure::ErasureStatus<DynamoStore>,
    publish: Publish<DynamoStore, ZernioClient, SqsRetryQueue, SystemClock>,
    read_post: ReadPost<DynamoStore, SystemClock>,
    sync: Sync<DynamoStore, ZernioClient, SystemClock>,
    manual_delete: ManualDelete<DynamoStore, SystemClock>,
    post_history: shared::handlers::history::PostHistory<DynamoStore, SystemClock>,
    connection_history: shared::handlers::history::ConnectionHistory<DynamoStore, SystemClock>,
    authorizer: auth::Authorizer,
}

/// The app routes, as API Gateway's route keys name them.
#[derive(Debug, Clone, Copy)]
enum AppRoute {
    ListConnections,
    RefreshConnections,
    Connect,
    Disconnect,
    Erase,
    ErasureStatus,
    Publish,
    ReadPost,
    Sync,
    ManualDelete,
    PostHistory,
    ConnectionHistory,
}

impl AppRoute {
    /// The function (its folder under `functions/`) that serves the route in AWS.
    fn function(self) -> &'static str {
        match self {
            AppRoute::ListConnections => "list-connections",
            AppRoute::RefreshConnections => "refresh-connections",
            AppRoute::Connect => "connect",
            AppRoute::Disconnect => "disconnect",
            AppRoute::Erase => "erase-project",
            AppRoute::ErasureStatus => "project-erasure",
            AppRoute::Publish => "publish-post",
            AppRoute::ReadPost => "read-post",
            AppRoute::Sync => "sync-post",
            AppRoute::ManualDelete => "manual-delete",
            AppRoute::PostHistory => "post-history",
            AppRoute::ConnectionHistory => "connection-history",
        }
    }

    fn key(self) -> &'static str {
        match self {
            AppRoute::ListConnections => "GET /projects/{projectId}/connections",
            AppRoute::RefreshConnections => "POST /projects/{projectId}/connections/refresh",
            AppRoute::Connect => "POST /projects/{projectId}/connections/{platform}/connect",
            AppRoute::Disconnect => "POST /projects/{projectId}/connections/{platform}/disconnect",
            AppRoute::Erase => "DELETE /projects/{projectId}",
            AppRoute::ErasureStatus => "GET /projects/{projectId}/erasure",
            AppRoute::Publish => "POST /projects/{projectId}/posts",
            AppRoute::ReadPost => "GET /projects/{projectId}/posts/{postId}",
            AppRoute::Sync => "POST /projects/{projectId}/posts/{postId}/sync",
            AppRoute::ManualDelete => "POST /projects/{projectId}/posts/{postId}/platforms/{platform}/manual-delete",
            AppRoute::PostHistory => "GET /projects/{projectId}/posts/{postId}/history",
            AppRoute::ConnectionHistory => "GET /projects/{projectId}/connections/history",
        }
    }
}

/// A running gateway; dropping it does not stop it, `shutdown` does.
pub struct Gateway {
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Gateway {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn start(config: GatewayConfig) -> std::io::Result<Gateway> {
        let sdk = local_sdk_config().await;
        let dynamodb = aws::dynamodb_client(&sdk, &config.dynamodb);
        let sqs = aws::sqs_client(&sdk, &config.sqs);
        let publisher =
            ZernioClient::new(&config.publisher_base_url, &config.publisher_api_key).map_err(std::io::Error::other)?;
        let store = DynamoStore::new(dynamodb.clone(), &config.table).with_history_retention(config.history_retention);
        let gated = |class| wiring::gated(publisher.clone(), &store, config.budget, class);
        let (publishes, reads) = (gated(Class::Publish), gated(Class::Reads));
        let state = Arc::new(AppState {
            webhook: wiring::webhook(
                store.clone(),
                SqsRetryQueue::new(sqs.clone(), &config.retry_queue_url),
                config.secrets.clone().into(),
            ),
            list_connections: wiring::list_connections(store.clone(), &config.limits),
            refresh: wiring::refresh(store.clone(), reads.clone(), &config.limits),
            connect: wiring::connect(store.clone(), reads.clone(), &config.limits, config.redirect_origins.clone()),
            disconnect: wiring::disconnect(store.clone(), reads.clone(), &config.limits),
            erase: wiring::erase(store.clone(), SqsRetryQueue::new(sqs.clone(), &config.retry_queue_url)),
            erasure_status: wiring::erasure_status(store.clone()),
            publish: wiring::publish(
                store.clone(),
                publishes.clone(),
                SqsRetryQueue::new(sqs.clone(), &config.retry_queue_url),
                &config.limits,
                config.publish_timing,
            ),
            read_post: wiring::read_post(store.clone(), &config.limits),
            sync: wiring::sync(store.clone(), reads.clone(), &config.limits),
            manual_delete: wiring::manual_delete(store.clone(), &config.limits),
            post_history: wiring::post_history(store.clone(), &config.limits, config.history_retention),
            connection_history: wiring::connection_history(store.clone(), &config.limits, config.history_retention),
            authorizer: auth::Authorizer::new(config.jwt.clone()),
        });
        let app_route = |route: AppRoute| {
            let state = state.clone();
            move |Path(params): Path<HashMap<String, String>>, request: HttpRequest<AxumBody>| async move {
                app(state, route, params, request).await
            }
        };
        let app = Router::new()
            .route("/healthz", get(|| async { http_json_ok() }))
            .route(
                "/webhooks/zernio",
                any({
                    let state = state.clone();
                    move |request: HttpRequest<AxumBody>| async move { webhook(state, request).await }
                }),
            )
            .route("/projects/{projectId}", delete(app_route(AppRoute::Erase)))
            .route("/projects/{projectId}/erasure", get(app_route(AppRoute::ErasureStatus)))
            .route("/projects/{projectId}/connections", get(app_route(AppRoute::ListConnections)))
            .route("/projects/{projectId}/connections/history", get(app_route(AppRoute::ConnectionHistory)))
            .route("/projects/{projectId}/connections/refresh", post(app_route(AppRoute::RefreshConnections)))
            .route("/projects/{projectId}/connections/{platform}/connect", post(app_route(AppRoute::Connect)))
            .route("/projects/{projectId}/connections/{platform}/disconnect", post(app_route(AppRoute::Disconnect)))
            .route("/projects/{projectId}/posts", post(app_route(AppRoute::Publish)))
            .route("/projects/{projectId}/posts/{postId}", get(app_route(AppRoute::ReadPost)))
            .route("/projects/{projectId}/posts/{postId}/sync", post(app_route(AppRoute::Sync)))
            .route("/projects/{projectId}/posts/{postId}/history", get(app_route(AppRoute::PostHistory)))
            .route(
                "/projects/{projectId}/posts/{postId}/platforms/{platform}/manual-delete",
                post(app_route(AppRoute::ManualDelete)),
            )
            .fallback(|| async { bridge::from_lambda(http::error(404, "not_found", "No such route.")) });
        let listener = tokio::net::TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        let mut server_stop = stopped.clone();
        tasks.push(tokio::spawn(async move {
            let shutdown = async move {
                let _ = server_stop.changed().await;
            };
            if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
                tracing::error!(error = %e, "gateway stopped");
            }
        }));
        if let Some(settings) = config.poll {
            // A long-polling receive outlasts the request-path timeouts.
            let long_poll = ClientOptions {
                timeouts: Some(
                    aws_config::timeout::TimeoutConfig::builder()
                        .connect_timeout(std::time::Duration::from_secs(1))
                        .operation_attempt_timeout(settings.wait + std::time::Duration::from_secs(5))
                        .build(),
                ),
                ..config.sqs.clone()
            };
            let sqs = aws::sqs_client(&sdk, &long_poll);
            let queue = SqsRetryQueue::new(sqs.clone(), &config.retry_queue_url);
            let worker =
                wiring::retry_worker(store.clone(), (publishes.clone(), reads.clone()), queue, config.publish_timing);
            let stopped = stopped.clone();
            tasks.push(tokio::spawn(poller::run(sqs, config.retry_queue_url.clone(), worker, settings, stopped)));
        }
        if let Some(bus) = &config.feed {
            let events = aws::eventbridge_client(&sdk, &config.sqs);
            let table = config.streams.as_ref().unwrap_or(&config.dynamodb);
            let streams = {
                let mut builder = aws_sdk_dynamodbstreams::config::Builder::from(&sdk);
                if let Some(endpoint) = &table.endpoint {
                    builder = builder.endpoint_url(endpoint);
                }
                aws_sdk_dynamodbstreams::Client::from_conf(builder.build())
            };
            let described = aws::dynamodb_client(&sdk, table);
            let arn = infra::stream_arn(&described, &config.table).await.map_err(std::io::Error::other)?;
            let feed = wiring::change_feed(shared::adapters::eventbridge::EventBridgeFeed::new(events, bus));
            tasks.push(tokio::spawn(feed::run(streams, arn, feed, stopped.clone())));
        }
        if let Some(reconcile) = config.reconcile {
            let queue = SqsRetryQueue::new(sqs.clone(), &config.retry_queue_url);
            let reconciler = wiring::reconciler(store.clone(), gated(Class::Reconciler), queue, reconcile.settings)
                .watching(reconcile.subscription);
            tasks.push(tokio::spawn(schedule(reconciler, reconcile.interval, stopped)));
        }
        Ok(Gateway { addr, stop, tasks })
    }

    /// Stops the server and the poller and waits for them.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// EventBridge Scheduler's stand-in: the same reconciler handler, a pass every `interval`, each
/// given the time until the next one (at most a minute) as its budget.
async fn schedule(
    reconciler: shared::handlers::reconciler::Reconciler<DynamoStore, ZernioClient, SqsRetryQueue, SystemClock>,
    interval: std::time::Duration,
    mut stopped: watch::Receiver<bool>,
) {
    let budget = interval.min(std::time::Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = stopped.changed() => return,
            () = tokio::time::sleep(interval) => {}
        }
        if let Err(e) = as_function("reconciler", reconciler.pass(budget)).await {
            tracing::warn!(error = %e, "reconciler pass failed");
        }
    }
}

fn http_json_ok() -> axum::response::Response {
    bridge::from_lambda(http::alive())
}

async fn webhook(state: Arc<AppState>, request: HttpRequest<AxumBody>) -> axum::response::Response {
    let route = bridge::RouteContext { route_key: "$default".into(), ..Default::default() };
    match bridge::to_lambda(request, route).await {
        Ok(request) => bridge::from_lambda(as_function("webhook", state.webhook.handle(request)).await),
        Err(e) => bridge::from_lambda(e.response()),
    }
}

async fn app(
    state: Arc<AppState>,
    route: AppRoute,
    params: HashMap<String, String>,
    request: HttpRequest<AxumBody>,
) -> axum::response::Response {
    let claims = match state.authorizer.verify(request.headers()).await {
        Ok(claims) => claims,
        Err(why) => return unauthorized(route, &why),
    };
    let context =
        bridge::RouteContext { route_key: route.key().into(), path_parameters: params, jwt_claims: Some(claims) };
    let request = match bridge::to_lambda(request, context).await {
        Ok(request) => request,
        Err(e) => return bridge::from_lambda(e.response()),
    };
    let response = as_function(route.function(), async {
        match route {
            AppRoute::ListConnections => state.list_connections.handle(request).await,
            AppRoute::RefreshConnections => state.refresh.handle(request).await,
            AppRoute::Connect => state.connect.handle(request).await,
            AppRoute::Disconnect => state.disconnect.handle(request).await,
            AppRoute::Erase => state.erase.handle(request).await,
            AppRoute::ErasureStatus => state.erasure_status.handle(request).await,
            AppRoute::Publish => state.publish.handle(request).await,
            AppRoute::ReadPost => state.read_post.handle(request).await,
            AppRoute::Sync => state.sync.handle(request).await,
            AppRoute::ManualDelete => state.manual_delete.handle(request).await,
            AppRoute::PostHistory => state.post_history.handle(request).await,
            AppRoute::ConnectionHistory => state.connection_history.handle(request).await,
        }
    })
    .await;
    bridge::from_lambda(response)
}

/// API Gateway answers a token it refuses itself, with its own body; the local one also says why
/// in its log (never the token).
fn unauthorized(route: AppRoute, why: &auth::Refused) -> axum::response::Response {
    tracing::warn!(route = route.key(), reason = %why, "401: the token was refused");
    let mut response = axum::response::Response::new(AxumBody::from(r#"{"message":"Unauthorized"}"#));
    *response.status_mut() = axum::http::StatusCode::UNAUTHORIZED;
    response
}
