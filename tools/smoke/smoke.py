#!/usr/bin/env python3
"""make smoke: the first checks of a stack, local or deployed, through its front doors only.

    make smoke URL=<API base URL> TOKEN=<an app token> [WEBHOOK_URL=<the webhook's URL>]
               [WEBHOOK_SECRET=<a webhook signing secret>] [PROJECT=<project id>]

1. GET /healthz answers 200 {"status": "ok"}.
2. The token is taken: GET /projects/<project>/connections answers 200 with four platforms (the
   project is the token's project claim, PROJECT_CLAIM [project_id], unless PROJECT says).
3. A Refresh answers 200 (or 429 rate_limited: the budget is working).
4. A signed sample webhook ({"test": true}) answers 200 {"status": "ignored"}: the URL and the
   secret are right, and nothing was stored.
Against `make run` every default fits: URL http://127.0.0.1:$APP_PORT, the webhook at
$URL/webhooks/zernio, the secret local-webhook-secret. Exits non-zero, naming the failed step.
Standard library only.
"""
import base64, hashlib, hmac, json, os, sys, time, urllib.error, urllib.request


def fail(step, why):
    print(f"smoke: FAILED at {step}: {why}", file=sys.stderr)
    sys.exit(1)


def call(method, url, headers=None, body=None):
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return None, str(e)


def claims(token):
    try:
        payload = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        fail("the token", "TOKEN is not a JWT")


def main():
    url = os.environ.get("URL", "").rstrip("/")
    token = os.environ.get("TOKEN", "").strip()
    if not url or not token:
        fail("its arguments", "make smoke URL=<API base URL> TOKEN=<an app token> (see README, Deploy)")
    claim = os.environ.get("PROJECT_CLAIM") or "project_id"
    project = os.environ.get("PROJECT") or claims(token).get(claim)
    if not project:
        fail("the token", f"it carries no {claim} claim; set PROJECT, or PROJECT_CLAIM to the claim that names it")
    webhook_url = os.environ.get("WEBHOOK_URL") or f"{url}/webhooks/zernio"
    secret = os.environ.get("WEBHOOK_SECRET") or "local-webhook-secret"
    auth = {"authorization": f"Bearer {token}", "content-type": "application/json"}

    status, body = call("GET", f"{url}/healthz")
    if status != 200 or json.loads(body or "{}").get("status") != "ok":
        fail("health", f"GET {url}/healthz answered {status}: {body[:200]}")
    print(f"smoke: health ok ({url})")

    status, body = call("GET", f"{url}/projects/{project}/connections", auth)
    if status == 401:
        fail("the token", "401: the authorizer refused it (wrong issuer or audience, expired, or a key not in the JWKS)")
    if status != 200 or len(json.loads(body).get("connections", [])) != 4:
        fail("connections", f"answered {status}: {body[:200]}")
    print(f"smoke: token ok, project {project} reads its four connections")

    status, body = call("POST", f"{url}/projects/{project}/connections/refresh", auth)
    code = json.loads(body or "{}").get("error", {}).get("code") if status != 200 else None
    if status != 200 and code != "rate_limited":
        fail("refresh", f"answered {status}: {body[:200]}")
    print(f"smoke: refresh ok ({status})")

    event = {"id": f"evt_smoke_{int(time.time() * 1000)}", "event": "webhook.test", "test": True,
             "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    raw = json.dumps(event, separators=(",", ":")).encode()
    signature = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    headers = {"content-type": "application/json", "x-zernio-signature": signature}
    status, body = call("POST", webhook_url, headers, raw)
    if status == 401:
        fail("the webhook", f"401 at {webhook_url}: the secret is not one the stack holds")
    if status != 200 or json.loads(body or "{}").get("status") != "ignored":
        fail("the webhook", f"{webhook_url} answered {status}: {body[:200]}")
    print(f"smoke: signed sample webhook ignored ok ({webhook_url})")
    print("smoke: passed")


if __name__ == "__main__":
    main()
