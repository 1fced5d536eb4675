"""The screens of a clinic session, one module each; every screen is a QWidget updated from
snapshots.

Every ``refresh(...)`` method is called by the window's timer in the GUI thread with plain,
already-copied data (:class:`~emgfeedback.views.gui.live.LiveStatus`,
:class:`~emgfeedback.app.feedback.FeedbackSnapshot`, the controller's
:class:`~emgfeedback.views.gui.controller.Guidance`, ring-buffer copies); screens never touch the
session, the source or the filters.

``connect``      board, patient, program          ``check``        electrode lights, placement
``calibration``  rest / MVC guidance and values   ``exercise``     %MVC bars (clinic)
``traces``       signals and events               ``summary``      rep table, clinician's notes
``patient``      the home screen: big words, face map, start / pause / stop
"""

from emgfeedback.views.gui.screens.calibration import CalibrationScreen, muscle_of
from emgfeedback.views.gui.screens.check import CheckScreen
from emgfeedback.views.gui.screens.common import placement_figure_path
from emgfeedback.views.gui.controller import ConnectRequest
from emgfeedback.views.gui.screens.connect import ConnectScreen
from emgfeedback.views.gui.screens.patient import PatientScreen, SoundControls
from emgfeedback.views.gui.screens.exercise import ExerciseScreen, symmetry_text
from emgfeedback.views.gui.screens.summary import SummaryScreen, rep_rows, session_figures
from emgfeedback.views.gui.screens.traces import TracesScreen

__all__ = [
    "CalibrationScreen",
    "CheckScreen",
    "ConnectRequest",
    "ConnectScreen",
    "ExerciseScreen",
    "PatientScreen",
    "SoundControls",
    "SummaryScreen",
    "TracesScreen",
    "muscle_of",
    "placement_figure_path",
    "rep_rows",
    "session_figures",
    "symmetry_text",
]
