"""Where the running `make run` listens, for the helper targets (`make items`, `make feed`,
`make export`, `make redrive`): what the environment sets, else what `tools/local/run.sh` recorded
in `$LOCAL_DATA_DIR/stack.env` [.local] when it started, else the default ports."""
import os
import sys

import boto3
import botocore.exceptions

DEFAULTS = {
    "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:8000",
    "AWS_ENDPOINT_URL_SQS": "http://127.0.0.1:5000",
    "TABLE_NAME": "stacc-social",
    "RETRY_QUEUE_NAME": "stacc-social-retry",
    "DEAD_LETTER_QUEUE_NAME": "stacc-social-retry-dlq",
    "CHANGES_QUEUE_NAME": "stacc-social-changes",
}

# What a connection that nothing answers raises, for one line instead of a traceback.
UNREACHABLE = (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectionClosedError,
               botocore.exceptions.ReadTimeoutError, botocore.exceptions.ConnectTimeoutError)


def record_path():
    return os.path.join(os.environ.get("LOCAL_DATA_DIR") or ".local", "stack.env")


def recorded():
    """The running stack's record, `{}` when none is running (or it was started elsewhere)."""
    values = {}
    try:
        with open(record_path(), encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith("#") and "=" in line:
                    name, value = line.split("=", 1)
                    values[name] = value
    except FileNotFoundError:
        pass
    return values


def setting(name):
    """The environment's value, else the running stack's, else the default."""
    if os.environ.get(name):
        return os.environ[name]
    if name == "AWS_ENDPOINT_URL_DYNAMODB" and os.environ.get("DYNAMODB_PORT"):
        return f"http://127.0.0.1:{os.environ['DYNAMODB_PORT']}"
    if name == "AWS_ENDPOINT_URL_SQS" and os.environ.get("MOTO_PORT"):
        return f"http://127.0.0.1:{os.environ['MOTO_PORT']}"
    return recorded().get(name, DEFAULTS.get(name))


def client(service, endpoint):
    """A client of the local stand-in at `endpoint` (its credentials are anything)."""
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="local", aws_secret_access_key="local")


def fail(tool, what, endpoint, variable):
    """One line naming what to set, and the exit status for it."""
    found = "found" if os.path.exists(record_path()) else "not found"
    print(f"make {tool}: nothing answers at {endpoint} ({what}). Is `make run` up? It records where it listens "
          f"in {record_path()} ({found}): set LOCAL_DATA_DIR to the directory it was started with, "
          f"or {variable} to the endpoint.", file=sys.stderr)
    return 1
