"""The backends under mlboot, one subpackage each, and the seam they all satisfy.

- :mod:`mlboot._backends._seam`: the :class:`~mlboot.backend.Backend` protocol and the records
  that cross it; the domain modules above talk only to it.
- :mod:`mlboot._backends._choice`: which backend ``workspace_from_config`` uses.
- :mod:`mlboot._backends.azureml`: the azureml-core adapter, the only code that imports azureml.
- :mod:`mlboot._backends.local`: runs on this machine, under a detached supervisor.
- :mod:`mlboot._backends.fake`: the in-memory Azure ML behind :mod:`mlboot.testing`.

Package files stay empty of imports: the local supervisor loads its subpackage without the rest
of mlboot (see ``docs/architecture.md``).
"""
