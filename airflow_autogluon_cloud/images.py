"""AutoGluon versions and images: the AWS deep-learning containers (from the SageMaker SDK's table)
and the AutoGluon installed on this machine.

The SDK (``sagemaker.core.image_uris``, about 1.7 s to import) is imported only when a SageMaker
job or model is actually submitted, never at DAG-parse time.
"""

from __future__ import annotations

from functools import cache
from importlib import metadata

from airflow_autogluon_cloud.exceptions import InvalidParameterError


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else 0 for p in version.split("."))


@cache
def known_versions(scope: str = "training") -> tuple[str, ...]:
    """AutoGluon versions the installed SageMaker SDK has images for, oldest first."""
    from sagemaker.core import image_uris

    versions = image_uris.config_for_framework("autogluon")[scope]["versions"]
    return tuple(sorted(versions, key=_version_key))


def resolve_framework_version(version: str | None, scope: str = "training") -> str:
    """``None``/``"latest"`` -> the newest known version; ``"x.y"`` -> the newest ``x.y.*`` patch."""
    versions = known_versions(scope)
    if not version or version == "latest":
        return versions[-1]
    if version in versions:
        return version
    matching = [v for v in versions if v.startswith(version + ".")]
    if matching:
        return matching[-1]
    raise InvalidParameterError(
        "framework_version",
        version,
        f"the installed SageMaker SDK has AutoGluon {scope} images for {', '.join(versions)}; pick one of "
        "those, or pass custom_image_uri with the image you want.",
    )


def image_uri(framework_version: str, scope: str, region: str | None, instance_type: str) -> str:
    """The ECR URI of the AutoGluon ``scope`` ("training" or "inference") image."""
    from sagemaker.core import image_uris

    if not region:
        raise InvalidParameterError(
            "region_name", region, "set region_name on the operator or region_name in the AWS connection."
        )
    version = resolve_framework_version(framework_version, scope)
    return str(
        image_uris.retrieve("autogluon", region=region, version=version, image_scope=scope, instance_type=instance_type)
    )


def version_from_image(image: str) -> str | None:
    """The AutoGluon version in an image tag such as ``...:1.5.0-cpu-py311`` (``None`` if it has none)."""
    tag = image.rsplit(":", 1)[-1]
    version = tag.split("-", 1)[0]
    return version if version[:1].isdigit() else None


def installed_autogluon_version() -> str:
    """Version of the installed ``autogluon.tabular`` (read from metadata, without importing it)."""
    try:
        return metadata.version("autogluon.tabular")
    except metadata.PackageNotFoundError:
        return "unknown"
