//! `make run`'s gateway: embedded DynamoDB (SQLite file), the table and queues, the routes, and
//! the retry-queue poller, until Ctrl-C or SIGTERM. With `FAULTS` set, a fault proxy stands
//! between the routes and the embedded DynamoDB.

use std::net::SocketAddr;

use crate::local_dynamo::LocalDynamo;
use crate::{Gateway, GatewayConfig, PollSettings, infra, local_sdk_config};
use shared::adapters::aws::{self, ClientOptions};
use shared::signature::WebhookSecrets;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn setting(name: &str, default: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty()).unwrap_or_else(|| default.to_owned())
}

fn port(name: &str, default: u16) -> Result<u16, BoxError> {
    setting(name, &default.to_string()).parse().map_err(|_| format!("{name} must be a port number").into())
}

/// Reads the environment (see README, "Configuration"), runs until Ctrl-C or SIGTERM.
pub async fn run() -> Result<(), BoxError> {
    // The embedded DynamoDB logs each refused condition (the code's own answer) at WARN.
    shared::config::init_logging_quieting(&["dynoxide"]);
    let app_port = port("APP_PORT", 3000)?;
    let listen = SocketAddr::from(([127, 0, 0, 1], app_port));
    if std::net::TcpListener::bind(listen).is_err() {
        return Err(
            format!("port {app_port} is taken: is another `make run` running? (set APP_PORT to use another)").into()
        );
    }
    let table = setting("TABLE_NAME", "stacc-social");

    // DynamoDB: the embedded emulator, unless AWS_ENDPOINT_URL_DYNAMODB names another one.
    let mut embedded = None;
    let dynamodb = match std::env::var("AWS_ENDPOINT_URL_DYNAMODB").ok().filter(|v| !v.is_empty()) {
        Some(_) => ClientOptions::default(),
        None => {
            let dir = setting("LOCAL_DATA_DIR", ".local");
            std::fs::create_dir_all(&dir)?;
            let path = format!("{dir}/dynamodb.sqlite");
            let addr = SocketAddr::from(([127, 0, 0, 1], port("DYNAMODB_PORT", 8000)?));
            let local = LocalDynamo::file(&path, addr)
                .await
                .map_err(|e| format!("embedded DynamoDB on {addr}: {e} (set DYNAMODB_PORT to use another port)"))?;
            let options = ClientOptions { endpoint: Some(local.endpoint()), ..Default::default() };
            println!("DynamoDB (embedded, data in {path}): {}", local.endpoint());
            embedded = Some(local);
            options
        }
    };
    let sdk = local_sdk_config().await;
    // Setting up is not on a request path: a busy machine gets more than the Lambda timeouts.
    let setup = ClientOptions { timeouts: Some(infra::setup_timeouts()), ..ClientOptions::default() };
    infra::ensure_table(
        &aws::dynamodb_client(&sdk, &ClientOptions { timeouts: setup.timeouts.clone(), ..dynamodb.clone() }),
        &table,
    )
    .await?;
    // The routes, the poller and the reconciler reach DynamoDB through the fault proxy, if asked.
    let mut proxy = None;
    let routes_dynamodb = match (fault_proxy::from_env()?, &embedded) {
        (Some((faults, seed)), Some(local)) => {
            let started = fault_proxy::FaultProxy::on_loopback(&local.endpoint(), faults.clone(), seed).await?;
            println!(
                "fault proxy: {} (FAULT_SEED={seed}; GET {}/__faults counts what it injected)",
                faults_summary(&faults),
                started.endpoint()
            );
            let options = ClientOptions { endpoint: Some(started.endpoint()), ..dynamodb.clone() };
            proxy = Some(started);
            options
        }
        (Some(_), None) => return Err("FAULTS needs the embedded DynamoDB (unset AWS_ENDPOINT_URL_DYNAMODB)".into()),
        (None, _) => dynamodb.clone(),
    };
    let queues = infra::ensure_queues(
        &aws::sqs_client(&sdk, &setup),
        &setting("RETRY_QUEUE_NAME", "stacc-social-retry"),
        &setting("DEAD_LETTER_QUEUE_NAME", "stacc-social-retry-dlq"),
    )
    .await
    .map_err(|e| format!("SQS at {}: {e}", setting("AWS_ENDPOINT_URL_SQS", "(AWS_ENDPOINT_URL_SQS not set)")))?;

    let (jwt, issuer) = identity().await?;
    // The change feed's bus (moto's EventBridge) and the queue a rule forwards every event to.
    let bus = setting("EVENT_BUS_NAME", "stacc-social");
    let changes_url = infra::ensure_feed(
        &aws::eventbridge_client(&sdk, &setup),
        &aws::sqs_client(&sdk, &setup),
        &bus,
        &setting("CHANGES_QUEUE_NAME", "stacc-social-changes"),
    )
    .await
    .map_err(|e| {
        format!(
            "EventBridge at {}: {e}",
            setting("AWS_ENDPOINT_URL_EVENTBRIDGE", "(AWS_ENDPOINT_URL_EVENTBRIDGE not set)")
        )
    })?;
    let reconcile = match shared::config::reconcile_interval()? {
        Some(interval) => Some(crate::Reconcile {
            interval,
            settings: shared::config::healing()?,
            subscription: shared::config::subscription_watch()?,
        }),
        None => None,
    };
    let gateway = Gateway::start(GatewayConfig {
        listen,
        dynamodb: routes_dynamodb,
        sqs: ClientOptions::default(),
        table: table.clone(),
        retry_queue_url: queues.retry_url.clone(),
        secrets: WebhookSecrets::from_list(&setting("WEBHOOK_SECRETS", "local-webhook-secret")),
        poll: Some(PollSettings { visibility_timeout: retry_visibility()?, ..PollSettings::default() }),
        publisher_base_url: setting("PUBLISHER_BASE_URL", "http://127.0.0.1:4010/api"),
        publisher_api_key: setting("PUBLISHER_API_KEY", "sk_local"),
        jwt: jwt.clone(),
        limits: shared::config::limits()?,
        history_retention: shared::config::history_retention()?,
        redirect_origins: shared::config::redirect_origins()?,
        budget: shared::config::budget_plan()?,
        publish_timing: shared::config::publish_timing()?,
        reconcile: reconcile.clone(),
        feed: Some(bus.clone()),
        streams: proxy.as_ref().map(|_| dynamodb.clone()),
    })
    .await?;
    match &issuer {
        Some((issuer, _)) => {
            let claim = shared::handlers::app::project_claim();
            println!("identity provider (development): {} (its JWKS at /.well-known/jwks.json)", issuer.url);
            println!("a token for project proj_demo (24 h): {}", issuer.token_for(claim, "proj_demo", 24 * 3600));
            println!("a token for any project: curl -s '{}/token?{claim}=<project>'", issuer.url);
        }
        None => println!("tokens: from {} (audience {}), as the app's sign-in gives them", jwt.issuer, jwt.audience),
    }
    println!("table: {table}");
    println!("retry queue: {}", queues.retry_url);
    println!("change feed: bus {bus} -> {changes_url} (make feed prints them)");
    match reconcile {
        Some(r) => println!("reconciler: a pass every {} s (RECONCILE_INTERVAL_SECONDS)", r.interval.as_secs()),
        None => println!("reconciler: off (RECONCILE_INTERVAL_SECONDS=0)"),
    }
    println!("dead-letter queue: {}", queues.dead_letter_url);
    println!("gateway: {} (GET /healthz, POST /webhooks/zernio, /projects/{{projectId}}/...)", gateway.url());

    shutdown_signal().await;
    println!("stopping");
    gateway.shutdown().await;
    if let Some(proxy) = proxy {
        println!("fault proxy: {}", proxy.stats().to_json());
    }
    if let Some(mut local) = embedded {
        local.stop().await;
    }
    Ok(())
}

