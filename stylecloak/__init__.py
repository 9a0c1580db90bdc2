"""stylecloak: style cloaking for artwork (the Glaze method)."""

__version__ = "0.1.0"
