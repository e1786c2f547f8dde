"""zdr-gateway: a Zero Data Retention gateway for model APIs."""

__version__ = "0.1.0"
