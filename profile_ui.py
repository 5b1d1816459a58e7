"""The app's "learns your handwriting" parts: corrections under each result, the private profile in the sidebar.

A session has no profile until its user saves a correction or imports examples; the
profile is then known by a secret token kept in the page's address (?profile=TOKEN),
which the user can bookmark to come back. Nothing lists profiles: a token is the only
way to one. Once a profile has examples, the session's readings go through
`recognizer.personalised(...)`, refitted only when the number of examples changes.
"""

import numpy as np
import streamlit as st

import profiles
import strokes

QUERY_PARAMETER = "profile"
PROFILE_PARAMETER_HELP = "Keep this link private: whoever has it can see and change your examples."


@st.cache_resource(show_spinner=False)
def profile_store(path):
    """One ProfileStore per server process and database file, shared by every session."""
    return profiles.ProfileStore(path)


def store():
    return profile_store(str(profiles.configured_database_path()))


def current_token():
    """This session's profile token: the one it saved to, else the one in its address; None for none."""
    if "profile_token" not in st.session_state:
        st.session_state.profile_token = st.query_params.get(QUERY_PARAMETER)
    return st.session_state.profile_token


def leave_profile(notice=None):
    """This session forgets its profile (its address too); notice says why, in the sidebar."""
    st.session_state.profile_token = None
    st.session_state.pop("personalised", None)
    if QUERY_PARAMETER in st.query_params:
        del st.query_params[QUERY_PARAMETER]
    if notice:
        st.session_state.profile_notice = notice


def profile_examples_count():
    """How many examples this session's profile holds (0 without one); StoreError when the database fails."""
    token = current_token()
    if token is None:
        return 0
    try:
        return store().count(token)
    except profiles.UnknownProfile as error:
        leave_profile(f"{error} A new profile starts when you save a correction.")
        return 0


def personalised_reader(recognizer):
    """What reads this session's digits: personalised with its profile's examples, the recognizer alone without any."""
    st.session_state.reader = recognizer
    try:
        count = st.session_state.profile_examples = profile_examples_count()
        if count == 0:
            return recognizer
        cache_key = (current_token(), count)
        cached = st.session_state.get("personalised")
        if cached is None or cached[0] != cache_key:
            examples = store().examples(current_token())
            cached = (cache_key, recognizer.personalised(examples.images, examples.labels, list(examples.drawings)))
            st.session_state.personalised = cached
    except profiles.StoreError as error:
        st.session_state.profile_problem = str(error)
        return recognizer
    st.session_state.profile_problem = None
    st.session_state.reader = cached[1]
    return cached[1]


def ensure_profile():
    """This session's token, making a new profile on its first save (the address then holds the token)."""
    token = current_token()
    if token is None or not store().exists(token):
        token = store().create_profile()
        st.session_state.profile_token = token
    st.query_params[QUERY_PARAMETER] = token
    return token


def digit_drawings(recognition, drawing, reader):
    """Each read digit's own strokes as a strokes.Drawing on the canvas, or None where they are not known.

    The recognizer gives each digit's picture, not its strokes: the drawing is split again
    the same way, and each part is matched to a read digit by the picture the model saw.
    """
    if drawing is None:
        return [None] * len(recognition.digits)
    prepared = strokes.prepare_drawing(drawing, reader.stroke_probabilities)
    found = []
    for digit in recognition.digits:
        match = next(
            (index for index, image in enumerate(prepared.digits) if np.array_equal(image[..., 0], digit.image)), None
        )
        found.append(
            None
            if match is None
            else strokes.Drawing(drawing.width, drawing.height, drawing.brush, tuple(prepared.digit_strokes[match]))
        )
    return found


def save_corrections(recognition, chosen, drawing, reader):
    """Keep each digit whose chosen value differs from what was read; returns how many were kept."""
    drawings = digit_drawings(recognition, drawing, reader)
    rows = [
        (value, digit.image, drawings[index])
        for index, (digit, value) in enumerate(zip(recognition.digits, chosen))
        if value != digit.digit
    ]
    if rows:
        store().add_examples(ensure_profile(), rows)
    return len(rows)


