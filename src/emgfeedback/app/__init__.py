"""The one Qt-free orchestrator: what the user asked for -> source -> chain -> consumers.

``session``   :class:`~emgfeedback.app.session.SessionSpec` and :class:`~emgfeedback.app.session.Session`
              (live: demo, record, replay; caller thread or worker thread), the CLI's foreground run
``pipeline``  :class:`~emgfeedback.app.pipeline.Pipeline`: source -> [recording grid] -> chain ->
              recorder -> consumers, and the ``Consumer`` contract (``feed``/``close``)
``recording`` start/stop of a session's recording between chunks
``program``   programs, cues and the program runner (leading or following the source's cues)
``feedback``  the clinical engine's state for views (cue, %MVC, events, calibration)
``analyze``   offline: a file replayed through the same pipeline -> ``Analysis``
``evaluate``  scoring detections against the simulator's ground truth
``info``      what a file holds and how good its signal is (``emgfeedback info``)
``batch``     one job over many files: serially, a process pool, or a Dask cluster

Layers (docs/architecture.md): app imports clinical, dsp, io and sources; views and the command
line import app; nothing below imports app.
"""
