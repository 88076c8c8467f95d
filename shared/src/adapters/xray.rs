//! X-Ray subsegments for the calls a function makes (production.md, section 3): with `Tracing`
//! Active, Lambda gives each invocation a trace (`_X_AMZN_TRACE_ID`, set by the runtime) and a
//! daemon (`AWS_XRAY_DAEMON_ADDRESS`); every DynamoDB, SQS, EventBridge and Secrets Manager
//! request and every call to the publishing service is then sent to it as a subsegment of the
//! function's segment, over UDP, fire and forget. Without a sampled trace nothing is sent.

use std::net::UdpSocket;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;

/// A sampled invocation's trace, from its trace header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    pub root: String,
    /// The function's segment, the parent of every subsegment.
    pub parent: String,
}

impl TraceContext {
    /// `Root=1-…;Parent=…;Sampled=1`; `None` unless sampled and complete.
    pub fn parse(header: &str) -> Option<TraceContext> {
        let field = |name: &str| {
            header.split(';').find_map(|part| part.trim().strip_prefix(name)?.strip_prefix('=')).map(str::to_owned)
        };
        (field("Sampled").as_deref() == Some("1"))
            .then(|| Some(TraceContext { root: field("Root")?, parent: field("Parent")? }))
            .flatten()
    }
}

/// One call, as X-Ray shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// `DynamoDB`, `SQS`, … or the service's host.
    pub name: String,
    /// `aws` for AWS services, `remote` for another HTTP API.
    pub namespace: &'static str,
    /// The AWS operation (`TransactWriteItems`), or the HTTP method and route for a remote call.
    pub operation: String,
    pub start: f64,
    pub end: f64,
    /// The HTTP status, if an answer came.
    pub status: Option<u16>,
}

/// Seconds since the epoch, as X-Ray counts time.
pub fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or_default()
}

/// The daemon's datagram for `call` in `trace`: its header line, then the subsegment.
pub fn datagram(trace: &TraceContext, call: &Call, id: &str) -> String {
    let mut document = json!({
        "name": call.name, "id": id, "trace_id": trace.root, "parent_id": trace.parent,
        "start_time": call.start, "end_time": call.end, "type": "subsegment", "namespace": call.namespace,
    });
    match call.namespace {
        "aws" => document["aws"] = json!({"operation": call.operation}),
        _ => document["http"] = json!({"request": {"method": call.operation.split(' ').next().unwrap_or("")}}),
    }
    if let Some(status) = call.status {
        document["http"]["response"] = json!({"status": status});
        document["error"] = json!((400..500).contains(&status));
        document["fault"] = json!(status >= 500);
    } else {
        document["fault"] = json!(true);
    }
    format!("{{\"format\":\"json\",\"version\":1}}\n{document}")
}

/// The invocation's trace and the daemon's address, when it is traced and sampled.
fn current() -> Option<(TraceContext, String)> {
    let trace = TraceContext::parse(&std::env::var("_X_AMZN_TRACE_ID").ok()?)?;
    Some((trace, std::env::var("AWS_XRAY_DAEMON_ADDRESS").ok()?))
}

/// Whether this invocation's calls are traced (a caller may skip preparing a `Call`).
pub fn traced() -> bool {
    current().is_some()
}

/// Sends `call` to the daemon when this invocation is traced; never fails the call it describes.
pub fn record(call: Call) {
    let Some((trace, daemon)) = current() else { return };
    // `host:port`, or the daemon's UDP and TCP addresses together (`udp:…:2000 tcp:…:2000`).
    let udp = daemon.split_whitespace().find_map(|a| a.strip_prefix("udp:")).unwrap_or(&daemon).to_owned();
    static SOCKET: OnceLock<Option<UdpSocket>> = OnceLock::new();
    let Some(socket) = SOCKET.get_or_init(|| UdpSocket::bind("0.0.0.0:0").ok()) else { return };
    let id = format!("{:016x}", uuid::Uuid::new_v4().as_u64_pair().0);
    let _ = socket.send_to(datagram(&trace, &call, &id).as_bytes(), udp);
}

/// The X-Ray name of an AWS service from a request's `X-Amz-Target` prefix.
pub fn service_name(target_prefix: &str) -> &'static str {
    match target_prefix {
        p if p.starts_with("DynamoDB") => "DynamoDB",
        "AmazonSQS" => "SQS",
        "AWSEvents" => "EventBridge",
        "secretsmanager" => "SecretsManager",
        _ => "AWS",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_sampled_complete_trace_header_is_traced() {
        let header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
        assert_eq!(
            TraceContext::parse(header),
            Some(TraceContext {
                root: "1-5759e988-bd862e3fe1be46a994272793".into(),
                parent: "53995c3f42cd8ad8".into()
            })
        );
        assert_eq!(TraceContext::parse("Root=1-a;Parent=b;Sampled=0"), None);
        assert_eq!(TraceContext::parse("Root=1-a;Sampled=1"), None);
    }

    #[test]
    fn a_call_is_a_subsegment_of_the_functions_segment() {
        let trace = TraceContext { root: "1-a-b".into(), parent: "p1".into() };
        let call = Call {
            name: "DynamoDB".into(),
            namespace: "aws",
            operation: "TransactWriteItems".into(),
            start: 1.0,
            end: 1.5,
            status: Some(200),
        };
        let text = datagram(&trace, &call, "0123456789abcdef");
        let (header, body) = text.split_once('\n').unwrap();
        assert_eq!(header, r#"{"format":"json","version":1}"#);
        let doc: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!((doc["trace_id"].as_str(), doc["parent_id"].as_str()), (Some("1-a-b"), Some("p1")));
        assert_eq!(
            (doc["type"].as_str(), doc["aws"]["operation"].as_str()),
            (Some("subsegment"), Some("TransactWriteItems"))
        );
        assert_eq!((doc["fault"].as_bool(), doc["error"].as_bool()), (Some(false), Some(false)));
    }
}
