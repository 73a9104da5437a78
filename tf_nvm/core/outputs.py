"""Output folders: the one rule every command that writes a folder (``--out``) follows.

A command may write into its output folder when the folder is

* missing or empty;
* its own: the marker file `MARKER` names the command (or, for folders written before the marker existed, the
  command's own files are there: `LEGACY_FILES`);
* the output of another tf_nvm command and ``overwrite`` is given (the earlier output is replaced).

A folder holding files that no tf_nvm command wrote is never written into nor removed, ``overwrite`` or not. A path
that names a file, holds a NUL character, or cannot be written is refused before any computation. Every refusal is
a named error (`tf_nvm.core.errors.OutputFolderError`, or the command's own class) saying what was found, what is
allowed and the fix.

`claim_output_folder` checks; `mark_output_folder` writes the marker; `staged_output` gives a command whose
outputs must commit together (``simulate``, ``cost``) a staging folder beside the target that replaces the target
in one step when the command finishes: an interrupted command leaves the earlier output whole (never files of two
runs side by side), and its staging folder is cleaned up by the next command on the same target.

Foundation layer: imports no TensorFlow and no Keras.
"""

import contextlib
import os
import re
import secrets
import shutil
from typing import Any, Iterator

from tf_nvm.core.atomic import write_json_atomic
from tf_nvm.core.errors import OutputFolderError
from tf_nvm.core.safe_io import read_json
from tf_nvm.core.version import __version__

__all__ = ["MARKER", "COMMANDS", "LEGACY_FILES", "claim_output_folder", "folder_owner", "mark_output_folder",
           "staged_output", "final_paths"]

MARKER = "tf_nvm_output.json"
"""The file naming the command that wrote a folder: ``{"format": "tf_nvm.output", "command": ..., ...}``."""

_FORMAT = "tf_nvm.output"
_MAX_MARKER_BYTES = 64 << 10

COMMANDS = {"train": "run", "run": "experiment run", "search": "search", "simulate": "simulation", "cost": "cost"}
"""Every command that writes a folder, with the noun its messages use for that folder's contents."""

LEGACY_FILES = {"train": ("run.json", "metrics.json", "recipe.json"), "run": ("experiment.json",),
                "search": ("search.json",), "simulate": (), "cost": ()}
"""Files that identify a folder a command wrote before `MARKER` existed (simulate and cost folders of that time
are not told apart from a user's ``results.json``: they are refused, and deleting them by hand is the fix)."""

_LEFTOVER = re.compile(r"\.(?P<name>.+)\.tf_nvm-(?P<kind>staging|old)-(?P<pid>\d+)-[0-9a-f]{8}")


def _command(command):
    if command not in COMMANDS:
        raise OutputFolderError(f"output folder: command {command!r} is not one that writes a folder; allowed: "
                                f"{sorted(COMMANDS)}. Fix: add it to tf_nvm.core.outputs.COMMANDS.")
    return command


def _text(path, option, error):
    if not isinstance(path, (str, os.PathLike)):
        raise error(f"{option}: value {path!r} ({type(path).__name__}) is not a folder path; allowed: a str or "
                    "os.PathLike. Fix: pass a folder name.")
    text = os.fspath(path)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if not text or "\x00" in text:
        raise error(f"{option}: value {text!r} is not a folder path (empty, or holding a NUL character). Fix: pass a "
                    "folder name.")
    return text


def folder_owner(path: str | os.PathLike[str]) -> str | None:
    """The command that wrote folder ``path`` (its `MARKER`, else its `LEGACY_FILES`), or None.

    A marker that cannot be read as a small JSON object naming a known command counts as no marker.
    """
    marker = os.path.join(path, MARKER)
    if os.path.isfile(marker) and not os.path.islink(marker):
        try:
            found = read_json(marker, max_bytes=_MAX_MARKER_BYTES, what="output-folder marker", error=OutputFolderError)
        except OutputFolderError:
            found = None
        if isinstance(found, dict) and found.get("format") == _FORMAT and found.get("command") in COMMANDS:
            return found["command"]
    for command, names in LEGACY_FILES.items():
        if any(os.path.isfile(os.path.join(path, name)) for name in names):
            return command
    return None


def _what(command):
    names = ", ".join((MARKER,) + LEGACY_FILES[command])
    return f"{COMMANDS[command]} (no {names})"


