"""The answer read out by screen readers, and brought into view after Predict (below the canvas on a phone).

A live region is announced when its text changes, not when it is put on the page with its
text, so one region stays mounted under a fixed key and only its text changes.
"""

import streamlit as st

HTML = '<div class="answer-announcer" role="status" aria-live="polite" aria-atomic="true"></div>'
# Visually hidden but read: the usual screen-reader-only rule.
CSS = """
.answer-announcer { position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0; overflow: hidden;
  clip-path: inset(50%); white-space: nowrap; border: 0; }
"""
# The answer's element may come after this one in the same app run, so it is looked for on each
# animation frame, for at most WAIT_MS, before it is scrolled to: a session's first answer loads
# the charts' code and the second model, which on a busy machine takes more than a second.
JS = """
const broughtIntoView = new WeakMap();
const WAIT_MS = 15000;
function bringIntoView(selector, deadline) {
  const target = document.querySelector(selector);
  if (target) target.scrollIntoView({block: "nearest"});
  else if (performance.now() < deadline) requestAnimationFrame(() => bringIntoView(selector, deadline));
}
export default function ({data, parentElement}) {
  const region = parentElement.querySelector(".answer-announcer");
  if (region.textContent !== data.text) region.textContent = data.text;
  if (data.prediction && broughtIntoView.get(parentElement) !== data.prediction) {
    broughtIntoView.set(parentElement, data.prediction);
    const deadline = performance.now() + WAIT_MS;
    requestAnimationFrame(() => bringIntoView(data.target, deadline));
  }
}
"""


def announce(text, target, prediction=None, key="announcer"):
    """Say text to screen readers; for a new prediction number, bring the element matching target into view."""
    # Registered on every run (the same definition again is a dictionary entry): a new Streamlit
    # runtime, a test's or after a reload, starts without it.
    component = st.components.v2.component("digit_app.announcer", html=HTML, css=CSS, js=JS, isolate_styles=True)
    component(
        key=key, data={"text": text, "target": target, "prediction": prediction}, width="content", height="content"
    )
