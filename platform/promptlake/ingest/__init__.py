"""Ingest: validation, the buffered writer and the importers."""
