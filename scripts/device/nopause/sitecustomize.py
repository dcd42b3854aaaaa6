# Experiment only (perf_h.sh): on PYTHONPATH, turns the engine's garbage-collector pause around
# compilation off, to time compilation with and without it.
import gptablate.train.heap as _heap

_heap.CollectorClock.pause = lambda self: None
