"""Sample a running process's resident memory from a background thread."""

import contextlib
import threading
import time

import psutil


def resident_bytes(process, include_children):
    """RSS of a process, plus its children's when asked; 0 once it has ended."""
    processes = [process, *process.children(recursive=True)] if include_children else [process]
    total = 0
    for each in processes:
        with contextlib.suppress(psutil.NoSuchProcess):  # a child that just ended
            total += each.memory_info().rss
    return total


class MemorySampler:
    """Records (seconds since start, RSS bytes, progress()) every `interval` seconds until stopped."""

    def __init__(self, pid, interval, include_children=False, progress=lambda: None):
        self.process = psutil.Process(pid)
        self.interval, self.include_children, self.progress = interval, include_children, progress
        self.samples = []
        self.started = time.perf_counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self):
        while not self._stop.is_set():
            try:
                rss = resident_bytes(self.process, self.include_children)
            except psutil.NoSuchProcess:  # it has finished
                return
            self.samples.append((time.perf_counter() - self.started, rss, self.progress()))
            self._stop.wait(self.interval)

    @property
    def peak(self):
        return max((rss for _, rss, _ in self.samples), default=0)

    def stop(self):
        self._stop.set()
        self._thread.join()
        return self.samples
