"""The metadata-only audit trail."""
