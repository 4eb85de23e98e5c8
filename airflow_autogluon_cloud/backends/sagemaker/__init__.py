"""The SageMaker backend: the AutoGluon deep-learning containers, driven with boto3 requests."""

from airflow_autogluon_cloud.backends.sagemaker.backend import SageMakerBackend

__all__ = ["SageMakerBackend"]
