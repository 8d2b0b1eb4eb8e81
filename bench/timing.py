"""Timing: warm up, then repeat, keep the best and the median.

Every figure the bench reports is a ratio to a peer measured in the same
run, so the machine's noise mostly cancels; the spread is reported so a
reader can see when it did not.
"""
import time
from dataclasses import dataclass


@dataclass
class Timing:
    best: float     # seconds per call, fastest repeat
    median: float   # seconds per call, median repeat
    spread: float   # (p75 - p25) / median over repeats

    def rate(self, work):
        """work per second at the best repeat (e.g. FLOP/s, bytes/s)."""
        return work / self.best


def measure(fn, *, repeats=7, min_time=0.05, warmup=2, settle=0.3):
    """Time fn(); each repeat runs it enough times to last ~min_time.

    settle: seconds to sleep first.  Thread pools (OpenBLAS's, libgomp's,
    torch's) keep spinning for a while after a call and would steal cores
    from the next contender; measuring each contender as a block after a
    pause keeps them from taxing each other."""
    time.sleep(settle)
    for _ in range(warmup):
        fn()
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-7)
    inner = max(1, int(min_time / once))
    per_call = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        per_call.append((time.perf_counter() - t0) / inner)
    per_call.sort()
    med = per_call[len(per_call) // 2]
    q1, q3 = per_call[len(per_call) // 4], per_call[(3 * len(per_call)) // 4]
    return Timing(per_call[0], med, (q3 - q1) / med if med else 0.0)
