"""Serving and process operations: listener, workers, admin port, TLS, hardening."""