def correction_ui(recognition, key, drawing=None):
    """Under a result: whether it was read with the user's examples, and "Wrong? It was ..." for each digit."""
    if recognition.status == "empty" or not recognition.digits:
        return
    examples = recognition.personalised_examples
    if examples:
        st.caption(f"Read with your {examples} example{'s' if examples != 1 else ''}.")
    saved = st.session_state.setdefault("saved_corrections", {})
    form_key = f"{key}_{id(recognition)}"  # a new reading gets a fresh form
    if form_key in saved:
        st.success(f"Thank you: {saved[form_key]} kept in your profile. Your next drawings are read with it.")
        return
    digits = recognition.digits
    with st.container(key=f"correct_{key}"):
        st.markdown("**Wrong? It was ...**" if len(digits) == 1 else "**Wrong? The digits were ...**")
        with st.container(horizontal=True, vertical_alignment="bottom"):
            chosen = [
                st.selectbox(
                    f"Digit {number}" if len(digits) > 1 else "The digit",
                    range(10),
                    index=digit.digit,
                    key=f"fix_{form_key}_{number}",
                    width=90,
                )
                for number, digit in enumerate(digits, start=1)
            ]
            pressed = st.button(
                "Save correction",
                key=f"save_{key}",  # text only: an icon's name is read out
                help="Keeps each corrected digit's 28×28 image, its strokes, the digit and the "
                "time in your private profile.",
            )
    if not pressed:
        return
    try:
        count = save_corrections(recognition, chosen, drawing, st.session_state.reader)
    except profiles.StoreError as error:
        st.error(f"Not saved: {error} Digits are still read, without your examples.")
        return
    if count == 0:
        st.info("Pick the digit it really was first, then save.")
        return
    saved[form_key] = f"{count} correction{'s' if count != 1 else ''}"
    st.rerun(scope="app")  # the sidebar shows the profile, and the next readings use the examples


def forget_profile():
    """Delete the profile and all its examples (the confirmed "Forget me")."""
    token = current_token()
    try:
        deleted = store().forget(token)
    except profiles.UnknownProfile:
        deleted = 0
    except profiles.StoreError as error:
        st.session_state.profile_notice = f"Not forgotten: {error}"
        return
    st.session_state.pop("confirm_forget", None)
    leave_profile(f"Forgotten: your profile and its {deleted} example{'s' if deleted != 1 else ''} are deleted.")


def import_examples(upload_key):
    """Add the uploaded zip's examples to this session's profile (a new one when it has none)."""
    upload = st.session_state.get(upload_key)
    if upload is None:
        return
    try:
        examples = profiles.read_examples_zip(upload.getvalue())
        added = store().import_examples(ensure_profile(), examples)
    except (profiles.ExampleError, profiles.StoreError) as error:
        st.session_state.profile_notice = f"Not imported: {error}"
        return
    st.session_state.profile_notice = f"Imported {added} example{'s' if added != 1 else ''}."
    st.session_state.profile_import_generation = st.session_state.get("profile_import_generation", 0) + 1


def profile_link(token):
    """The page's address with this profile's token: bookmarking it brings the profile back."""
    base = (st.context.url or "").split("?")[0]
    return f"{base}?{QUERY_PARAMETER}={token}"


def profile_sidebar_ui():
    """The sidebar's "Your handwriting": what is kept, the secret link, export, import and Forget me."""
    st.header("Your handwriting")
    notice = st.session_state.pop("profile_notice", None)
    if notice:
        st.info(notice)
    problem = st.session_state.get("profile_problem")
    if problem:
        st.warning(f"Your examples cannot be used right now: {problem} Digits are still read, without them.")
        return
    token = current_token()
    count = st.session_state.get("profile_examples", 0) if token else 0
    examples = f"{count} example{'s' if count != 1 else ''}"
    kept = f"Your private profile keeps **{examples}**." if token else "Nothing you draw or upload is kept."
    st.markdown(kept)
    # In a popover, drawn only while open: the uploader and texts would cost every Predict (see app.sidebar_ui).
    with st.popover("Manage your examples", width="stretch"):
        profile_details_ui(token, examples)


def profile_details_ui(token, examples):
    """What a profile keeps, the secret link, export, import and Forget me (with a confirmation)."""
    if token is None:
        st.markdown(
            "When you correct an answer, that digit's 28×28 image, its pen strokes, the true digit and the "
            "time are kept in a private profile, and your next drawings are read with your own examples."
        )
    else:
        st.markdown(
            f"For each of your {examples}: the digit's 28×28 image, its pen strokes, the true digit and the "
            "time. Nothing else, and no other page shows them."
        )
        st.caption(f"Your secret link (bookmark it to come back). {PROFILE_PARAMETER_HELP}")
        st.code(profile_link(token), language=None, wrap_lines=True)
        st.download_button(
            "Download my examples (zip)",
            lambda: profiles.examples_zip(store().examples(token)),
            file_name="my_digits.zip",
            mime="application/zip",
            on_click="ignore",
            key="profile_export",
        )
    # A new key after each import empties the uploader, so the same zip is not imported again.
    upload_key = f"profile_import_{st.session_state.get('profile_import_generation', 0)}"
    st.file_uploader(
        "Import examples (a zip from *Download my examples*)",
        type=["zip"],
        key=upload_key,
        on_change=import_examples,
        args=(upload_key,),
        help="Restores a profile: the zip's examples join this session's profile.",
    )
    if token is None:
        return
    if not st.session_state.get("confirm_forget"):
        st.button("Forget me", key="forget", on_click=lambda: st.session_state.update(confirm_forget=True))
        return
    st.warning(f"Delete your profile and its {examples} for good?")
    with st.container(horizontal=True):
        st.button("Yes, forget me", key="forget_confirm", type="primary", on_click=forget_profile)
        st.button("Cancel", key="forget_cancel", on_click=lambda: st.session_state.pop("confirm_forget", None))
