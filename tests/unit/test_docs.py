"""The documentation builds with no warnings (mkdocs --strict: broken links or snippets fail)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_docs_build_strict(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "WARNING" not in result.stderr
    page = (tmp_path / "site" / "operators" / "sensors" / "index.html").read_text()
    assert "AGFitJobSensor(" in page  # the example DAG code was included from the file itself


def test_every_snippet_reference_is_rendered_as_the_example_code(tmp_path):
    # A mangled `--8<--` line would render as literal text, not the example's code.
    import html
    import re

    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=REPO,
        capture_output=True,
        check=True,
    )
    refs = 0
    for md in sorted((REPO / "docs").rglob("*.md")):
        text = md.read_text()
        assert "--8 <" not in text, f"{md}: mangled snippet marker"
        page_path = site / md.relative_to(REPO / "docs").with_suffix("") / "index.html"
        if md.name == "index.md":
            page_path = site / md.relative_to(REPO / "docs").parent / "index.html"
        for source, section in re.findall(r'^--8<-- "([^":]+):([^"]+)"$', text, flags=re.M):
            refs += 1
            code = (REPO / source).read_text().split(f"# --8<-- [start:{section}]", 1)[1]
            code = code.split(f"# --8<-- [end:{section}]", 1)[0]
            line = next(ln.strip() for ln in code.splitlines() if "=" in ln and len(ln.strip()) > 15)
            page = html.unescape(re.sub(r"<[^>]+>", "", page_path.read_text()))
            assert line in page, f"{md.name}: the code of {source}:{section} is not on the page"
    assert refs >= 8
