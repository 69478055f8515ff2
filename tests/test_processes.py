import os
import subprocess
import sys
import time

STARTER = """
import multiprocessing, os, signal, time
from attribution.training.processes import exit_with_parent
if __name__ == "__main__":
    pool = multiprocessing.get_context("spawn").Pool(2, exit_with_parent)
    pool.map(abs, range(4))
    print(*(worker.pid for worker in multiprocessing.active_children()), flush=True)
    pool.map_async(time.sleep, [120, 120], chunksize=1)   # the workers busy, as in a round of play
    time.sleep(1)
    os.kill(os.getpid(), signal.SIGKILL)   # killed: its pool is never closed
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:   # a zombie has exited
        return stat.read().split(") ")[-1][0] != "Z"


def test_busy_workers_exit_when_the_process_that_started_them_is_killed():
    """Without ``exit_with_parent`` a worker would finish its task (minutes, in training) first."""
    started = subprocess.run([sys.executable, "-c", STARTER], capture_output=True, text=True, timeout=60,
                             cwd=os.path.dirname(os.path.dirname(__file__)))
    workers = [int(pid) for pid in started.stdout.split()]
    assert started.returncode == -9 and workers, started.stderr
    deadline = time.monotonic() + 20
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(pid) for pid in workers)
