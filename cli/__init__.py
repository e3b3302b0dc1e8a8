"""Thin command layer: parse flags, call one library function, print."""
