"""Training on several workers: the world they train in (world.py: one process, or MPI's
collectives), how they share out a step (layout.py: pure functions), and how `--workers N`
starts them on this machine (launch.py: mpiexec, output, signals)."""

from rnncli.parallel.launch import INSTALL, find_mpiexec, launch, require_mpi
from rnncli.parallel.layout import IN_PLACE_FROM, blocks_of_rows, share_of
from rnncli.parallel.world import MpiWorld, Solo, check_batch, everywhere, get_world, joined, launched_size

__all__ = ["INSTALL", "IN_PLACE_FROM", "MpiWorld", "Solo", "blocks_of_rows", "check_batch", "everywhere",
           "find_mpiexec", "get_world", "joined", "launch", "launched_size", "require_mpi", "share_of"]
