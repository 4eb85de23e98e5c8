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
