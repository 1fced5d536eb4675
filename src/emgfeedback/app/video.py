"""The session's video, Qt-free: a camera or a video file beside the EMG (:class:`SessionSpec.video
<emgfeedback.app.session.SessionSpec>`), recorded beside the EDF+ while the session records, and,
when a replayed recording has a video, that video in step with the replayed EMG.

Called by :class:`~emgfeedback.app.session.Session` once its source is open (session thread);
OpenCV and MediaPipe are imported only here, when a session has video.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from emgfeedback.dsp.chain import Chain
from emgfeedback.errors import EmgError

__all__ = ["attach_video", "recorded_video"]

log = logging.getLogger(__name__)


def recorded_video(path: Path | str) -> tuple[dict[str, Any], int] | None:
    """The ``"video"`` table of the recording ``path``'s sidecar and its ``first_sample``, or
    ``None`` when the recording has no video."""
    from emgfeedback.io.edf.sidecar import read_sidecar

    meta = read_sidecar(path)
    table = meta.get("video")
    if not isinstance(table, dict):
        return None
    return table, int(meta.get("first_sample") or 0)


def attach_video(session: Any, chain: Chain) -> Any:
    """The video consumer of ``session`` (an :class:`~emgfeedback.app.session.Session`, not
    imported here: no module cycle) (a :class:`~emgfeedback.video.live.VideoFeed` or
    :class:`~emgfeedback.video.live.VideoReplay`), started, or ``None``.  A video that cannot
    start leaves the EMG session running: the reason is in ``session.video_error``."""
    spec = session.spec
    try:
        if spec.video is not None:
            from emgfeedback.video.live import VideoFeed

            feed = VideoFeed(spec.video, chain.fs)
            rc = session.recording
            if rc is not None:
                rc.on_started.append(lambda rec, first: feed.start_recording(rec.path, first))
                rc.on_closing.append(lambda rec: feed.stop_recording())
                if session.pipeline.recorder is not None:  # recording from the first sample
                    feed.start_recording(session.pipeline.recorder.path, session.pipeline.samples)
            feed.start()
            return feed
        path = getattr(session.pipeline.source, "path", None)
        if spec.kind == "replay" and path is not None:
            found = recorded_video(path)
            if found is None:
                return None
            from emgfeedback.video import missing

            why = missing()
            if why is not None:
                session.video_error = f"this recording has a video; to replay it: {why}"
                log.info(session.video_error)
                return None
            from emgfeedback.video.live import VideoReplay

            table, first = found
            return VideoReplay(table, Path(path).parent, first)
    except EmgError as exc:
        session.video_error = str(exc)
        log.warning("no video in this session: %s", exc)
    return None
