//! Evidence of what each function does in AWS, for the IAM evidence test: a packaged function's
//! AWS endpoints, put behind a forwarder on loopback that credits every request to that function
//! (in-process handlers are credited by the request tap, `aws::as_function`).

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;

use shared::adapters::aws;

use crate::evidence_file;

#[derive(Clone)]
struct Forward {
    function: String,
    upstream: String,
    client: reqwest::Client,
}

async fn forward(
    State(to): State<Forward>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    if let Some(target) = headers.get("x-amz-target").and_then(|t| t.to_str().ok()) {
        let actions = aws::iam_actions(target, &body);
        aws::append_evidence(&evidence_file(), &to.function, &actions).expect("evidence file");
    }
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = to.client.request(method, format!("{}{path}", to.upstream)).body(body);
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    match request.send().await {
        Ok(answer) => {
            let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let mut back = HeaderMap::new();
            for (name, value) in answer.headers() {
                if name != "content-length" && name != "transfer-encoding" {
                    back.insert(name.clone(), value.clone());
                }
            }
            (status, back, answer.bytes().await.unwrap_or_default()).into_response()
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

/// The forwarders of one packaged run; they stop when dropped.
pub struct Recorders(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Recorders {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// `env` with each `AWS_ENDPOINT_URL_*` behind a forwarder that credits its requests to `function`.
pub async fn recorded(function: &str, env: &BTreeMap<String, String>) -> (BTreeMap<String, String>, Recorders) {
    let mut env = env.clone();
    let mut tasks = Vec::new();
    for (_, upstream) in env.iter_mut().filter(|(name, _)| name.starts_with("AWS_ENDPOINT_URL_")) {
        let state = Forward {
            function: function.to_owned(),
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: reqwest::Client::new(),
        };
        let app = Router::new().fallback(forward).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("loopback port");
        *upstream = format!("http://{}", listener.local_addr().expect("address"));
        tasks.push(tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        }));
    }
    (env, Recorders(tasks))
}
