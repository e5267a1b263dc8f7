"""Metadata read from the files that travel with an asset (subtitles, XMP, camera XML).

Pure parsers (bytes in, plain data or a clear error out) plus the server-side import
that stores what they find.  Contract: docs/processing.md, "Sidecars".
"""
