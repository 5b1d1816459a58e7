"""The drawing canvas (streamlit-drawable-canvas 0.13) without its toolbar, and the undo the app offers instead.

The component's toolbar has no off switch: while hidden it still lies over the top of the
canvas, so a stroke that starts there draws nothing and a tap in the top-right corner
presses its "reset", and on touch screens it never shows. The component is registered
again under its own name, with its own script and stylesheet plus one rule that takes
the toolbar out of the page; the app's Undo and Clear buttons replace it. Upstream, the
same fix is an option like the original package's `display_toolbar=False`.
"""

from pathlib import Path

import streamlit as st
import streamlit_drawable_canvas
from streamlit.components.v2.get_bidi_component_manager import get_bidi_component_manager
from streamlit_drawable_canvas import CanvasResult, st_canvas

__all__ = ["CanvasResult", "drawing_canvas", "without_last_stroke"]

COMPONENT = "streamlit-drawable-canvas.streamlit_drawable_canvas"  # the package's name for it, which st_canvas mounts
ASSETS = Path(streamlit_drawable_canvas.__file__).parent / "frontend" / "build"
NO_TOOLBAR = "\n.dc-toolbar { display: none !important; }\n"  # !important: the script sets display inline
(_STYLESHEET,) = ASSETS.glob("index-*.css")  # the package's one stylesheet, inline from here on
STYLE = _STYLESHEET.read_text() + NO_TOOLBAR


def register_without_toolbar():
    """Register the component again, as the package does, with the toolbar taken out of its stylesheet.

    Done on every run, as cheap as a dictionary entry: a new Streamlit runtime (a test's, or
    after a reload) starts with the package's own registration again.
    """
    manager = get_bidi_component_manager()
    definition = manager.get(COMPONENT)
    if definition is not None and definition.css == STYLE:
        return
    # Removed first: replacing a registered component logs a warning meant for two packages that clash.
    manager.unregister(COMPONENT)
    st.components.v2.component(
        COMPONENT, js="index-*.js", css=STYLE, html='<div class="canvas-root"></div>', isolate_styles=True
    )


def drawing_canvas(**settings):
    """st_canvas(**settings), without the toolbar."""
    register_without_toolbar()
    return st_canvas(**settings)


def without_last_stroke(objects, undo_count):
    """An initial drawing of the canvas with every object but the last; undo_count makes each one new to the canvas.

    The canvas loads an initial drawing only when it differs from the one it loaded last, so
    undoing twice to the same strokes would otherwise be ignored the second time.
    """
    return {"objects": list(objects[:-1]), "undo": undo_count}
