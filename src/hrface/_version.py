"""The version of hrface, written here and nowhere else: pyproject.toml reads it for the package metadata
(``[tool.setuptools.dynamic]``), and ``hrface --version``, the server's OpenAPI page and ``hrface.__version__`` read
it here.  CHANGELOG.md names it (``tests/test_package.py`` checks both)."""

__version__ = "0.1.0"
