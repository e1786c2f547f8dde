"""Serving and process operations: listener, workers, admin port, TLS, hardening, and what
a client may hold of the process (connection deadlines and caps, body budget, shedding)."""
