"""The sdist and wheel as a user gets them: license, container scripts, no tests, valid metadata."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser

import pytest

from tests.conftest import REPO


@pytest.fixture(scope="module")
def dists(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    # Without --sdist/--wheel, build makes the sdist and then the wheel from it: the sdist must be complete.
    subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(REPO)], check=True, capture_output=True)
    [wheel] = out.glob("*.whl")
    [sdist] = out.glob("*.tar.gz")
    return wheel, sdist


@pytest.mark.slow
def test_wheel_carries_the_package_container_scripts_and_license_only(dists):
    wheel, _ = dists
    names = zipfile.ZipFile(wheel).namelist()
    source = {
        p.relative_to(REPO).as_posix()
        for p in (REPO / "airflow_autogluon_cloud").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    packaged = {n for n in names if n.startswith("airflow_autogluon_cloud/")}
    assert packaged == source
    assert {"airflow_autogluon_cloud/container/train.py", "airflow_autogluon_cloud/container/serve.py"} <= packaged
    dist_info = {n.split("/", 1)[1] for n in names if ".dist-info/" in n}
    assert dist_info == {"METADATA", "WHEEL", "RECORD", "entry_points.txt", "licenses/LICENSE"}
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/")) or "/tests/" in n]
    with zipfile.ZipFile(wheel) as z:
        meta = Parser().parsestr(z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode())
        license_text = z.read(next(n for n in names if n.endswith("licenses/LICENSE"))).decode()
        entry_points = z.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta["License-File"] == "LICENSE"
    assert "Apache License" in license_text
    assert "Version 2.0, January 2004" in license_text
    assert license_text == (REPO / "LICENSE").read_text()
    assert "[apache_airflow_provider]" in entry_points
    assert "autogluon-cloud-airflow = airflow_autogluon_cloud.cli:main" in entry_points


@pytest.mark.slow
def test_sdist_carries_the_license_and_no_benchmarks(dists):
    _, sdist = dists
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    assert {"LICENSE", "pyproject.toml", "README.md", "airflow_autogluon_cloud/container/train.py"} <= names
    assert not [n for n in names if n.startswith("benchmarks/") or "__pycache__" in n]


@pytest.mark.slow
def test_twine_accepts_the_metadata(dists):
    out = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, dists)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("PASSED") == 2


@pytest.mark.parametrize(
    "name", ["constraints.txt", "constraints-oldest.txt", "constraints-multimodal.txt", "overrides-multimodal.txt"]
)
def test_each_pin_file_names_a_package_once(name):
    """uv refuses a requirement given twice on one line, as the browser install showed."""
    names = [
        line.split("==")[0].split("<")[0].split(">")[0].strip().lower().replace("_", "-")
        for line in (REPO / name).read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert len(names) == len(set(names)), sorted({n for n in names if names.count(n) > 1})
