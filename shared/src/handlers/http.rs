//! One way to answer: JSON bodies, and `{"error":{"code","message"}}` for every refusal.

use lambda_http::{Body, Response};
use serde_json::{Value, json};

pub fn json(status: u16, body: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::Text(body.to_string()))
        .expect("a status code and a static header always make a response")
}

pub fn error(status: u16, code: &str, message: &str) -> Response<Body> {
    json(status, &json!({"error": {"code": code, "message": message}}))
}

/// `GET /healthz`: the process is up.
pub fn alive() -> Response<Body> {
    json(200, &json!({"status": "ok"}))
}
