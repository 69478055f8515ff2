"""``.keras`` files (``model.save``), loaded with Keras safe mode after their archive is checked."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import keras

from attribution.rl.archives import POLICY_LIMITS, ArchiveError, open_archive
from attribution.rl.errors import PolicyError


def load_keras(path: Path) -> tuple[keras.Model, str]:
    """(the model, its description). A file that carries code (a Lambda layer) or needs a class of its
    own is refused with a message that says how to save one that loads."""
    if not zipfile.is_zipfile(path):
        raise PolicyError(f"{path.name} is not a Keras archive (expected a .keras file, a zip written by model.save).")
    try:  # Keras inflates whatever the archive holds: its sizes first, then that every member keeps to its own
        with open_archive(path, POLICY_LIMITS) as archive:
            archive.verify()
    except ArchiveError as error:
        raise PolicyError(str(error)) from None
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:
        text = str(error)
        if "safe_mode" in text or "Lambda" in text:
            raise PolicyError(
                f"{path.name} carries code (a Lambda layer or similar). Loading it would run that code, "
                "so it is refused; save the model with built-in layers only."
            ) from None
        custom = re.search(r"Could not locate (?:class|function) '([^']+)'", text)
        if custom:
            raise PolicyError(
                f"{path.name} holds a model of a class of its own ({custom.group(1)!r}): the file does not carry its "
                "code, and code from elsewhere is never run here. Save it as a functional or Sequential model of "
                "built-in layers: outputs = your_model(inputs := keras.Input(obs_shape)); "
                "keras.Model(inputs, outputs).save('policy.keras')."
            ) from None
        raise PolicyError(
            f"{path.name} could not be read as a Keras model: {type(error).__name__}: {text[:300]}"
        ) from None
    if not isinstance(model, keras.Model):
        raise PolicyError(f"{path.name} holds a {type(model).__name__}, not a keras.Model.")
    return model, f"Keras {type(model).__name__.lower()} model, {len(model.layers)} layers"
