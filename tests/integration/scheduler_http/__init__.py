"""Mesos's v1 scheduler HTTP API against a real master: a behaviour suite shared with gRPC, the
HTTP specifics (bodies, RecordIO framing, errors, redirects), and pymesos run unmodified."""
