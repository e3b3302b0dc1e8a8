"""The YAML presets of `synthface train --config NAME` (package data; see config.py)."""
