#!/usr/bin/env python3
"""Writes every item stored about one project as one JSON document (lifecycle.md, "Export"): for
a person's request to see their data. An operator's tool.

Usage: export.py PROJECT [--out FILE]

Against `make run` by default (its embedded DynamoDB and table, where it recorded them:
tools/local/stack.py); in an AWS account when `TABLE_NAME` names the stack's table and no local
endpoint is set (`AWS_ENDPOINT_URL_DYNAMODB`, `DYNAMODB_PORT`), with the caller's own credentials
and region.

Every read is consistent and paged: the project's partition (posts, drafts, history, the pointer
to its profile, its budgets), then its profile's (the routing item and the connections).
De-duplication records of webhook events name no project and hold no personal data: they are not
part of a project's export.
"""
import argparse
import datetime
import json
import os
import sys

import boto3
from boto3.dynamodb.types import TypeDeserializer

import stack

PLAIN = TypeDeserializer()


def client():
    """make run's DynamoDB (where it recorded it), unless `TABLE_NAME` alone says an AWS account."""
    explicit = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or os.environ.get("DYNAMODB_PORT")
    if explicit or "TABLE_NAME" not in os.environ:
        endpoint = stack.setting("AWS_ENDPOINT_URL_DYNAMODB")
        return stack.client("dynamodb", endpoint), endpoint
    return boto3.client("dynamodb"), None


def partition(dynamodb, table, pk):
    """Every item of one partition key, read consistently, page by page."""
    items, start = [], {}
    while True:
        page = dynamodb.query(TableName=table, KeyConditionExpression="pk = :pk",
                              ExpressionAttributeValues={":pk": {"S": pk}}, ConsistentRead=True, **start)
        items += [{k: PLAIN.deserialize(v) for k, v in i.items()} for i in page["Items"]]
        if "LastEvaluatedKey" not in page:
            return items
        start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}


def kind(item):
    sk = item["sk"]
    for prefix, name in [("POST#", "posts"), ("DRAFT#", "drafts"), ("HIST#POST#", "post_history"),
                         ("HIST#CONN#", "connection_history"), ("CONN#", "connections"), ("BUDGET#", "budgets")]:
        if sk.startswith(prefix):
            return name
    return {"PROFILE": "profile", "ROUTE": "routing", "SEAL": "erasure"}.get(sk, "other")


def export(dynamodb, table, project):
    items = partition(dynamodb, table, f"PROJECT#{project}")
    profile = next((i.get("profile_id") for i in items if i["sk"] == "PROFILE"), None)
    if profile:
        items += partition(dynamodb, table, f"PROFILE#{profile}")
    grouped = {}
    for item in items:
        grouped.setdefault(kind(item), []).append(item)
    return {
        "project_id": project,
        "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z"),
        "table": table,
        "profile_id": profile,
        "item_count": len(items),
        "items": grouped,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("project")
    parser.add_argument("--out", help="write here instead of standard output")
    args = parser.parse_args()
    table = stack.setting("TABLE_NAME")
    dynamodb, endpoint = client()
    try:
        document = export(dynamodb, table, args.project)
    except stack.UNREACHABLE:
        return stack.fail("export", "DynamoDB", endpoint, "AWS_ENDPOINT_URL_DYNAMODB")
    except Exception as e:  # noqa: BLE001 - one line naming what to set, never a traceback
        print(f"make export: could not read table {table}: {e} (set TABLE_NAME, and DYNAMODB_PORT for make run)",
              file=sys.stderr)
        return 1
    text = json.dumps(document, indent=2, default=str, sort_keys=True)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text + "\n")
        print(f"wrote {document['item_count']} items of {args.project} to {args.out}", file=sys.stderr)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
