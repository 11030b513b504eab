"""rnncli: RNN, GRU and LSTM from scratch in NumPy, driven from the command line."""

import os

__version__ = "0.2.0"


def _share_cores_between_workers():
    """Started by an MPI launcher (`mpiexec -n 8 rnncli train`), each of the workers on a machine
    gets its share of the cores for BLAS, unless the environment says otherwise. It must happen
    before NumPy loads its BLAS, hence here."""
    local = os.environ.get("MPI_LOCALNRANKS") or os.environ.get("OMPI_COMM_WORLD_LOCAL_SIZE")
    if local and local.isdigit() and int(local) > 1:
        threads = str(max(1, (os.cpu_count() or 1) // int(local)))
        for key in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(key, threads)


_share_cores_between_workers()
