"""Attaching to a SQLite handle: the C API, the binders, the native reader, host
connections."""
