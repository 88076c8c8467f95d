#!/usr/bin/env python3
"""Writes the sample events in events/: the signed webhooks (Lambda function URL payloads), one
HTTP API event per app route (as API Gateway sends it after the JWT authorizer passed), one SQS
batch for the retry worker and the reconciler's scheduled invocation. `make invoke FN=<function> EVENT=<file>` runs a packaged function on one.

Each webhook body is signed with the local secret (WEBHOOK_SECRETS default), so `make run` and the
tests accept them as they stand. Run `make events` after changing anything below.
"""
import base64, hashlib, hmac, json, os, sys

SECRET = os.environ.get("SAMPLE_SECRET", "local-webhook-secret")
PROJECT, PROFILE = "proj_demo", "65aa00000000000000000001"
meta = lambda post, gen=1: {"stacc_project_id": PROJECT, "stacc_post_id": post, "stacc_generation": gen}

BODIES = {
    "webhook-post-scheduled": {
        "id": "evt_0001", "event": "post.scheduled", "timestamp": "2026-11-30T09:00:00Z",
        "post": {"id": "65f100000000000000000001", "status": "scheduled", "scheduledFor": "2030-01-01T10:00:00Z",
                 "platforms": [{"platform": "twitter", "status": "pending", "accountId": "64e100000000000000000001"},
                               {"platform": "linkedin", "status": "pending", "accountId": "64e100000000000000000002"}],
                 "metadata": meta("post_demo")}},
    "webhook-post-published": {
        "id": "evt_0002", "event": "post.published", "timestamp": "2030-01-01T10:00:05Z",
        "post": {"id": "65f100000000000000000001", "status": "published", "publishedAt": "2030-01-01T10:00:03Z",
                 "platforms": [{"platform": "twitter", "status": "published", "accountId": "64e100000000000000000001",
                                "platformPostId": "1850000000000000001", "publishedUrl": "https://x.com/acme/status/1850000000000000001"},
                               {"platform": "linkedin", "status": "published", "accountId": "64e100000000000000000002",
                                "platformPostId": "urn:li:share:7000000000000000001",
                                "publishedUrl": "https://www.linkedin.com/feed/update/urn:li:share:7000000000000000001"}],
                 "metadata": meta("post_demo")}},
    "webhook-post-partial": {
        "id": "evt_0003", "event": "post.partial", "timestamp": "2026-11-30T10:00:05Z",
        "post": {"id": "65f100000000000000000002", "status": "partial", "publishedAt": "2026-11-30T10:00:02Z",
                 "platforms": [{"platform": "twitter", "status": "published", "accountId": "64e100000000000000000001",
                                "platformPostId": "1850000000000000002", "publishedUrl": "https://x.com/acme/status/1850000000000000002"},
                               {"platform": "instagram", "status": "failed", "accountId": "64e100000000000000000003",
                                "error": "Rate limit exceeded"}],
                 "metadata": meta("post_partial")}},
    "webhook-post-failed": {
        "id": "evt_0004", "event": "post.failed", "timestamp": "2026-11-30T11:00:05Z",
        "post": {"id": "65f100000000000000000003", "status": "failed",
                 "platforms": [{"platform": "facebook", "status": "failed", "accountId": "64e100000000000000000004",
                                "error": "The page access token has expired"}],
                 "metadata": meta("post_failed")}},
    "webhook-post-cancelled": {
        "id": "evt_0005", "event": "post.cancelled", "timestamp": "2026-11-30T12:00:00Z",
        "post": {"id": "65f100000000000000000004", "status": "cancelled", "scheduledFor": "2030-02-01T10:00:00Z",
                 "platforms": [{"platform": "linkedin", "status": "pending", "accountId": "64e100000000000000000002"}],
                 "metadata": meta("post_cancelled")}},
    "webhook-account-connected": {
        "id": "evt_0006", "event": "account.connected", "timestamp": "2026-11-30T08:00:00Z",
        "account": {"accountId": "64e100000000000000000001", "profileId": PROFILE, "platform": "twitter",
                    "username": "acme", "displayName": "Acme Inc."}},
    "webhook-account-disconnected": {
        "id": "evt_0007", "event": "account.disconnected", "timestamp": "2026-11-30T13:00:00Z",
        "account": {"accountId": "64e100000000000000000001", "profileId": PROFILE, "platform": "twitter",
                    "username": "acme", "displayName": "Acme Inc.", "disconnectionType": "unintentional",
                    "reason": "Token expired"}},
}
# One sample arrives base64-encoded, as a function URL may deliver a body.
BASE64 = {"webhook-post-failed"}

