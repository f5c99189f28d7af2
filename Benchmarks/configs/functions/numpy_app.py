"""The benchmark's heavy Python handler: a WSGI app whose module imports numpy."""
import numpy

TABLE = numpy.arange(16, dtype=numpy.int64)


def application(environ, start_response):
    body = b"sum %d\n" % int(TABLE.sum())
    start_response("200 OK", [("content-type", "text/plain"), ("content-length", str(len(body)))])
    return [body]
