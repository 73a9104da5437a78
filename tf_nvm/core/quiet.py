"""Whether TensorFlow's and the TFLite converter's own output is shown, and how it is silenced.

TensorFlow, the TFLite converter and LiteRT write start-up and progress lines
from native code straight to file descriptor 2 (``failed call to cuInit``,
``fully_quantize: 0, inference_type: 6 ...``, ``Created TensorFlow Lite
XNNPACK delegate``), bypassing Python's ``sys.stderr`` and ``warnings``.
tf_nvm silences them by default: ``import tf_nvm`` sets ``TF_CPP_MIN_LOG_LEVEL=3``
(unless the user set a level) before TensorFlow loads, whoever imports it;
tf_nvm redirects file descriptor 2 where it loads TensorFlow itself
(`tf_nvm.keras.backend`), converts (`tflite_export.export_tflite`) and creates
interpreters (`tflite_export.run_litert`). They are shown when the user asks:

* ``TF_NVM_VERBOSE=1`` in the environment (or ``tf-nvm --verbose``);
* ``TF_CPP_MIN_LOG_LEVEL=0`` set by the user (TensorFlow's own "show every
  log line"). A higher level the user set is kept as it is (tf_nvm never
  overrides it) and tf_nvm still silences the lines that no level filters
  (the converter's ``fully_quantize`` line, LiteRT's delegate line, the lines
  TensorFlow prints before its logging starts).

Numpy only, no TensorFlow: a foundation module.
"""

import contextlib
import os
import sys
import tempfile
import warnings
from typing import Iterator

__all__ = ["VERBOSE_ENV", "QUIET_ENV", "CONVERTER_WARNINGS", "wanted", "quiet_tensorflow_log_level",
           "restore_tensorflow_log_level", "native_output_silenced"]

VERBOSE_ENV = "TF_NVM_VERBOSE"
"""Set to ``1`` to see TensorFlow's, the converter's and LiteRT's own output."""

QUIET_ENV = "TF_NVM_QUIET_TENSORFLOW"
"""Set by the ``tf-nvm`` command: ``1`` silences (the default), ``0`` shows (``--verbose``)."""

CONVERTER_WARNINGS = (
    r"Statistics for quantized inputs were expected",  # the int8 input's range comes from the spec, not statistics
)
"""Python warnings of the TFLite converter that every tf_nvm export triggers by design (message regexes)."""


def wanted() -> bool:
    """Whether TensorFlow's own output should be silenced now.

    Returns:
        False when ``TF_NVM_VERBOSE=1``, or ``TF_NVM_QUIET_TENSORFLOW=0`` (``tf-nvm --verbose``), or the user set
        ``TF_CPP_MIN_LOG_LEVEL=0``; True otherwise.
    """
    if os.environ.get(VERBOSE_ENV, "").strip() not in ("", "0"):
        return False
    quiet = os.environ.get(QUIET_ENV)
    if quiet in ("0", "1"):
        return quiet == "1"
    user_level = None if os.environ.get(_SET_BY_TF_NVM) == "1" else os.environ.get("TF_CPP_MIN_LOG_LEVEL")
    return (user_level or "").strip() != "0"


_SET_BY_TF_NVM = "_TF_NVM_SET_TF_CPP_MIN_LOG_LEVEL"
"""Marks a ``TF_CPP_MIN_LOG_LEVEL`` that tf_nvm itself set (so later checks do not take it for the user's)."""


def quiet_tensorflow_log_level() -> None:
    """Sets ``TF_CPP_MIN_LOG_LEVEL=3`` for TensorFlow's C++ logging when silencing and the user set no level."""
    if "TF_CPP_MIN_LOG_LEVEL" not in os.environ:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
        os.environ[_SET_BY_TF_NVM] = "1"


def restore_tensorflow_log_level() -> None:
    """Removes a ``TF_CPP_MIN_LOG_LEVEL`` that tf_nvm set (``tf-nvm --verbose`` after ``import tf_nvm``)."""
    if os.environ.pop(_SET_BY_TF_NVM, None) == "1":
        os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)


@contextlib.contextmanager
def native_output_silenced(active: bool | None = None) -> Iterator[None]:
    """Captures what native code writes to file descriptor 2 inside the block, and Python's converter warnings.

    The captured bytes are dropped when the block succeeds and written back to stderr when it raises (so a failing
    conversion still shows the converter's own diagnostics).

    Args:
        active: True to silence, False to let everything through; None (default) asks `wanted`.

    Yields:
        None.
    """
    if active is None:
        active = wanted()
    if not active:
        yield
        return
    with warnings.catch_warnings():
        for message in CONVERTER_WARNINGS:
            warnings.filterwarnings("ignore", message=message, category=UserWarning)
        sys.stderr.flush()
        saved = os.dup(2)
        with tempfile.TemporaryFile() as capture:
            os.dup2(capture.fileno(), 2)
            try:
                yield
            except BaseException:
                os.dup2(saved, 2)
                capture.seek(0)
                captured = capture.read()
                if captured:
                    sys.stderr.write(captured.decode("utf-8", "replace"))
                    sys.stderr.flush()
                raise
            finally:
                os.dup2(saved, 2)
                os.close(saved)
