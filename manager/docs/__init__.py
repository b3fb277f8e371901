"""Script documentation: Markdown rendered and sanitised, read and written per language."""
