"""Signal sources behind one contract (:class:`emgfeedback.stream.Source`).

The table of kinds and :func:`~emgfeedback.sources.registry.open_source` are in
:mod:`emgfeedback.sources.registry`; importing this package imports no source.
"""
