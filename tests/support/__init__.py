"""Shared test helpers: stand-ins for the cloud providers, event stream frames."""
