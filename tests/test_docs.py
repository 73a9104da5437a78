"""The documentation site builds in MkDocs' strict mode: a broken link or anchor, a page missing from the
navigation's targets, an unknown API reference or a docstring mkdocstrings cannot parse fails the build."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_the_site_builds_in_strict_mode(tmp_path):
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                            cwd=ROOT, capture_output=True, text=True, timeout=900,
                            env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stderr[-5000:]
    site = tmp_path / "site"
    # every guide page and the API reference rendered from the docstrings (not an empty stub)
    for page in ("guide/index.html", "guide/export/index.html", "results/index.html", "changelog/index.html"):
        assert (site / page).is_file(), page
    assert "quantize_model" in (site / "api/quantize/index.html").read_text(encoding="utf-8")
    assert "NVMSpec" in (site / "api/spec/index.html").read_text(encoding="utf-8")
    changelog = (site / "changelog/index.html").read_text(encoding="utf-8")
    assert "semantic versioning" in changelog and "--8&lt;--" not in changelog  # CHANGELOG.md itself, included


def test_every_guide_page_is_in_the_navigation():
    """A guide page left out of mkdocs.yml's nav would be built but never reachable from the site's menu."""
    nav = open(os.path.join(ROOT, "mkdocs.yml"), encoding="utf-8").read()
    guide = sorted(name for name in os.listdir(os.path.join(ROOT, "docs", "guide")) if name.endswith(".md"))
    assert guide and all(f"guide/{name}" in nav for name in guide)
    api = sorted(name for name in os.listdir(os.path.join(ROOT, "docs", "api")) if name.endswith(".md"))
    assert api and all(f"api/{name}" in nav for name in api)
