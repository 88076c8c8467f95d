//! Crash and restart: the gateway as `make run` runs it (its own process, DynamoDB in a SQLite
//! file under LOCAL_DATA_DIR, a fault proxy in front of it) is killed with SIGKILL at random
//! moments during a burst of shuffled, duplicated webhook deliveries and started again on the same
//! data. Every event it acknowledged is there afterwards, and what it had queued is applied after
//! the restart.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use integration_tests::chaos::{self, Burst};
use integration_tests::{SECRET, moto_endpoint};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use shared::adapters::aws::{self, ClientOptions};
use shared::adapters::dynamo::DynamoStore;
use shared::domain::{ProfileId, ProjectId};
use shared::ports::ConnectionStore;
use tokio::sync::Mutex;
use zernio_sim::{SimConfig, Simulator};

const PROJECT: &str = "proj_crash";
const PROFILE: &str = "65aa00000000000000000c01";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

/// One gateway process at a time, on fixed ports and one data folder.
struct Gateway {
    env: Vec<(String, String)>,
    app_port: u16,
    log: std::path::PathBuf,
    child: Option<Child>,
}

impl Gateway {
    /// Starts the gateway and waits until it answers; a start that dies on the way (a busy
    /// machine) is tried again, as a supervisor would.
    async fn start(&mut self) {
        let health = format!("http://127.0.0.1:{}/healthz", self.app_port);
        let http = reqwest::Client::new();
        for attempt in 1..=5 {
            let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("log file");
            let mut child = Command::new(env!("CARGO_BIN_EXE_gateway"))
                .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .stdout(Stdio::from(log.try_clone().expect("log")))
                .stderr(Stdio::from(log))
                .spawn()
                .expect("the gateway starts");
            for _ in 0..600 {
                if http.get(&health).send().await.is_ok_and(|r| r.status().is_success()) {
                    self.child = Some(child);
                    return;
                }
                if child.try_wait().ok().flatten().is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let _ = child.kill();
            let _ = child.wait();
            eprintln!("the gateway's start {attempt} did not come up; starting it again");
        }
        panic!("the gateway did not come up in five tries; see {}", self.log.display());
    }

    /// SIGKILL: no shutdown, no flush, whatever was in flight is cut.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_gateway_killed_at_random_moments_loses_nothing_it_acknowledged() {
    let seed = chaos::seed();
    let sim = Simulator::start(SimConfig::default()).await.expect("simulator");
    let dir = integration_tests::root().join(format!("target/tmp/crash-{}-{seed}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("data folder");
    let (app_port, dynamodb_port) = (free_port(), free_port());
    let tag = format!("{}-{seed}", std::process::id());
    let moto = moto_endpoint();
    let table = format!("crash-{tag}");
    let env: Vec<(String, String)> = [
        ("APP_PORT", app_port.to_string()),
        ("DYNAMODB_PORT", dynamodb_port.to_string()),
        ("LOCAL_DATA_DIR", dir.display().to_string()),
        ("TABLE_NAME", table.clone()),
        ("RETRY_QUEUE_NAME", format!("crash-retry-{tag}")),
        ("DEAD_LETTER_QUEUE_NAME", format!("crash-dlq-{tag}")),
        ("EVENT_BUS_NAME", format!("crash-bus-{tag}")),
        ("CHANGES_QUEUE_NAME", format!("crash-changes-{tag}")),
        ("AWS_ENDPOINT_URL_SQS", moto.clone()),
        ("AWS_ENDPOINT_URL_EVENTBRIDGE", moto.clone()),
        ("PUBLISHER_BASE_URL", sim.api_url()),
        ("WEBHOOK_SECRETS", SECRET.to_owned()),
        ("RECONCILE_INTERVAL_SECONDS", "0".to_owned()),
        ("RETRY_VISIBILITY_SECONDS", "2".to_owned()),
        ("FAULTS", "throttle:0.06,internal:0.05,conflict:0.06,lost_answer:0.05,timeout:0.02".to_owned()),
        ("FAULT_SEED", seed.to_string()),
        ("LOG_FORMAT", "text".to_owned()),
        ("RUST_LOG", "warn".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let mut gateway = Gateway { env, app_port, log: dir.join("gateway.log"), child: None };
    gateway.start().await;

    // GIVEN the project linked to its profile, in the gateway's own DynamoDB
    let sdk = dev_gateway::local_sdk_config().await;
    let endpoint = format!("http://127.0.0.1:{dynamodb_port}");
    let dynamodb = aws::dynamodb_client(&sdk, &ClientOptions { endpoint: Some(endpoint), ..Default::default() });
    let store = DynamoStore::new(dynamodb.clone(), &table);
    let (project, profile) = (ProjectId::parse(PROJECT).unwrap(), ProfileId::parse(PROFILE).unwrap());
    store.link_profile(&project, &profile).await.expect("link");
    let burst = Burst::new(seed, PROJECT, PROFILE, 20, 500);

    // WHEN the burst is delivered while the gateway is killed and started again at random moments
    let gateway = Arc::new(Mutex::new(gateway));
    let done = Arc::new(AtomicBool::new(false));
    let kills = Arc::new(AtomicU64::new(0));
    let killer = {
        let (gateway, done, kills) = (gateway.clone(), done.clone(), kills.clone());
        tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(seed.rotate_left(13));
            while !done.load(Ordering::SeqCst) && kills.load(Ordering::SeqCst) < 8 {
                tokio::time::sleep(Duration::from_millis(rng.random_range(500..2_000))).await;
                let mut gateway = gateway.lock().await;
                gateway.kill();
                kills.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(rng.random_range(50..400))).await;
                gateway.start().await;
            }
        })
    };
    let url = format!("http://127.0.0.1:{app_port}/webhooks/zernio");
    let started = Instant::now();
    let delivered = chaos::deliver_all(&url, SECRET, &burst.deliveries, 8, Duration::from_secs(120)).await;
    done.store(true, Ordering::SeqCst);
    killer.await.expect("the killer");
    let kills = kills.load(Ordering::SeqCst);

    // THEN after the last restart the queue drains, and every acknowledged event is taken and the
    // state equals the model
    let sqs = aws::sqs_client(&sdk, &ClientOptions { endpoint: Some(moto), ..Default::default() });
    let retry_url =
        sqs.get_queue_url().queue_name(format!("crash-retry-{tag}")).send().await.unwrap().queue_url.unwrap();
    let dlq_url = sqs.get_queue_url().queue_name(format!("crash-dlq-{tag}")).send().await.unwrap().queue_url.unwrap();
    let dead = chaos::drain_and_redrive(&sqs, &retry_url, &dlq_url).await;
    let missing = burst.missing(&dynamodb, &table).await;
    let (expected, got) = (burst.model(), burst.stored(&store).await);
    let differences = expected.differences(&got);
    println!(
        "crash report: {}",
        serde_json::json!({"seed": seed, "kills": kills, "seconds": started.elapsed().as_secs_f64(),
                           "webhooks": delivered.to_json(), "dead_lettered_then_redriven": dead,
                           "events_missing": missing.len(), "differences": differences.len()})
    );
    assert!(kills >= 3, "the gateway was killed {kills} times");
    assert!(missing.is_empty(), "seed {seed}: acknowledged but lost: {missing:?}");
    assert!(differences.is_empty(), "seed {seed}: the store differs from the model:\n{}", differences.join("\n"));
    drop(gateway);
    let _ = std::fs::remove_dir_all(&dir);
}
