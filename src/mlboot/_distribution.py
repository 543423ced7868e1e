"""Distributed training: :class:`PyTorchDistribution` and :class:`MpiDistribution`.

A distribution says how many processes to start on each node; :func:`mlboot.submit_script`'s
``node_count`` says how many nodes.  The azureml-core adapter turns them into the SDK's
``PyTorchConfiguration(process_count=node_count * process_count_per_node,
node_count=node_count)`` or ``MpiConfiguration(process_count_per_node=...,
node_count=node_count)``.
"""

from __future__ import annotations

from typing import Literal, TypeAlias

import attrs

from mlboot.exceptions import InvalidInputError

__all__ = ["Distribution", "MpiDistribution", "PyTorchDistribution"]

PyTorchBackend: TypeAlias = Literal["nccl", "gloo"]
"""The ``torch.distributed`` communication backends Azure ML supports."""

_PYTORCH_BACKENDS: tuple[PyTorchBackend, ...] = ("nccl", "gloo")


def _check_processes_per_node(
    _instance: object, attribute: attrs.Attribute[int], value: object
) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(
            attribute.name,
            value,
            "it must be an int (not a bool)",
            "pass how many processes to start on each node, e.g. the number of GPUs per node",
        )
    if value < 1:
        raise InvalidInputError(
            attribute.name,
            value,
            "it must be at least 1",
            "pass how many processes to start on each node, e.g. the number of GPUs per node",
        )


def _check_backend(_instance: object, attribute: attrs.Attribute[str], value: object) -> None:
    if value not in _PYTORCH_BACKENDS:
        raise InvalidInputError(
            attribute.name,
            value,
            "it must be 'nccl' (GPU nodes) or 'gloo' (CPU nodes)",
            "pass one of those two, in lower case",
        )


@attrs.frozen
class PyTorchDistribution:
    """Start ``process_count_per_node`` PyTorch processes on every node (``torch.distributed``).

    Azure ML launches the processes and sets ``MASTER_ADDR``, ``MASTER_PORT``, ``WORLD_SIZE``,
    ``RANK``, ``LOCAL_RANK`` and ``NODE_RANK`` for each; the script calls
    ``torch.distributed.init_process_group(backend)`` itself.  Use one process per GPU.
    ``communication_backend`` is ``"nccl"`` for GPU nodes (the default) or ``"gloo"`` for CPU
    nodes.
    """

    process_count_per_node: int = attrs.field(default=1, validator=_check_processes_per_node)
    communication_backend: PyTorchBackend = attrs.field(default="nccl", validator=_check_backend)

    def process_count(self, node_count: int) -> int:
        """How many processes run in total on ``node_count`` nodes."""
        return node_count * self.process_count_per_node


@attrs.frozen
class MpiDistribution:
    """Start ``process_count_per_node`` MPI processes on every node (Horovod, DeepSpeed...).

    Azure ML runs the script under ``mpirun`` across the nodes; the processes find their rank
    through MPI (``OMPI_COMM_WORLD_RANK`` and friends).
    """

    process_count_per_node: int = attrs.field(default=1, validator=_check_processes_per_node)

    def process_count(self, node_count: int) -> int:
        """How many processes run in total on ``node_count`` nodes."""
        return node_count * self.process_count_per_node


Distribution: TypeAlias = PyTorchDistribution | MpiDistribution
"""How a run is spread over its nodes: :class:`PyTorchDistribution` or :class:`MpiDistribution`."""
