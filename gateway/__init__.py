"""zdr-gateway: a Zero Data Retention gateway for model APIs."""

import sys

__version__ = "0.1.0"

# SECURITY: the gateway writes no files but its audit file; byte-code caches are files.
# Set here, before any other gateway module is imported (and compiled).
sys.dont_write_bytecode = True
