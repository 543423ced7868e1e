"""The azure-ai-ml (SDK v2) backend: the one subpackage that imports ``azure.ai.ml``."""
