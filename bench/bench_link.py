"""Serial-link benchmark: frames/s and bytes/s over a pty (and a socket, side by side), and
per-tick round-trip latency of a small hybrid graph over the link against the same engine
called in process.

    .venv/bin/python bench/bench_link.py [--quick]

Each run starts its own emulators (python -m tianrt.firmware_sim) and stops them at the end.
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
import zlib

import numpy as np

import tianrt as tr
from tianrt.chip import protocol as P
from tianrt.chip.link import ChipLink

UART_BYTES_PER_S = 921600 / 10   # 8N1: 10 bits per byte


def pct(xs, q):
    return float(np.percentile(np.asarray(xs), q))


def round_trips(link: ChipLink, n: int) -> dict:
    lat = []
    for _ in range(n):
        t = time.perf_counter()
        link.info()
        lat.append(time.perf_counter() - t)
    total = sum(lat)
    return {"rt_per_s": n / total, "frames_per_s": 2 * n / total,
            "p50_us": pct(lat, 50) * 1e6, "p99_us": pct(lat, 99) * 1e6}


def upload_rate(link: ChipLink, chunk: int, total: int) -> dict:
    """Chunks of `chunk` payload bytes through UPLOAD_CHUNK (the image upload path); the
    upload is not committed, so only the link is measured."""
    data = np.random.default_rng(0).integers(0, 256, total, dtype=np.uint8).tobytes()
    link._exchange(P.UPLOAD_BEGIN, P.pack_upload_begin(P.LOAD_IMAGE, total, zlib.crc32(data)))
    sent0 = link.stats["bytes_sent"]
    step = chunk - 4
    t = time.perf_counter()
    frames = 0
    for off in range(0, total, step):
        f = link._exchange(P.UPLOAD_CHUNK, P.pack_chunk(off, data[off:off + step]))
        assert f.kind == P.ACK, P.read_nak(f.payload)
        frames += 1
    dt = time.perf_counter() - t
    return {"chunk": chunk, "payload_MB_s": total / dt / 1e6,
            "wire_MB_s": (link.stats["bytes_sent"] - sent0) / dt / 1e6, "frames_per_s": 2 * frames / dt}


def small_graph():
    rng = np.random.default_rng(0)
    g = tr.Graph(dt=1e-3, name="bench-small")
    x = g.input("x", shape=(16,))
    h = g.add(tr.ann.ReLU(), g.add(tr.ann.Dense(16, 32), x))
    s = g.add(tr.bridge.RateEncoder(), h)
    s = g.add(tr.snn.LIF(beta=0.9, threshold=1.0), g.add(tr.snn.Dense(32, 10), s))
    g.output("y", g.add(tr.bridge.SpikeCount(window=8), s))
    q = tr.quantize(g, calibration={"x": rng.random((32, 16)).astype(np.float32)})
    image, _report = tr.chip.compile(q, tr.chip.ChipSpec())
    return image


def per_tick(step, ticks: int) -> dict:
    lat = []
    for _ in range(ticks):
        t = time.perf_counter()
        step()
        lat.append(time.perf_counter() - t)
    return {"ticks_per_s": ticks / sum(lat), "p50_us": pct(lat, 50) * 1e6, "p99_us": pct(lat, 99) * 1e6}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = ap.parse_args(argv)
    n_rt = 300 if args.quick else 2000
    total = (1 << 20) if args.quick else (4 << 20)
    ticks = 100 if args.quick else 500

    print(f"machine: {platform.machine()}, Python {platform.python_version()}, {sys.platform}")
    image = small_graph()
    from tianrt.firmware_sim.engine import Engine

    rng = np.random.default_rng(1)
    x = rng.integers(-100, 100, 16).astype(np.int32)

    results = {}
    for kind in ("pty", "socket"):
        spawn = () if kind == "pty" else ("--socket", "0")
        if kind == "pty":
            link = ChipLink("auto", timeout=2.0)
        else:
            # the socket emulator is started by hand: port="auto" always uses a pty
            import subprocess

            proc = subprocess.Popen([sys.executable, "-m", "tianrt.firmware_sim", *spawn, "--quiet",
                                     "--exit-with-parent"], stdout=subprocess.PIPE)
            url = proc.stdout.readline().decode().strip()
            link = ChipLink(url, timeout=2.0)
        try:
            r = {"rt": round_trips(link, n_rt)}
            r["up"] = [upload_rate(link, c, total) for c in (256, 4096, P.MAX_PAYLOAD)]
            info = link.upload_image(image)
            name = info["inputs"][0]["name"]
            link.push_input(name, x)
            link.run(8)                      # warm-up: the emulator compiles its kernels
            link.pull_outputs()

            def tick_link():
                link.push_input(name, x)
                link.run(1)
                link.pull_outputs()

            r["tick"] = per_tick(tick_link, ticks)
            r["tick_step"] = per_tick(lambda: link.step({name: x}, 1), ticks)
            t = time.perf_counter()
            link.push_input(name, x)
            link.run(ticks * 4)
            link.pull_outputs()
            r["batch_ticks_per_s"] = ticks * 4 / (time.perf_counter() - t)
            results[kind] = r
        finally:
            link.close()
            if kind == "socket":
                proc.terminate()
                proc.wait(5)

    eng = Engine()
    eng.load_image(image)
    name = eng.info()["inputs"][0]["name"]
    eng.push_input(name, x)
    eng.run(8)
    eng.pull_outputs()

    def tick_local():
        eng.push_input(name, x)
        eng.run(1)
        eng.pull_outputs()

    local = per_tick(tick_local, ticks)
    t = time.perf_counter()
    eng.push_input(name, x)
    eng.run(ticks * 4)
    eng.pull_outputs()
    local_batch = ticks * 4 / (time.perf_counter() - t)

    print(f"\nround trips (INFO, {n_rt}x): request + reply = 2 frames")
    print(f"{'transport':10s} {'RT/s':>9s} {'frames/s':>9s} {'p50 us':>8s} {'p99 us':>8s}")
    for kind, r in results.items():
        rt = r["rt"]
        print(f"{kind:10s} {rt['rt_per_s']:9.0f} {rt['frames_per_s']:9.0f} {rt['p50_us']:8.0f} {rt['p99_us']:8.0f}")
    print(f"\nchunked upload of {total >> 20} MiB (UPLOAD_CHUNK, stop-and-wait)")
    print(f"{'transport':10s} {'chunk B':>8s} {'payload MB/s':>13s} {'wire MB/s':>10s} {'frames/s':>9s} {'x 921600-baud UART':>19s}")
    for kind, r in results.items():
        for u in r["up"]:
            print(f"{kind:10s} {u['chunk']:8d} {u['payload_MB_s']:13.2f} {u['wire_MB_s']:10.2f} "
                  f"{u['frames_per_s']:9.0f} {u['wire_MB_s'] * 1e6 / UART_BYTES_PER_S:19.1f}")
    print(f"\nper-tick latency, small hybrid graph (Dense 16->32, rate encoder, SynDense 32->10, LIF, "
          f"count), {ticks} ticks of push + run(1) + pull")
    print("(STEP: the same push + run(1) + pull as one exchange)")
    print(f"{'where':18s} {'ticks/s':>9s} {'p50 us':>8s} {'p99 us':>8s} {'batched ticks/s':>16s}")
    rows = []
    for k, r in results.items():
        rows.append((f"link over {k}", r["tick"], r["batch_ticks_per_s"]))
        rows.append((f"  STEP over {k}", r["tick_step"], None))
    rows.append(("engine in process", local, local_batch))
    for label, t, b in rows:
        batched = f"{b:16.0f}" if b is not None else f"{'':>16s}"
        print(f"{label:18s} {t['ticks_per_s']:9.0f} {t['p50_us']:8.0f} {t['p99_us']:8.0f} {batched}")
    pty = results["pty"]
    print("\nratios (same run):")
    print(f"  per-tick p50, link over pty / engine in process: {pty['tick']['p50_us'] / local['p50_us']:.1f}x")
    print(f"  per-tick p50 over pty, 3 exchanges / one STEP: "
          f"{pty['tick']['p50_us'] / pty['tick_step']['p50_us']:.1f}x")
    print(f"  per-tick p50, STEP over pty / engine in process: "
          f"{pty['tick_step']['p50_us'] / local['p50_us']:.1f}x")
    print(f"  per-tick p50, pty / socket: {pty['tick']['p50_us'] / results['socket']['tick']['p50_us']:.2f}x")
    print(f"  batched run(N) over pty / in process, ticks/s: {pty['batch_ticks_per_s'] / local_batch:.2f}")
    big = [u for u in pty["up"] if u["chunk"] == P.MAX_PAYLOAD][0]
    small = [u for u in pty["up"] if u["chunk"] == 256][0]
    print(f"  upload bytes/s, {P.MAX_PAYLOAD} B chunks / 256 B chunks (pty): "
          f"{big['payload_MB_s'] / small['payload_MB_s']:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
