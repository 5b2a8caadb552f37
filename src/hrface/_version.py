"""The version of hrface: ``hrface --version``, the server's OpenAPI page and ``hrface.__version__`` read it here.
It must equal ``version`` in pyproject.toml (``tests/test_package.py`` checks)."""

__version__ = "0.1.0"
