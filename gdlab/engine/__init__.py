"""The simulation engine: many gradient-descent runs at once, with online statistics.

``simulate`` (:mod:`gdlab.engine._simulate`) runs N runs in chunks, one compiled program per shape
(:mod:`gdlab.engine._program`), on the per-step loop (:mod:`gdlab.engine._loop`) or a fast path
with the same results (``FAST_PATHS``: the GPU kernel of :mod:`gdlab.engine.fused`, the CPU tiles
of :mod:`gdlab.engine.tiled`; ``FAST_PATH[0]`` chooses the mode); ``RunStats``, the floor and
bound, and the ``FastPath`` interface live in :mod:`gdlab.engine._common`. A problem without a
known optimum is judged by its loss (:mod:`gdlab.engine._by_loss`, ``LossStats``).
"""

from gdlab.engine import fused as fused
from gdlab.engine import tiled as tiled
from gdlab.engine._by_loss import SCORE_CLIP as SCORE_CLIP
from gdlab.engine._by_loss import SCORE_WINDOW as SCORE_WINDOW
from gdlab.engine._by_loss import LossStats as LossStats
from gdlab.engine._by_loss import blowup as loss_blowup
from gdlab.engine._common import Chunk as Chunk
from gdlab.engine._common import ChunkSpec as ChunkSpec
from gdlab.engine._common import FastPath as FastPath
from gdlab.engine._common import RunStats as RunStats
from gdlab.engine._common import divergence_bound as divergence_bound
from gdlab.engine._common import flip_floor as flip_floor
from gdlab.engine._common import mode_floor as mode_floor
from gdlab.engine._common import noise_floor as noise_floor
from gdlab.engine._loop import snapshot_count as snapshot_count
from gdlab.engine._program import FAST_PATH as FAST_PATH
from gdlab.engine._program import FAST_PATH_MODES as FAST_PATH_MODES
from gdlab.engine._program import FAST_PATHS as FAST_PATHS
from gdlab.engine._program import LANES as LANES
from gdlab.engine._program import chunk_program as chunk_program
from gdlab.engine._program import chunk_runs as chunk_runs
from gdlab.engine._program import compile_count as compile_count
from gdlab.engine._program import exact_blocks as exact_blocks
from gdlab.engine._simulate import Simulation as Simulation
from gdlab.engine._simulate import device_count as device_count
from gdlab.engine._simulate import pad as pad
from gdlab.engine._simulate import simulate as simulate

__all__ = ["RunStats", "LossStats", "SCORE_CLIP", "loss_blowup", "SCORE_WINDOW", "Simulation",
           "simulate", "pad", "snapshot_count",
           "noise_floor", "flip_floor", "mode_floor", "divergence_bound",
           "compile_count", "device_count", "chunk_program",
           "chunk_runs", "exact_blocks",
           "LANES", "FAST_PATH", "FAST_PATH_MODES", "FAST_PATHS", "FastPath", "Chunk", "ChunkSpec",
           "tiled", "fused"]
