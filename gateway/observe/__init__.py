"""What the operator sees: log lines, Prometheus metrics, the ZDR posture report (metadata only)."""
