"""`zdr-gateway demo` and what it brings: its config, the stand-in upstreams,
in-memory certificates and a demo key."""
