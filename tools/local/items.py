#!/usr/bin/env python3
"""`make items`: prints every item the running local stack has stored, as JSON (boto3 comes with
moto). Finds the stack where `make run` recorded it (tools/local/stack.py)."""
import json
import sys

from boto3.dynamodb.types import TypeDeserializer

import stack


def main():
    endpoint, table = stack.setting("AWS_ENDPOINT_URL_DYNAMODB"), stack.setting("TABLE_NAME")
    dynamodb = stack.client("dynamodb", endpoint)
    plain = TypeDeserializer()
    items, start = [], {}
    try:
        while True:
            page = dynamodb.scan(TableName=table, **start)
            items += [{k: plain.deserialize(v) for k, v in i.items()} for i in page["Items"]]
            if "LastEvaluatedKey" not in page:
                break
            start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}
    except stack.UNREACHABLE:
        return stack.fail("items", "DynamoDB", endpoint, "AWS_ENDPOINT_URL_DYNAMODB")
    except dynamodb.exceptions.ResourceNotFoundException:
        print(f"make items: {endpoint} has no table {table} (set TABLE_NAME)", file=sys.stderr)
        return 1
    items.sort(key=lambda i: (i["pk"], i["sk"]))
    print(json.dumps(items, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