def claim_output_folder(path: str | os.PathLike[str], command: str, overwrite: bool = False, *,
                        error: type[Exception] = OutputFolderError, option: str = "--out") -> str:
    """Checks that ``command`` may write its output to folder ``path`` (see the module docstring for the rule).

    Nothing is written or removed, except that a missing parent folder is created to check it can hold the output.

    Args:
        path: the output folder (str or os.PathLike).
        command: the command writing it, one of `COMMANDS`.
        overwrite: the user allows replacing the output of another tf_nvm command there.
        error: the tf_nvm error class raised (a command keeps its own: ``RunFolderError`` for ``train``, ...).
        option: the argument named in messages.

    Returns:
        ``"missing"``, ``"empty"``, ``"own"`` (written by ``command``) or ``"other"`` (another command's output,
        allowed by ``overwrite``).

    Raises:
        ``error``: the path is not a str, is empty or holds a NUL, names a file, its folder cannot be written, it
            holds files no tf_nvm command wrote, or another command's output without ``overwrite``.
    """
    command = _command(command)
    text = _text(path, option, error)
    if os.path.lexists(text) and not os.path.isdir(text):
        what = "a broken symbolic link" if not os.path.exists(text) else "a file"
        raise error(f"{option} {text!r} is {what}; allowed: a folder (missing, empty, or the output of an earlier "
                    f"`tf-nvm {command}`). Fix: pass another {option}.")
    state = "missing"
    if os.path.isdir(text):
        try:
            entries = [name for name in os.listdir(text) if not _LEFTOVER.fullmatch(name)]
        except OSError as err:
            raise error(f"{option} {text!r} cannot be listed: {err.strerror or err}. Fix: pass a folder you may read "
                        f"and write, or another {option}.") from None
        state = "empty"
        if entries:
            owner = folder_owner(text)
            if owner is None:
                raise error(f"output folder {text!r} is not empty and holds no {_what(command)}; tf_nvm never "
                            f"writes into or removes it. Fix: pass an empty or new {option}.")
            if owner == command:
                state = "own"
            elif not overwrite:
                raise error(f"output folder {text!r} holds the output of `tf-nvm {owner}`; allowed: a missing or "
                            f"empty folder, or the output of `tf-nvm {command}`. Fix: pass another {option}, or "
                            "--overwrite to replace it.")
            else:
                state = "other"
    _check_writable(os.path.dirname(os.path.abspath(text)), text, option, error)
    return state


def _check_writable(parent, text, option, error):
    """A folder can be created (and renamed) in ``parent``: probed with a temporary folder, removed at once."""
    try:
        os.makedirs(parent, exist_ok=True)
        probe = os.path.join(parent, f".{os.path.basename(text) or 'out'}.tf_nvm-staging-{os.getpid()}-"
                                     f"{secrets.token_hex(4)}")
        os.mkdir(probe)
        os.rmdir(probe)
    except OSError as err:
        raise error(f"{option} {text!r} cannot be written: {err.strerror or err} ({type(err).__name__}). Fix: pass a "
                    "folder in a place you may write.") from None


def mark_output_folder(path: str | os.PathLike[str], command: str) -> None:
    """Writes `MARKER` into folder ``path`` (created), naming ``command`` as its owner."""
    os.makedirs(path, exist_ok=True)
    write_json_atomic(os.path.join(path, MARKER), {"format": _FORMAT, "command": _command(command),
                                                   "tf_nvm_version": __version__})


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _clean_leftovers(target):
    """Removes staging folders of dead commands beside ``target``; restores an earlier output a killed swap moved
    aside (when nothing took its place)."""
    parent, name = os.path.split(target)
    with contextlib.suppress(OSError):
        for entry in sorted(os.listdir(parent)):
            found = _LEFTOVER.fullmatch(entry)
            if not found or found["name"] != name or _alive(int(found["pid"])):
                continue
            leftover = os.path.join(parent, entry)
            if found["kind"] == "old" and not os.path.lexists(target):
                os.rename(leftover, target)
            else:
                shutil.rmtree(leftover, ignore_errors=True)


@contextlib.contextmanager
def staged_output(path: str | os.PathLike[str], command: str, overwrite: bool = False, *,
                  error: type[Exception] = OutputFolderError, option: str = "--out") -> Iterator[str]:
    """Context manager: a staging folder that replaces output folder ``path`` when the block finishes.

    The rule of `claim_output_folder` is checked first, and again just before the swap (another process may have
    written there meanwhile). The block writes every output into the yielded folder; on success `MARKER` is added
    and the staging folder takes the place of ``path`` (the earlier output is moved aside, then removed). On any
    exception, or when the process is killed, ``path`` keeps its earlier content whole.

    Args:
        path, command, overwrite, error, option: as `claim_output_folder`.

    Yields:
        the staging folder (str), beside ``path``; file paths recorded in the outputs should be made final with
        `os.path.relpath` against it (the folder is renamed to ``path``).
    """
    claim_output_folder(path, command, overwrite, error=error, option=option)
    target = os.path.realpath(_text(path, option, error))  # a symbolic link to a folder: swap at its target
    parent, name = os.path.split(target)
    _clean_leftovers(target)
    staging = os.path.join(parent, f".{name}.tf_nvm-staging-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        os.mkdir(staging)
    except OSError as err:
        raise error(f"{option} {os.fspath(path)!r} cannot be written: {err.strerror or err}. Fix: pass a folder in a "
                    "place you may write.") from None
    try:
        yield staging
        mark_output_folder(staging, command)
        claim_output_folder(target, command, overwrite, error=error, option=option)
        old = None
        if os.path.isdir(target):
            old = os.path.join(parent, f".{name}.tf_nvm-old-{os.getpid()}-{secrets.token_hex(4)}")
            os.rename(target, old)
        try:
            os.rename(staging, target)
        except BaseException:
            if old is not None:
                os.rename(old, target)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def final_paths(files: Any, staging: str, out: str | os.PathLike[str]) -> Any:
    """``files`` (a path, or a dict / list / tuple of them, nested) with paths inside ``staging`` moved to where
    they will be once `staged_output` has renamed ``staging`` to ``out`` (absolute paths)."""
    if isinstance(files, dict):
        return {key: final_paths(value, staging, out) for key, value in files.items()}
    if isinstance(files, (list, tuple)):
        return type(files)(final_paths(value, staging, out) for value in files)
    if isinstance(files, (str, os.PathLike)):
        relative = os.path.relpath(os.fspath(files), staging)
        if not relative.startswith(os.pardir):
            return os.path.abspath(os.path.join(os.fspath(out), relative))
    return files
