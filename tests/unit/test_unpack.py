"""Unpacking a batch job's model in a forked child while the job imports AutoGluon."""

from __future__ import annotations

import io
import os
import tarfile

import pytest

from airflow_autogluon_cloud.archives import make_tarball
from airflow_autogluon_cloud.backends.local.unpack import ModelUnpackError, unpack_while_importing


def _model(tmp_path, summary: str | None = '{"predictor_type": "tabular"}'):
    source = tmp_path / "source"
    (source / "models" / "M").mkdir(parents=True)
    (source / "models" / "M" / "model.pkl").write_bytes(os.urandom(1 << 20))
    if summary is not None:
        (source / "training_summary.json").write_text(summary)
    archive = tmp_path / "model.tar.gz"
    make_tarball(source, archive)
    return source, archive


def test_the_summary_reaches_the_import_and_the_model_is_unpacked(tmp_path):
    source, archive = _model(tmp_path)
    calls = []
    target = tmp_path / "job" / "model"
    target.parent.mkdir()
    unpack_while_importing(str(archive), target, None, calls.append)
    assert calls == ['{"predictor_type": "tabular"}']  # the text, handed over from the child
    assert (target / "models" / "M" / "model.pkl").read_bytes() == (source / "models" / "M" / "model.pkl").read_bytes()
    assert sorted(p.name for p in target.parent.iterdir()) == ["model"]  # no archive or partial left


def test_without_a_summary_the_import_reads_the_unpacked_model(tmp_path):
    _, archive = _model(tmp_path, summary=None)
    seen = []
    target = tmp_path / "model"
    unpack_while_importing(str(archive), target, None, lambda text: seen.append((text, target.is_dir())))
    assert seen == [(None, True)]  # asked once, after the model was in place


def test_an_unsafe_archive_fails_with_the_childs_reason(tmp_path):
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("training_summary.json")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"{}"))
        evil = tarfile.TarInfo("../escape.txt")
        evil.size = 1
        tar.addfile(evil, io.BytesIO(b"x"))
    calls = []
    with pytest.raises(ModelUnpackError, match=r"ArtifactError: Refusing to extract .*'\.\./escape\.txt'") as err:
        unpack_while_importing(str(archive), tmp_path / "model", None, calls.append)
    assert err.value.failure_reason.startswith("ArtifactError: Refusing to extract")
    assert calls == ["{}"]  # the summary came first; the import was not held up
    assert not (tmp_path / "model").exists()
    assert not (tmp_path / "escape.txt").exists()


def test_a_missing_model_fails_by_name(tmp_path):
    with pytest.raises(ModelUnpackError, match="FileNotFoundError: .*nowhere"):
        unpack_while_importing(str(tmp_path / "nowhere" / "model.tar.gz"), tmp_path / "model", None, lambda t: None)
