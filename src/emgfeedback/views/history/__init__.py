"""Patient history, apart from the session report: the database, imports and progress.

* :mod:`.db`: the SQLite file (:class:`History`, :func:`store_session`, what the GUI calls when
  a recorded session stops);
* :mod:`.importer`: ``emgfeedback history import FOLDER``;
* :mod:`.progress`: trends per day with a minimum span, the comparison of a session with the
  previous one (:func:`context_for`, shown in its report), ``emgfeedback progress PATIENT``.
"""

from __future__ import annotations

from emgfeedback.views.history.db import (
    DB_ENV,
    SCHEMA_VERSION,
    History,
    StoredSession,
    default_db_path,
    session_content_id,
    store_session,
)
from emgfeedback.views.history.importer import ImportResult, import_folder
from emgfeedback.views.history.progress import (
    MIN_TREND_DAYS,
    MIN_TREND_SPAN_DAYS,
    Trend,
    context_for,
    render_progress_html,
    trends,
    write_progress,
)

__all__ = [
    "DB_ENV",
    "MIN_TREND_DAYS",
    "MIN_TREND_SPAN_DAYS",
    "SCHEMA_VERSION",
    "History",
    "ImportResult",
    "StoredSession",
    "Trend",
    "context_for",
    "default_db_path",
    "import_folder",
    "render_progress_html",
    "session_content_id",
    "store_session",
    "trends",
    "write_progress",
]
