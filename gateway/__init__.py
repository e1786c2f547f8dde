"""zdr-gateway: a Zero Data Retention gateway for model APIs."""

import sys

__version__ = "0.1.0"
# SECURITY: the Server header on every response; aiohttp's default names the Python and
# aiohttp versions to every client.
SERVER_NAME = "zdr-gateway"

# SECURITY: the gateway writes no files but its audit file; byte-code caches are files.
# Set here, before any other gateway module is imported (and compiled).
sys.dont_write_bytecode = True
