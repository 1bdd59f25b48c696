"""Capture sessions at a site: one subject, one label, a sidecar that says who, what and where (docs/site-loop.md)."""