def function_url_event(name, body):
    raw = json.dumps(body, separators=(",", ":")).encode()
    signature = hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    encoded = name in BASE64
    return {
        "version": "2.0", "routeKey": "$default", "rawPath": "/", "rawQueryString": "",
        "headers": {"content-type": "application/json", "user-agent": "Zernio-Webhooks/1.0",
                    "x-zernio-event-id": body["id"], "x-zernio-signature": signature},
        "requestContext": {"accountId": "anonymous", "apiId": "abcdefghij",
                           "domainName": "abcdefghij.lambda-url.us-east-1.on.aws", "domainPrefix": "abcdefghij",
                           "http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1",
                                    "sourceIp": "203.0.113.10", "userAgent": "Zernio-Webhooks/1.0"},
                           "requestId": "req-" + body["id"], "routeKey": "$default", "stage": "$default",
                           "time": "30/Nov/2026:10:00:05 +0000", "timeEpoch": 1795946405000},
        "body": base64.b64encode(raw).decode() if encoded else raw.decode(),
        "isBase64Encoded": encoded,
    }

# One event per app route: file name → (method, route, path parameters, body).
ROUTES = {
    "http-healthz": ("GET", "/healthz", {}, None),
    "http-list-connections": ("GET", "/projects/{projectId}/connections", {"projectId": PROJECT}, None),
    "http-refresh-connections": ("POST", "/projects/{projectId}/connections/refresh", {"projectId": PROJECT}, None),
    "http-connect": ("POST", "/projects/{projectId}/connections/{platform}/connect",
                     {"projectId": PROJECT, "platform": "linkedin"}, None),
    "http-publish-post": ("POST", "/projects/{projectId}/posts", {"projectId": PROJECT},
                          {"post_id": "post_invoke", "content": "Hello from make invoke", "platforms": ["x", "linkedin"]}),
    "http-read-post": ("GET", "/projects/{projectId}/posts/{postId}", {"projectId": PROJECT, "postId": "post_demo"}, None),
    "http-sync-post": ("POST", "/projects/{projectId}/posts/{postId}/sync", {"projectId": PROJECT, "postId": "post_demo"}, None),
    "http-erase-project": ("DELETE", "/projects/{projectId}", {"projectId": "proj_gone"}, None),
    "http-project-erasure": ("GET", "/projects/{projectId}/erasure", {"projectId": "proj_gone"}, None),
    "http-disconnect": ("POST", "/projects/{projectId}/connections/{platform}/disconnect",
                        {"projectId": PROJECT, "platform": "linkedin"}, None),
    "http-manual-delete": ("POST", "/projects/{projectId}/posts/{postId}/platforms/{platform}/manual-delete",
                           {"projectId": PROJECT, "postId": "post_demo", "platform": "x"}, None),
    "http-post-history": ("GET", "/projects/{projectId}/posts/{postId}/history",
                          {"projectId": PROJECT, "postId": "post_demo"}, None),
    "http-connection-history": ("GET", "/projects/{projectId}/connections/history", {"projectId": PROJECT}, None),
}

def http_api_event(method, route, parameters, body):
    path = route
    for name, value in parameters.items():
        path = path.replace("{" + name + "}", value)
    claims = {"sub": "user_demo", "project_id": parameters.get("projectId", PROJECT), "iss": "https://auth.example.com", "aud": "stacc-app"}
    return {
        "version": "2.0", "routeKey": f"{method} {route}", "rawPath": path, "rawQueryString": "",
        "headers": {"authorization": "Bearer checked-by-the-authorizer", "content-type": "application/json"},
        "requestContext": {"accountId": "123456789012", "apiId": "abcdefghij",
                           "authorizer": {"jwt": {"claims": claims, "scopes": None}} if route != "/healthz" else None,
                           "domainName": "abcdefghij.execute-api.us-east-1.amazonaws.com", "domainPrefix": "abcdefghij",
                           "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                                    "sourceIp": "203.0.113.20", "userAgent": "stacc-app/1.0"},
                           "requestId": "req-" + path.strip("/").replace("/", "-"), "routeKey": f"{method} {route}",
                           "stage": "$default", "time": "30/Nov/2026:10:00:05 +0000", "timeEpoch": 1795946405000},
        "pathParameters": parameters or None,
        "body": json.dumps(body, separators=(",", ":")) if body is not None else None,
        "isBase64Encoded": False,
    }

