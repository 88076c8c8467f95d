#!/usr/bin/env python3
"""`make feed`: prints the change-feed events arriving on the local queue `stacc-social-changes`
(moto's EventBridge forwards every event on the bus there), until Ctrl-C. It consumes them: each
is printed once and deleted from the queue, as a subscriber would. Finds the stack where
`make run` recorded it (tools/local/stack.py)."""
import json
import sys

import stack


def main():
    endpoint = stack.setting("AWS_ENDPOINT_URL_SQS")
    sqs = stack.client("sqs", endpoint)
    try:
        url = sqs.get_queue_url(QueueName=stack.setting("CHANGES_QUEUE_NAME"))["QueueUrl"]
        print(f"make feed: receiving the change feed from {url}; each event is printed once and deleted "
              "from the queue (Ctrl-C stops)", file=sys.stderr, flush=True)
        while True:
            for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=5).get("Messages", []):
                event = json.loads(m["Body"])
                print(json.dumps({"detail-type": event.get("detail-type"), "detail": event.get("detail")}), flush=True)
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    except stack.UNREACHABLE:
        return stack.fail("feed", "SQS", endpoint, "AWS_ENDPOINT_URL_SQS")
    except sqs.exceptions.QueueDoesNotExist:
        print(f"make feed: {endpoint} has no queue {stack.setting('CHANGES_QUEUE_NAME')} (set CHANGES_QUEUE_NAME)",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
