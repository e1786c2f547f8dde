"""`zdr-gateway demo` and what it brings: its config, stand-in upstreams, in-memory certificates, a demo key."""
