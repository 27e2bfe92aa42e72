#!/usr/bin/env python3
"""Would a group commit pay on this filesystem? A measurement, not a test.

Publishes small objects the way nasgate does (a data file and a record, each written to a
temp name, made durable, renamed into place, then the renames made durable) with N threads,
committing in three ways, and prints each as a ratio against plain fsyncs one after another
(Python hands a job to another thread slowly, so "paired" here understates what the paired
syncs do in nasgate, where they beat serial ones):

- paired: fsync data and record at the same time (two threads), rename both, fsync both
  directories at the same time (what `store/object.rs` does);
- serial: the same fsyncs one after another;
- group: no fsync; the threads share syncfs(2) calls instead, a leader running one for every
  thread that asked before it started (one syncfs before the renames, one after);
- floor: one file only, fsync, rename, fsync the directory (what the bench's
  `file-replace-durable` anchor does).

Rounds alternate the modes so a drifting disk hits all alike. Usage:

    python3 bench/group_commit.py --dir /path/on/the/share --threads 16 --seconds 4 --rounds 3
"""

import argparse
import ctypes
import os
import shutil
import statistics
import tempfile
import threading
import time

LIBC = ctypes.CDLL("libc.so.6", use_errno=True)


class Group:
    """One syncfs at a time; a caller returns once a syncfs that began after its call ended."""

    def __init__(self, fd):
        self.fd = fd
        self.cv = threading.Condition()
        self.started = 0
        self.finished = 0
        self.running = False
        self.calls = 0

    def commit(self):
        with self.cv:
            want = self.started + 1
            while self.finished < want:
                if self.running:
                    self.cv.wait()
                    continue
                self.running = True
                self.started += 1
                mine = self.started
                self.cv.release()
                try:
                    if LIBC.syncfs(self.fd) != 0:
                        raise OSError(ctypes.get_errno(), "syncfs")
                    self.calls += 1
                finally:
                    self.cv.acquire()
                    self.running = False
                    self.finished = mine
                    self.cv.notify_all()


class Helper:
    """A thread kept per worker, as nasgate keeps a pool: runs one job beside the caller."""

    def __init__(self):
        self.cv = threading.Condition()
        self.job = None
        self.done = True
        self.error = None
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        with self.cv:
            while True:
                while self.job is None:
                    self.cv.wait()
                job, self.job = self.job, None
                self.cv.release()
                error = None
                try:
                    job()
                except OSError as e:
                    error = e
                self.cv.acquire()
                self.error, self.done = error, True
                self.cv.notify_all()

    def pair(self, a, b):
        with self.cv:
            self.job, self.done, self.error = a, False, None
            self.cv.notify_all()
        try:
            b()
        finally:
            with self.cv:
                while not self.done:
                    self.cv.wait()
        if self.error:
            raise self.error


def run(mode, base, threads, seconds):
    data_dir = os.path.join(base, mode, "data")
    meta_dir = os.path.join(base, mode, "meta")
    os.makedirs(data_dir, exist_ok=True)
    os.makedirs(meta_dir, exist_ok=True)
    dfd = os.open(data_dir, os.O_RDONLY | os.O_DIRECTORY)
    mfd = os.open(meta_dir, os.O_RDONLY | os.O_DIRECTORY)
    group = Group(dfd)
    body = os.urandom(4096)
    record = b'{"version":"1.0.2","meta":{"etag":"0123456789abcdef0123456789abcdef"}}'
    counts = [0] * threads
    errors = []

    def write(path, data):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, data)
        return fd

    def worker(i):
        pair = Helper().pair

        def sync(a, b):
            """Makes both descriptors durable the way this mode does."""
            if mode == "paired":
                pair(lambda: os.fsync(a), lambda: os.fsync(b))
            elif mode == "serial":
                os.fsync(a)
                os.fsync(b)
            else:
                group.commit()

        try:
            end = time.monotonic() + seconds
            dt, dp = os.path.join(data_dir, f".t{i}"), os.path.join(data_dir, f"o{i}")
            mt, mp = os.path.join(meta_dir, f".t{i}"), os.path.join(meta_dir, f"o{i}")
            while time.monotonic() < end:
                fd = write(dt, body)
                if mode == "floor":
                    os.fsync(fd)
                    os.close(fd)
                    os.rename(dt, dp)
                    os.fsync(dfd)
                    counts[i] += 1
                    continue
                fm = write(mt, record)
                sync(fd, fm)
                os.close(fd)
                os.close(fm)
                os.rename(dt, dp)
                os.rename(mt, mp)
                sync(dfd, mfd)
                counts[i] += 1
        except OSError as e:
            errors.append(e)

    t0 = time.monotonic()
    ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    elapsed = time.monotonic() - t0
    os.close(dfd)
    os.close(mfd)
    if errors:
        raise SystemExit(f"group_commit: {mode}: {errors[0]}")
    return sum(counts) / elapsed, group.calls


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default=None, help="a directory on the filesystem to measure")
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    base = tempfile.mkdtemp(prefix="group-commit-", dir=a.dir)
    modes = ["paired", "serial", "group", "floor"]
    rates = {m: [] for m in modes}
    calls = []
    for r in range(a.rounds):
        for m in modes:
            rate, n = run(m, base, a.threads, a.seconds)
            rates[m].append(rate)
            if m == "group":
                calls.append(n)
            print(f"round {r + 1} {m:6} {rate:8.0f} objects/s", flush=True)
    ref = statistics.median(rates["serial"])
    print(f"\n{a.threads} threads, 4 KiB objects, median of {a.rounds} rounds, in {base}")
    for m in modes:
        med = statistics.median(rates[m])
        print(f"{m:6} {med:8.0f} objects/s  {med / ref:5.2f}x of serial")
    done = statistics.median(rates["group"]) * a.seconds
    print(f"group: {statistics.median(calls)} syncfs calls for about {done:.0f} objects")
    shutil.rmtree(base)


if __name__ == "__main__":
    main()
