"""The package's version, in a module of its own so that any layer can read it without importing the package's
public face (which names the top of the package)."""

__version__ = "0.1.0"  # keep equal to pyproject.toml's version (a test checks it)
