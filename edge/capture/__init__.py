"""Frame sources. Pick one with :func:`edge.capture.source.open_source` and a spec string."""

from edge.capture.source import SOURCE_KINDS, FrameSource, SourceOptions, open_source, parse_spec

__all__ = ["SOURCE_KINDS", "FrameSource", "SourceOptions", "open_source", "parse_spec"]
