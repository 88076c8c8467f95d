#!/usr/bin/env python3
"""`make feed`: prints the change-feed events arriving on the local queue `stacc-social-changes`
(moto's EventBridge forwards every event on the bus there), until Ctrl-C."""
import json, os, boto3

endpoint = os.environ.get("AWS_ENDPOINT_URL_SQS", f"http://127.0.0.1:{os.environ.get('MOTO_PORT', '5000')}")
sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1",
                   aws_access_key_id="local", aws_secret_access_key="local")
url = sqs.get_queue_url(QueueName=os.environ.get("CHANGES_QUEUE_NAME", "stacc-social-changes"))["QueueUrl"]
print(f"waiting for events on {url} (Ctrl-C stops)", flush=True)
try:
    while True:
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=5).get("Messages", []):
            event = json.loads(m["Body"])
            print(json.dumps({"detail-type": event.get("detail-type"), "detail": event.get("detail")}), flush=True)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
except KeyboardInterrupt:
    pass
