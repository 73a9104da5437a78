"""Runs every command of the README and the user guide, in order, as a new user would; reports rc and time.

The commands are the lines of the fenced ```bash blocks of README.md and then of the guide pages (docs/guide/,
in the order of mkdocs.yml's navigation); ```text blocks (synopses, placeholders, other machines) are shown, not
run. A command given twice (the guide repeats the README's main command) runs once. Lines ending in a backslash
continue on the next line; blank lines and ``#`` comment lines are skipped.

All commands run in ONE bash process, in FOLDER (a fresh clone of this repository, typically), so that
``. .venv/bin/activate`` holds for the commands after it, and ``runs/paper-har-quick`` made by the main command is
there for the follow-on commands. Each command's output goes to ``LOG_DIR/NN.log``; a table of rc and seconds
per command is printed and written to ``LOG_DIR/results.json``.

Run (acceptance of issue 27, in a fresh clone with a fresh virtualenv, HOME and pip cache):

    python3 benchmarks/readme_commands.py /path/to/fresh/clone
    python3 benchmarks/readme_commands.py . --list                               # only print the commands
    python3 benchmarks/readme_commands.py . --skip 'venv|activate' --skip 'pytest -q$'   # reuse this environment

Exit status: 0 when every command that ran returned 0, 1 otherwise.
"""

import argparse
import json
import os
import re
import shlex
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)")


def guide_pages(root=ROOT):
    """docs/guide/*.md in the order of mkdocs.yml's nav (pages not in the nav follow, sorted)."""
    folder = os.path.join(root, "docs", "guide")
    listed = []
    mkdocs = os.path.join(root, "mkdocs.yml")
    if os.path.isfile(mkdocs):
        with open(mkdocs, encoding="utf-8") as handle:
            listed = [m.group(1) for m in re.finditer(r"\bguide/([\w.-]+\.md)\b", handle.read())]
    present = sorted(name for name in os.listdir(folder) if name.endswith(".md")) if os.path.isdir(folder) else []
    ordered = [name for name in dict.fromkeys(listed) if name in present] + [n for n in present if n not in listed]
    return [os.path.join("docs", "guide", name) for name in ordered]


def bash_commands(path):
    """[(line number, command)] of the ```bash blocks of one Markdown file."""
    commands, in_block, language, fence, pending, start = [], False, "", "", "", 0
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().split("\n")
    for number, line in enumerate(lines, 1):
        match = FENCE.match(line)
        if not in_block and match:
            in_block, fence, language = True, match.group(2), match.group(3).lower()
            continue
        if in_block and line.strip().startswith(fence[0] * len(fence)) and not line.strip().strip(fence[0]):
            in_block = False
            continue
        if not in_block or language not in ("bash", "sh", "shell"):
            continue
        text = line.strip()
        if not pending and (not text or text.startswith("#")):
            continue
        if not pending:
            start = number
        if text.endswith("\\"):
            pending += text[:-1] + " "
            continue
        commands.append((start, (pending + text).strip()))
        pending = ""
    return commands


def collect(root=ROOT, files=None):
    """[(file, line, command)] of README.md and the guide pages, duplicates dropped (first kept)."""
    files = files or ["README.md", *guide_pages(root)]
    seen, out = set(), []
    for name in files:
        for line, command in bash_commands(os.path.join(root, name)):
            if command not in seen:
                seen.add(command)
                out.append((name, line, command))
    return out


def _script(commands, log_dir, stop_on_failure=False):
    """One bash script that runs each command with eval (so `. activate` and `cd` carry over) and times it."""
    results = os.path.join(log_dir, "results.tsv")
    lines = ["#!/usr/bin/env bash", f": > {shlex.quote(results)}"]
    for index, (_, _, command) in enumerate(commands):
        log = shlex.quote(os.path.join(log_dir, f"{index:02d}.log"))
        lines += ["start=$(date +%s.%N)",
                  f"eval {shlex.quote(command)} > {log} 2>&1 < /dev/null",
                  "rc=$?",
                  f'echo "{index}\t$rc\t$start\t$(date +%s.%N)" >> {shlex.quote(results)}']
        if stop_on_failure:
            lines.append('if [ "$rc" -ne 0 ]; then exit 0; fi')
    return "\n".join(lines) + "\n"


def run(folder, commands, log_dir, stop_on_failure=False):
    """Runs ``commands`` in ``folder``; returns [{file, line, command, rc, seconds, log}] (rc None: not run)."""
    os.makedirs(log_dir, exist_ok=True)
    rows = [{"file": f, "line": line, "command": c, "rc": None, "seconds": None,
             "log": os.path.join(log_dir, f"{i:02d}.log")} for i, (f, line, c) in enumerate(commands)]
    path = os.path.join(log_dir, "commands.sh")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(_script(commands, log_dir, stop_on_failure))
    subprocess.run(["bash", "--noprofile", "--norc", path], cwd=folder, check=False)
    with open(os.path.join(log_dir, "results.tsv"), encoding="utf-8") as handle:
        for entry in handle:
            index, rc, start, end = entry.rstrip("\n").split("\t")
            rows[int(index)].update(rc=int(rc), seconds=round(float(end) - float(start), 1))
    with open(os.path.join(log_dir, "results.json"), "w", encoding="utf-8") as handle:
        json.dump({"folder": os.path.abspath(folder), "commands": rows}, handle, indent=1)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", help="where the commands run (a fresh clone of the repository)")
    parser.add_argument("--files", nargs="+", help="Markdown files relative to the repository (default: README.md "
                                                   "and docs/guide/ in the navigation's order)")
    parser.add_argument("--skip", action="append", default=[], metavar="REGEX",
                        help="do not run commands matching this regular expression (repeatable)")
    parser.add_argument("--list", action="store_true", help="only print the commands, in order")
    parser.add_argument("--stop-on-failure", action="store_true", help="stop at the first command that fails")
    parser.add_argument("--log-dir", help="per-command logs and results.json (default FOLDER/runs/readme-commands)")
    args = parser.parse_args(argv)
    commands = collect(ROOT, args.files)
    skipped = [c for c in commands if any(re.search(p, c[2]) for p in args.skip)]
    commands = [c for c in commands if c not in skipped]
    if args.list:
        for name, line, command in commands:
            print(f"{name}:{line}: {command}")
        for name, line, command in skipped:
            print(f"(skipped) {name}:{line}: {command}")
        return 0
    log_dir = os.path.abspath(args.log_dir or os.path.join(args.folder, "runs", "readme-commands"))
    rows = run(args.folder, commands, log_dir, args.stop_on_failure)
    width = max((len(r["command"]) for r in rows), default=10)
    print(f"{'#':>3}  {'rc':>4}  {'seconds':>8}  {'command':<{width}}  source")
    for index, row in enumerate(rows):
        rc = "-" if row["rc"] is None else row["rc"]
        seconds = "-" if row["seconds"] is None else f"{row['seconds']:.1f}"
        print(f"{index:>3}  {rc:>4}  {seconds:>8}  {row['command']:<{width}}  {row['file']}:{row['line']}")
    for name, line, command in skipped:
        print(f"  skipped: {command}  ({name}:{line})")
    failed = [r for r in rows if r["rc"] not in (0, None)]
    ran = [r for r in rows if r["rc"] is not None]
    print(f"{len(ran)} commands ran, {len(failed)} failed, {len(skipped)} skipped; logs in {log_dir}")
    return 1 if failed or len(ran) < len(rows) else 0


if __name__ == "__main__":
    sys.exit(main())