def sqs_event():
    """A queued webhook as the retry worker receives it: the raw body, its id and receipt time as
    message attributes (what the webhook function sends when it could not apply at once)."""
    body = BODIES["webhook-post-published"]
    attribute = lambda value: {"stringValue": value, "stringListValues": [], "binaryListValues": [], "dataType": "String"}
    return {"Records": [{
        "messageId": "9f2b6c1e-5d7a-4c11-9a43-3a1f2b7c8d90", "receiptHandle": "AQEB-sample",
        "body": json.dumps(body, separators=(",", ":")),
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1795946405000", "SenderId": "AROAEXAMPLE",
                       "ApproximateFirstReceiveTimestamp": "1795946405000"},
        "messageAttributes": {"event_id": attribute(body["id"]), "received_at": attribute("2026-11-30T10:00:05Z")},
        "md5OfBody": hashlib.md5(json.dumps(body, separators=(",", ":")).encode()).hexdigest(),
        "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:stacc-social-retry",
        "awsRegion": "us-east-1"}]}

def follow_up_event():
    """A publish follow-up as the retry worker receives it: the publication's ids as the body, marked
    by the `kind` attribute (what the publish route queues when the service did not answer in time)."""
    body = json.dumps({"project": PROJECT, "post": "post_demo", "generation": 1, "attempt": 0}, separators=(",", ":"))
    attribute = lambda value: {"stringValue": value, "stringListValues": [], "binaryListValues": [], "dataType": "String"}
    return {"Records": [{
        "messageId": "5c1d7e2a-8b3f-4e6a-9d20-7f4a1c2b3e81", "receiptHandle": "AQEB-sample-follow-up",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1795946465000", "SenderId": "AROAEXAMPLE",
                       "ApproximateFirstReceiveTimestamp": "1795946465000"},
        "messageAttributes": {"kind": attribute("follow_up")},
        "md5OfBody": hashlib.md5(body.encode()).hexdigest(),
        "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:stacc-social-retry",
        "awsRegion": "us-east-1"}]}

def write(out, name, event):
    with open(os.path.join(out, name + ".json"), "w") as f:
        json.dump(event, f, indent=2)
        f.write("\n")

out = sys.argv[1] if len(sys.argv) > 1 else "events"
for name, body in BODIES.items():
    write(out, name, function_url_event(name, body))
for name, route in ROUTES.items():
    write(out, name, http_api_event(*route))
write(out, "sqs-retry-batch", sqs_event())
write(out, "sqs-follow-up-batch", follow_up_event())
# The change feed's stream mapping delivers history records (NEW_IMAGE).
record = {"pk": {"S": f"PROJECT#{PROJECT}"}, "sk": {"S": "HIST#CONN#1795946405000#x#0000000002#00"},
          "id": {"S": f"connection-{PROJECT}-x-1795946405000-2-0"}, "kind": {"S": "connection"}, "project_id": {"S": PROJECT},
          "platform": {"S": "x"}, "field": {"S": "status"}, "from": {"S": "connected"}, "to": {"S": "revoked"},
          "source": {"S": "webhook"}, "evidence": {"S": "evt_0007"}, "at": {"S": "2026-11-30T13:00:05Z"},
          "expires_at": {"N": "1803722405"}}
write(out, "dynamodb-history-record", {"Records": [{
    "eventID": "c4ca4238a0b923820dcc509a6f75849b", "eventName": "INSERT", "eventVersion": "1.1",
    "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
    "dynamodb": {"ApproximateCreationDateTime": 1795946405, "Keys": {"pk": record["pk"], "sk": record["sk"]},
                 "NewImage": record, "SequenceNumber": "111", "SizeBytes": 420, "StreamViewType": "NEW_IMAGE"},
    "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/stacc-social/stream/2026-11-30T00:00:00.000"}]})
# EventBridge Scheduler invokes the reconciler with the schedule's input: none.
write(out, "scheduler-reconcile", {})
print(f"wrote {len(BODIES)} signed webhooks, {len(ROUTES)} route events, 2 SQS batches and 1 schedule to {out}/")
