"""The local backend: runs in subprocesses on this machine, each under a detached supervisor.

Empty of imports: the supervisor imports :mod:`._local_supervisor` from here without the rest
of mlboot.
"""