/// The authorizer's settings, and the development identity provider when it is this stack's:
/// `LOCAL_JWT_ISSUER` (with `LOCAL_JWT_AUDIENCE`, and `LOCAL_JWKS_URL` or `LOCAL_JWKS_FILE`
/// unless its discovery document names its JWKS) for another issuer; otherwise a development
/// issuer on `ISSUER_PORT` [4020], its RSA key kept in `LOCAL_DATA_DIR/issuer-key.pem`.
async fn identity()
-> Result<(crate::auth::Expect, Option<(crate::auth::Issuer, tokio::task::JoinHandle<std::io::Result<()>>)>), BoxError>
{
    use crate::auth::{Expect, Issuer, Jwks, SigningKey};
    let optional = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let audience = setting("LOCAL_JWT_AUDIENCE", "stacc-local");
    let jwks = match (optional("LOCAL_JWKS_URL"), optional("LOCAL_JWKS_FILE")) {
        (Some(url), _) => Jwks::Url(url),
        (None, Some(file)) => Jwks::File(file.into()),
        (None, None) => Jwks::Discovered,
    };
    if let Some(issuer) = optional("LOCAL_JWT_ISSUER") {
        return Ok((Expect { issuer, audience, jwks }, None));
    }
    let dir = setting("LOCAL_DATA_DIR", ".local");
    std::fs::create_dir_all(&dir)?;
    let path = std::path::Path::new(&dir).join("issuer-key.pem");
    let key = match std::fs::read_to_string(&path) {
        Ok(pem) => {
            SigningKey::from_pem(&pem).map_err(|e| format!("{}: {e} (delete it for a new key)", path.display()))?
        }
        Err(_) => {
            let key = SigningKey::generate();
            std::fs::write(&path, &key.pem)?;
            key
        }
    };
    let issuer_port = port("ISSUER_PORT", 4020)?;
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], issuer_port)))
        .await
        .map_err(|e| format!("the development issuer on port {issuer_port}: {e} (set ISSUER_PORT to use another)"))?;
    let issuer = Issuer::new(&format!("http://127.0.0.1:{issuer_port}"), &audience, key);
    let served = issuer.serve(listener, shared::handlers::app::project_claim());
    let expect = Expect { jwks, ..issuer.expect() };
    Ok((expect, Some((issuer, served))))
}

/// `RETRY_VISIBILITY_SECONDS`: how long a received retry message stays hidden (the queue's own
/// 180 s when unset); short, a message held by a gateway that was killed comes back soon.
fn retry_visibility() -> Result<Option<std::time::Duration>, BoxError> {
    match std::env::var("RETRY_VISIBILITY_SECONDS").ok().filter(|v| !v.trim().is_empty()) {
        Some(v) => Ok(Some(std::time::Duration::from_secs(
            v.trim().parse().map_err(|_| "RETRY_VISIBILITY_SECONDS must be a number of seconds")?,
        ))),
        None => Ok(None),
    }
}

fn faults_summary(faults: &fault_proxy::Faults) -> String {
    let rules: Vec<String> = faults
        .rules
        .iter()
        .map(|r| match r.operations.is_empty() {
            true => format!("{} {}", r.kind.name(), r.rate),
            false => format!("{} {} on {}", r.kind.name(), r.rate, r.operations.join("+")),
        })
        .collect();
    rules.join(", ")
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => return std::mem::drop(ctrl_c.await),
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
