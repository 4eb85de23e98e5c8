"""What Airflow's provider manager reads (entry point ``apache_airflow_provider``)."""

from __future__ import annotations

from typing import Any

from airflow_autogluon_cloud import __version__


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-autogluon-cloud",
        "name": "AutoGluon Cloud",
        "description": "Train, deploy and serve AutoGluon models on Amazon SageMaker or on this machine.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "AutoGluon Cloud",
                "external-doc-url": "https://auto.gluon.ai/cloud/stable/index.html",
                "tags": ["aws", "ml"],
            }
        ],
        "hooks": [
            {
                "integration-name": "AutoGluon Cloud",
                "python-modules": ["airflow_autogluon_cloud.hooks.autogluon_cloud"],
            }
        ],
        "operators": [
            {
                "integration-name": "AutoGluon Cloud",
                "python-modules": [
                    "airflow_autogluon_cloud.operators.fit",
                    "airflow_autogluon_cloud.operators.deploy",
                    "airflow_autogluon_cloud.operators.batch_predict",
                    "airflow_autogluon_cloud.operators.predict",
                    "airflow_autogluon_cloud.operators.cleanup",
                    "airflow_autogluon_cloud.operators.evaluate",
                    "airflow_autogluon_cloud.operators.registry",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": "AutoGluon Cloud",
                "python-modules": ["airflow_autogluon_cloud.sensors.autogluon_cloud"],
            }
        ],
        "triggers": [
            {
                "integration-name": "AutoGluon Cloud",
                "python-modules": ["airflow_autogluon_cloud.triggers.autogluon_cloud"],
            }
        ],
        "plugins": [
            {"name": "autogluon_cloud", "plugin-class": "airflow_autogluon_cloud.ui.plugin.AutoGluonCloudPlugin"}
        ],
        "extra-links": [
            "airflow_autogluon_cloud.links.autogluon_cloud.AGTrainingJobLink",
            "airflow_autogluon_cloud.links.autogluon_cloud.AGTransformJobLink",
            "airflow_autogluon_cloud.links.autogluon_cloud.AGEndpointLink",
        ],
        "connection-types": [
            {
                "connection-type": "autogluon_cloud",
                "hook-class-name": "airflow_autogluon_cloud.hooks.autogluon_cloud.AutoGluonCloudHook",
                "hook-name": "AutoGluon Cloud",
            }
        ],
        "config": {
            "autogluon_cloud": {
                "description": "Settings of the AutoGluon Cloud provider.",
                "options": {
                    "backend": {
                        "description": "Where jobs and endpoints run: local (this machine) or sagemaker.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "sagemaker",
                        "default": "local",
                    },
                    "cloud_output_path": {
                        "description": "Default artifact location: a directory, or s3://bucket/prefix.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "s3://my-bucket/autogluon",
                        "default": None,
                    },
                    "local_root": {
                        "description": "State directory of the local backend.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "/var/lib/airflow/autogluon_cloud",
                        "default": None,
                    },
                    "max_archive_bytes": {
                        "description": "The most a model or output archive may unpack to, in bytes (20 GiB).",
                        "version_added": "0.1.0",
                        "type": "integer",
                        "example": "53687091200",
                        "default": "21474836480",
                    },
                    "max_archive_members": {
                        "description": "The most files and directories a model or output archive may hold.",
                        "version_added": "0.1.0",
                        "type": "integer",
                        "example": "500000",
                        "default": "100000",
                    },
                },
            }
        },
    }
