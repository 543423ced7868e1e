"""The azureml-core (SDK v1) backend: the one subpackage that imports ``azureml``."""
