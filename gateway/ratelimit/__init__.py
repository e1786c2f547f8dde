"""Rate limits: requests, tokens and concurrency per key and team."""
