"""Authentication: credentials become a `Principal`."""
