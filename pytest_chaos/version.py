"""The version of pytest-chaos (``pytest_chaos.__version__``), importable from any layer."""

__all__ = ["__version__"]

__version__ = "0.1.0"
