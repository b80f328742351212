"""A thread pool whose threads never hold the process up when it exits.

The standard ``ThreadPoolExecutor`` joins its threads at interpreter exit,
so an agent told to stop (Ctrl-C, a service manager's SIGTERM) waits for
every engine call still in flight: on a busy engine that is many seconds
after the agent has said it stopped. Engine calls are safe to abandon (the
engine finishes or drops them on its side, and the next agent adopts
whatever it finds by label), so these threads are daemons."""

import queue
import threading
from concurrent.futures import Executor, Future


class DaemonThreadPool(Executor):
    def __init__(self, max_workers: int, thread_name_prefix: str = "pool"):
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._max_workers = max_workers
        self._prefix = thread_name_prefix
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._shutdown = False

    def submit(self, fn, /, *args, **kwargs) -> Future:
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new calls after shutdown")
            future: Future = Future()
            self._queue.put((future, fn, args, kwargs))
            if len(self._threads) < self._max_workers:
                # One more thread per call until the limit: an idle pool costs nothing.
                t = threading.Thread(target=self._work, name=f"{self._prefix}_{len(self._threads)}", daemon=True)
                self._threads.append(t)
                t.start()
            return future

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            future, fn, args, kwargs = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the future
                future.set_exception(exc)
            else:
                future.set_result(result)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shutdown = True
            if cancel_futures:
                while True:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is not None:
                        item[0].cancel()
            for _ in self._threads:
                self._queue.put(None)
        if wait:
            for t in self._threads:
                t.join()
