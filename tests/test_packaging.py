"""The built wheel carries the bundled recipes and the PEP 561 markers: `tf-nvm recipes` works from a fresh install.

Also: the extras of setup.cfg (the light core without TensorFlow, the README's two commands' extras).
"""

import configparser
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPERIMENTS = sorted(name[:-5] for name in os.listdir(os.path.join(ROOT, "recipes", "experiments")))
SEARCHES = sorted(name[:-5] for name in os.listdir(os.path.join(ROOT, "searches")))
RECIPES = sorted(name[:-5] for name in os.listdir(os.path.join(ROOT, "recipes")) if name.endswith(".json"))


def _run(args, cwd, env=None):
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{args}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def _see_our_packages(python, env, cwd):
    """Lets the child venv import this interpreter's dependencies (TensorFlow, ...), after its own packages.

    `venv --system-site-packages` is not enough: run from inside a virtualenv, the child sees the BASE
    interpreter's site-packages, not this virtualenv's (where a user's TensorFlow is). A ``.pth`` file in
    the child's site-packages lists the folders this process imports packages from; plain path lines add
    them after the child's own site-packages (so the installed wheel wins) and run none of their ``.pth``
    files (so no editable-install finder of the checkout comes along).
    """
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                   cwd=cwd, env=env).strip()
    ours = [path for path in sys.path if os.path.basename(path) in ("site-packages", "dist-packages")
            and os.path.isdir(path)]
    with open(os.path.join(purelib, "_tf_nvm_test_parent.pth"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(ours) + "\n")


def build_wheel(tmp_path):
    """Builds this checkout's wheel into ``tmp_path/dist`` and returns its path (no dependencies fetched)."""
    # Build from a copy, so no build/ or .egg-info of an earlier build leaks into the wheel or the checkout.
    source = shutil.copytree(ROOT, tmp_path / "src", ignore=shutil.ignore_patterns(
        ".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".benchmarks", "runs"))
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
          str(tmp_path / "dist"), str(source)], cwd=tmp_path)
    (wheel,) = (tmp_path / "dist").glob("tf_nvm-*.whl")
    return wheel


def fresh_venv(tmp_path):
    """A new virtualenv ``tmp_path/venv`` (no system site packages): its python and an environment running it."""
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path)
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return venv / "bin" / "python", env


@pytest.mark.slow
def test_wheel_installs_with_its_recipes(tmp_path):
    wheel = build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        packaged = sorted(name for name in archive.namelist() if name.startswith("tf_nvm/_recipes/"))
        searches = sorted(name for name in archive.namelist() if name.startswith("tf_nvm/_searches/"))
        typed = sorted(name for name in archive.namelist() if name.endswith("py.typed"))
    assert packaged == sorted([f"tf_nvm/_recipes/{name}.json" for name in RECIPES]
                              + [f"tf_nvm/_recipes/experiments/{name}.json" for name in EXPERIMENTS])
    assert searches == sorted(f"tf_nvm/_searches/{name}.json" for name in SEARCHES)
    assert typed == ["tf_nvm/py.typed", "tflite_export/py.typed"]  # PEP 561: the type hints reach users

    python, env = fresh_venv(tmp_path)
    venv, tf_nvm_command = python.parent.parent, python.parent / "tf-nvm"
    _see_our_packages(python, env, tmp_path)
    _run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", "--no-index", str(wheel)],
         cwd=tmp_path, env=env)

    listing = _run([str(tf_nvm_command), "recipes"], cwd=tmp_path, env=env)  # three tables: recipes, experiments,
    sections = {}                                                           # search configs, a name per line
    for line in listing.splitlines():
        if line and not line.startswith(" "):
            title = sections.setdefault(line.split(" (")[0], [])
        elif line.strip():
            title.append(line.split()[0])
    assert sections == {"Training recipes": RECIPES, "Experiments": EXPERIMENTS, "Search configs": SEARCHES}
    probe = ("import json, sys, tf_nvm, tf_nvm.experiments.recipes as r\n"
             "recipe = r.load('har-2bit-unipolar')\n"
             "light = 'tensorflow' not in sys.modules\n"
             "import tf_nvm.pipeline.experiment as e, tf_nvm.nas.config as c\n"
             "print(json.dumps({'file': tf_nvm.__file__, 'dir': str(r.recipes_dir()), 'spec': recipe.spec, "
             "'tf': not light, 'experiments': e.names(), 'searches': c.names()}))\n")
    found = json.loads(_run([str(python), "-c", probe], cwd=tmp_path, env=env))
    assert found["file"].startswith(str(venv)), found  # the wheel, not the checkout or an editable install
    assert found["dir"].startswith(str(venv)) and found["dir"].endswith(os.path.join("tf_nvm", "_recipes"))
    assert found["spec"] == "paper-2bit-unipolar" and found["tf"] is False
    assert found["experiments"] == EXPERIMENTS and found["searches"] == SEARCHES


def _extras():
    """setup.cfg's install_requires and extras: {"": [requirement, ...], extra: [...]}, comments dropped."""
    parser = configparser.ConfigParser()
    parser.read(os.path.join(ROOT, "setup.cfg"), encoding="utf-8")
    lines = {"": parser["options"]["install_requires"], **parser["options.extras_require"]}
    return {name: [line.strip() for line in text.splitlines() if line.strip()] for name, text in lines.items()}


def _with_included(extras, chosen):
    """The extras ``chosen`` names plus every extra they pull in through ``tf-nvm[...]`` requirements."""
    found, todo = set(), list(chosen)
    while todo:
        name = todo.pop()
        if name not in found:
            found.add(name)
            todo += [part for line in extras[name] if line.startswith("tf-nvm[")
                     for part in line[len("tf-nvm["):line.index("]")].split(",")]
    return found


def test_tensorflow_is_an_extra_and_the_readme_commands_install_it():
    extras, stack = _extras(), {"tensorflow", "tf_keras", "tensorflow-model-optimization", "keras-tuner"}
    names = {name: {re.split(r"[\[<>=!~; ]", line)[0] for line in lines} for name, lines in extras.items()}
    assert not names[""] & stack and not names["mapping"] & stack  # the light install: core, mapping, cost
    assert names["tensorflow"] == stack
    assert all(">=" in line and "<" in line for line in extras["tensorflow"]), extras["tensorflow"]  # ranges
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as handle:
        commands = re.findall(r'^python3 -m pip install -e "\.\[([\w,-]+)\]" && .+$', handle.read(), re.MULTILINE)
    assert len(commands) == 2, commands  # the main command and the tests' command
    for chosen in commands:
        assert "tensorflow" in _with_included(extras, chosen.split(",")), chosen
    assert {"tensorflow", "export", "har-raw", "docs", "lint"} <= _with_included(extras, ["test"])
