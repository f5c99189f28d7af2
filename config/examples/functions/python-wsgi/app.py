"""A WSGI application that Portico imports once, in a template process, and forks per worker."""
import json
import os
import random

# Imported once per revision, by the template: every worker starts with this already done.
# Heavy imports (numpy, a model) belong here; threads and sockets do not (see the README's
# fork rules).
GREETING = os.environ.get("GREETING", "Hello")


def application(environ, start_response):
    body = json.dumps({
        "greeting": GREETING,
        "path": environ["PATH_INFO"],
        "worker": os.getpid(),
        "template": os.getppid(),
        # Reseeded in every worker after the fork, so workers do not share a sequence.
        "lucky": random.randint(1, 100),
    }).encode() + b"\n"
    start_response("200 OK", [("content-type", "application/json"), ("content-length", str(len(body)))])
    return [body]
