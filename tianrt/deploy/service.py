"""``tianrt serve``: a model streaming from its devices as a long-running service (systemd,
docs/deploy.md). The same sources and sinks as ``tianrt stream``, plus:

- logs as plain lines on stdout (journald adds the time): the start, a status line every
  ``--log-every`` seconds, checkpoints, the final report;
- SIGTERM (``systemctl stop``) and SIGINT stop cleanly at the next tick boundary: devices
  closed, a last checkpoint written, the final report printed, exit 0; a second signal
  stops at once;
- ``--checkpoint FILE.npz``: the runtime's state (membranes, windows, held values, tick) is
  saved every ``--checkpoint-every`` seconds and at shutdown, atomically (written to a
  temporary file, then renamed), and loaded at start when it belongs to the same model file,
  so a restart (``Restart=on-failure``, a reboot) resumes where the service stopped;
- ``READY=1`` / ``STOPPING=1`` to systemd when started with ``Type=notify``.
"""
from __future__ import annotations

import hashlib
import os
import signal
import socket
import sys
import time

import numpy as np

MODEL_KEY = "__model_sha256__"


class Stop(KeyboardInterrupt):
    """Raised at a tick boundary to end the scheduler's loop (it stops cleanly on KeyboardInterrupt)."""


def log(msg: str) -> None:
    print(f"tianrt serve: {msg}", flush=True)


def sd_notify(message: str) -> bool:
    """Tell systemd (Type=notify) about the service's state; no-op without NOTIFY_SOCKET."""
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return False
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(addr)
            s.sendall(message.encode())
        return True
    except OSError:
        return False


def model_digest(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def save_checkpoint(path: str, rt, digest: str) -> None:
    """Write ``rt.state()`` to ``path`` atomically: a crash mid-write leaves the old file."""
    tmp = f"{path}.tmp-{os.getpid()}"
    state = rt.state()
    with open(tmp, "wb") as f:
        np.savez(f, **state, **{MODEL_KEY: np.asarray(digest)})
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: str, rt, digest: str) -> int | None:
    """Restore the runtime from ``path`` if it is a checkpoint of this model; returns its tick,
    or None (no file, another model's, unreadable: then the service starts fresh, and says so)."""
    if not os.path.exists(path):
        log(f"no checkpoint at {path} yet: starting fresh")
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
        if str(data.pop(MODEL_KEY, "")) != digest:
            log(f"checkpoint {path} belongs to another model file: starting fresh (it is overwritten "
                "at the first checkpoint)")
            return None
        rt.load_state(data)
    except Exception as exc:  # noqa: BLE001 - a bad checkpoint must not keep the service down
        log(f"checkpoint {path} could not be loaded ({type(exc).__name__}: {exc}): starting fresh")
        return None
    return int(rt.tick)


def serve(args, build) -> int:
    """Run the stream until its sources end, --seconds/--ticks, or SIGTERM/SIGINT. ``build(args)``
    makes the scheduler and its sinks (``tianrt stream``'s, passed in by ``tianrt serve``)."""
    t0 = time.perf_counter()
    args.save = None
    sched, _ = build(args)
    rt = sched.rts[0].rt
    digest = model_digest(args.model)
    resumed = load_checkpoint(args.checkpoint, rt, digest) if args.checkpoint else None
    if resumed is not None:
        log(f"resumed from checkpoint {args.checkpoint} at runtime tick {resumed}")
    stop = {"signal": None}

    def on_signal(signum, _frame):
        if stop["signal"] is not None:  # a second signal: stop now
            raise Stop()
        stop["signal"] = signal.Signals(signum).name
        log(f"{stop['signal']} received: stopping at the next tick boundary")

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    next_log = time.monotonic() + args.log_every
    next_ckpt = time.monotonic() + args.checkpoint_every
    saved = {"n": 0}

    def checkpoint():
        try:
            save_checkpoint(args.checkpoint, rt, digest)
            saved["n"] += 1
        except OSError as exc:
            log(f"checkpoint {args.checkpoint} not written: {exc}")

    def on_status(report):
        nonlocal next_log, next_ckpt
        now = time.monotonic()
        if args.checkpoint and now >= next_ckpt:
            checkpoint()
            next_ckpt = now + args.checkpoint_every
        if now >= next_log:
            log(report.status_line())
            next_log = now + args.log_every
        if stop["signal"] is not None:
            raise Stop()

    backend = rt._impl.name
    log(f"{args.model} on {backend}, tick {sched.dt * 1e3:g} ms; ready in {time.perf_counter() - t0:.2f} s"
        + (f"; checkpoint {args.checkpoint} every {args.checkpoint_every:g} s" if args.checkpoint else ""))
    sd_notify(f"READY=1\nSTATUS=streaming {os.path.basename(args.model)} on {backend}")
    try:
        report = sched.run(ticks=args.ticks, seconds=args.seconds,
                           until_end=args.ticks is None and args.seconds is None,
                           on_status=on_status, status_every=min(0.2, args.log_every))
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    sd_notify("STOPPING=1")
    if args.checkpoint:
        checkpoint()
    why = f"stopped by {stop['signal']}" if stop["signal"] else f"stopped ({report.get('stopped', 'done')})"
    log(f"{why} at runtime tick {rt.tick}; {saved['n']} checkpoint(s) written")
    print(report, flush=True)
    if args.report:
        import json
        with open(args.report, "w") as f:
            json.dump(report, f, indent=1)
    return 0


def add_arguments(q) -> None:
    q.add_argument("--checkpoint", metavar="FILE.npz",
                   help="save the runtime's state here (atomically) and resume from it at start")
    q.add_argument("--checkpoint-every", type=float, default=30.0, metavar="SEC",
                   help="seconds between checkpoints (default 30; one more at shutdown)")
    q.add_argument("--log-every", type=float, default=10.0, metavar="SEC",
                   help="seconds between status lines on stdout (default 10)")


__all__ = ["serve", "add_arguments", "save_checkpoint", "load_checkpoint", "sd_notify", "Stop"]
if __name__ == "__main__":  # pragma: no cover
    sys.exit("use: tianrt serve MODEL …")
