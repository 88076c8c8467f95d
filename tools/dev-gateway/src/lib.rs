//! The dev gateway: on one machine, it plays API Gateway, the webhook's function URL and the SQS
//! event source mapping, handing every request to the same handler the Lambda binaries run.

pub mod bridge;
pub mod infra;
pub mod local_dynamo;
pub mod poller;

use std::net::SocketAddr;
use std::sync::Arc;

use aws_config::{Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use axum::Router;
use axum::body::Body as AxumBody;
use axum::http::Request as HttpRequest;
use axum::routing::{any, get};
use shared::adapters::aws::{self, ClientOptions};
use shared::adapters::dynamo::DynamoStore;
use shared::adapters::sqs::SqsRetryQueue;
use shared::handlers::http;
use shared::handlers::retry::RetryWorker;
use shared::handlers::webhook::Webhook;
use shared::ports::SystemClock;
use shared::signature::WebhookSecrets;
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
}

type LocalWebhook = Webhook<DynamoStore, SqsRetryQueue, SystemClock>;

struct AppState {
    webhook: LocalWebhook,
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
        let state = Arc::new(AppState {
            webhook: Webhook {
                store: DynamoStore::new(dynamodb.clone(), &config.table),
                queue: SqsRetryQueue::new(sqs.clone(), &config.retry_queue_url),
                clock: SystemClock,
                secrets: config.secrets.clone(),
            },
        });
        let app = Router::new()
            .route("/healthz", get(|| async { http_json_ok() }))
            .route(
                "/webhooks/zernio",
                any({
                    let state = state.clone();
                    move |request: HttpRequest<AxumBody>| async move { webhook(state, request).await }
                }),
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
            let worker = RetryWorker { store: DynamoStore::new(dynamodb, &config.table) };
            tasks.push(tokio::spawn(poller::run(sqs, config.retry_queue_url.clone(), worker, settings, stopped)));
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

fn http_json_ok() -> axum::response::Response {
    bridge::from_lambda(http::json(200, &serde_json::json!({"status": "ok"})))
}

async fn webhook(state: Arc<AppState>, request: HttpRequest<AxumBody>) -> axum::response::Response {
    let route = bridge::RouteContext { route_key: "$default".into(), ..Default::default() };
    match bridge::to_lambda(request, route).await {
        Ok(request) => bridge::from_lambda(state.webhook.handle(request).await),
        Err(e) => bridge::from_lambda(e.response()),
    }
}
