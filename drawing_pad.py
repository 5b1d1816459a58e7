"""The drawing canvas (streamlit-drawable-canvas 0.13) without its toolbar, sending each stroke sooner.

The component's toolbar has no off switch: while hidden it still lies over the top of the
canvas, so a stroke that starts there draws nothing and a tap in the top-right corner
presses its "reset", and on touch screens it never shows. The component is registered
again under its own name, with its stylesheet plus one rule that takes the toolbar out of
the page; the app's Undo and Clear buttons replace it. Upstream, the same fix is an option
like the original package's `display_toolbar=False`.

The component also waits 200 ms after each stroke before it sends the drawing, and that
wait came before every answer while predicting as you draw. Its script is served from
drawing_pad_assets/, the package's own with that one constant set to SEND_DELAY_MS
(see the folder's README; tests/test_browser.py checks the two files differ in nothing else).
"""

from pathlib import Path

import streamlit as st
import streamlit_drawable_canvas
from streamlit.components.v2.get_bidi_component_manager import get_bidi_component_manager
from streamlit.components.v2.manifest_scanner import ComponentConfig, ComponentManifest
from streamlit_drawable_canvas import CanvasResult, st_canvas

__all__ = ["CanvasResult", "drawing_canvas", "without_last_stroke"]

PACKAGE, NAME, VERSION = "streamlit-drawable-canvas", "streamlit_drawable_canvas", "0.13.0"  # the patched release
COMPONENT = f"{PACKAGE}.{NAME}"  # the package's name for it, which st_canvas mounts
ASSETS = Path(streamlit_drawable_canvas.__file__).parent / "frontend" / "build"
HERE = Path(__file__).resolve().parent
PATCHED_ASSETS = "drawing_pad_assets"  # beside this file: the only files served from it are the script and LICENSE
# The package's script waits 200 ms after a stroke before it sends the drawing; 50 ms still
# sends a quick two-stroke digit once, and no longer comes before the answer.
SEND_DELAY_MS = 50
PATCHED_SCRIPT = f"index-*-send{SEND_DELAY_MS}.js"
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
    # The component's files are served from its asset folder: here, this project's patched script.
    manifest = ComponentManifest(
        name=PACKAGE, version=VERSION, components=[ComponentConfig(name=NAME, asset_dir=PATCHED_ASSETS)]
    )
    manager.register_from_manifest(manifest, HERE)
    st.components.v2.component(
        COMPONENT, js=PATCHED_SCRIPT, css=STYLE, html='<div class="canvas-root"></div>', isolate_styles=True
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
