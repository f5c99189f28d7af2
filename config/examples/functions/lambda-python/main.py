"""A Lambda handler as it would be deployed to AWS (API Gateway HTTP API, payload format 2.0).

Portico runs it with AWS's own runtime interface client (`pip install awslambdaric`), which
talks to the Runtime API Portico serves each worker.
"""
import json


def handler(event, context):
    name = (event.get("queryStringParameters") or {}).get("name", "world")
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps({
            "greeting": f"Hello, {name}",
            "path": event["rawPath"],
            "method": event["requestContext"]["http"]["method"],
            "requestId": context.aws_request_id,
        }),
    }
