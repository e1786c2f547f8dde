"""`make bench`: zdr-gateway against a direct connection to the same local upstream.

See bench/README.md for what is measured, how, and the latest numbers.
"""
