"""The request-path stages that are not owned by a domain package."""
