"""Routing: which upstream serves a path, and the upstreams themselves."""
