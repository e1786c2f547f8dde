"""The ZDR policy: what may be sent upstream without creating retention."""
