"""AutoGluon versions and images: the AWS deep-learning containers (from the SageMaker SDK's table)
and the AutoGluon installed on this machine.

The SDK (``sagemaker.core.image_uris``, about 1.7 s to import) is imported only when a SageMaker
job or model is actually submitted, never at DAG-parse time.
"""

from __future__ import annotations

from functools import cache
from importlib import metadata

from airflow_autogluon_cloud.exceptions import InvalidParameterError

# Where users are sent when AWS has no image for their AutoGluon version.
CUSTOM_IMAGE_RECIPE = "recipe: the 'Custom images' page of the docs, docs/custom-images.md"


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else 0 for p in version.split("."))


@cache
def known_versions(scope: str = "training") -> tuple[str, ...]:
    """AutoGluon versions the installed SageMaker SDK has images for, oldest first."""
    from sagemaker.core import image_uris

    versions = image_uris.config_for_framework("autogluon")[scope]["versions"]
    return tuple(sorted(versions, key=_version_key))


def resolve_framework_version(version: str | None, scope: str = "training") -> str:
    """``None``/``"latest"`` -> the newest known version; ``"x.y"`` -> the newest ``x.y.*`` patch.

    A version AWS has no image for is an :class:`InvalidParameterError` naming the version, the
    newest image there is, and the recipe for building one (:data:`CUSTOM_IMAGE_RECIPE`).
    """
    versions = known_versions(scope)
    newest = versions[-1]
    if not version or version == "latest":
        return newest
    if version in versions:
        return version
    matching = [v for v in versions if v.startswith(version + ".")]
    if matching:
        return matching[-1]
    if _version_key(version) > _version_key(newest):
        fix = (
            f"AWS has no AutoGluon {scope} image for {version} yet (the newest is {newest}). Build one with "
            f"AutoGluon {version} in it ({CUSTOM_IMAGE_RECIPE}) and pass its URI as custom_image_uri; "
            f"framework_version='{newest}' would run the model under another AutoGluon than it was trained with."
        )
    else:
        fix = (
            f"the installed SageMaker SDK has AutoGluon {scope} images for {', '.join(versions)} (the newest is "
            f"{newest}); pick one of those, or build an image ({CUSTOM_IMAGE_RECIPE}) and pass custom_image_uri."
        )
    raise InvalidParameterError("framework_version", version, fix)


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
