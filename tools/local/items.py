#!/usr/bin/env python3
"""Prints every item the running local stack has stored, as JSON (boto3 comes with moto)."""
import json, os, boto3
from boto3.dynamodb.types import TypeDeserializer

endpoint = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB", f"http://127.0.0.1:{os.environ.get('DYNAMODB_PORT', '8000')}")
client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="local", aws_secret_access_key="local")
plain = TypeDeserializer()
items, start = [], {}
while True:
    page = client.scan(TableName=os.environ.get("TABLE_NAME", "stacc-social"), **start)
    items += [{k: plain.deserialize(v) for k, v in i.items()} for i in page["Items"]]
    if "LastEvaluatedKey" not in page:
        break
    start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}
items.sort(key=lambda i: (i["pk"], i["sk"]))
print(json.dumps(items, indent=2, default=str))
