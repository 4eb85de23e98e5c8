"""Test-environment shim: let PyPI's torchvision (a CUDA build) import beside a CPU build of torch.

torchvision's ``_meta_registrations`` registers fake kernels for ``torchvision::nms`` and
``torchvision::qnms``; when its compiled extension cannot load beside the CPU torch those ops were
never defined and the import fails ("operator torchvision::nms does not exist"). This module, loaded
by a ``.pth`` file that scripts/setup-multimodal-env.sh writes into .venv-multimodal only, defines the
two op schemas just before that module is imported. Image classification works; the detection ops
themselves have no kernel and raise if called. Never part of the package.
"""

from __future__ import annotations

import sys
from importlib.abc import MetaPathFinder

_TARGET = "torchvision._meta_registrations"
_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}
_libraries: list[object] = []  # the Library objects must outlive the definition


def _define_missing_schemas() -> None:
    import torch

    missing = []
    for name in _SCHEMAS:
        try:
            _ = getattr(torch.ops.torchvision, name).default
        except (AttributeError, RuntimeError):
            missing.append(name)
    if missing:
        library = torch.library.Library("torchvision", "FRAGMENT")
        for name in missing:
            library.define(_SCHEMAS[name])
        _libraries.append(library)


class _Finder(MetaPathFinder):
    def find_spec(self, fullname, path, target=None):  # type: ignore[no-untyped-def]
        if fullname == _TARGET:
            _define_missing_schemas()
        return None  # the ordinary finders import the module


def install() -> None:
    if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
