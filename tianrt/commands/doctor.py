"""``tianrt doctor [MODEL] [--json] [--factor F]``: what this machine is (CPU, cores, OS,
Python, numpy/numba/OpenCV, whether numba works or the numpy path is used, the kernel
cache's state) and, given a model file, a measured profile on each available backend,
scaled to a Raspberry Pi 4 and 5 (docs/deploy.md)."""
from __future__ import annotations

import json
import sys


def _table(rows: list[tuple], out) -> None:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for j, r in enumerate(rows):
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip(), file=out)
        if j == 0:
            print("  ".join("-" * w for w in widths), file=out)


def _ms(v) -> str:
    return "-" if v is None else (f"{v:.3f}" if v < 10 else f"{v:.1f}")


def report(doc: dict, out=None) -> None:
    out = out or sys.stdout
    m, nb, cache = doc["machine"], doc["numba"], doc["cache"]
    v = m["versions"]
    print(f"machine   {m['cpu']} ({m['arch']}, {m['bits']}-bit), {m['cores']} cores, "
          f"{m['memory_mb'] and round(m['memory_mb'] / 1024, 1)} GiB; {m['os']}", file=out)
    print(f"software  Python {m['python']}, tianrt {v['tianrt']}, numpy {v['numpy']}, numba {v['numba'] or '-'}, "
          f"llvmlite {v['llvmlite'] or '-'}, OpenCV {v['opencv'] or '-'}, pyserial {v['pyserial'] or '-'}", file=out)
    if nb["works"]:
        pin = f", pinned by NUMBA_CPU_NAME={nb['cpu_name_pinned']}" if nb["cpu_name_pinned"] else ""
        print(f"numba     works (LLVM CPU {nb['cpu_name']}{pin}); backend='auto' uses numba", file=out)
    else:
        print(f"numba     not usable ({nb['error']}); backend='auto' uses the numpy reference backend", file=out)
    cpus = ", ".join(f"{k}: {n}" for k, n in cache["cpus"].items()) or "empty"
    port = ("portable to other cores of this architecture (NUMBA_CPU_NAME=generic)" if cache["portable"]
            else "not portable: built for this CPU (tianrt warmup --portable builds one that is)"
            if cache["signatures"] else "run `tianrt warmup` to fill it")
    print(f"cache     {cache['signatures']} compiled signatures in {cache['index_files']} index files "
          f"({cpus}); {port}", file=out)
    print(f"          where: {', '.join(cache['dirs'])}", file=out)
    if cache["signatures"] and nb["works"] and not cache["usable_here"]:
        print(f"          none of it is used here: this process compiles for {nb['cpu_name']}"
              + (" (set NUMBA_CPU_NAME=generic to use the portable cache)" if cache["portable"] else ""), file=out)
    prof = doc.get("profile")
    if not prof:
        return
    md = prof["model"]
    ins = ", ".join(f"{k} {tuple(i['shape'])} {i['domain']} @ {i['rate_hz'] or 'every tick'}"
                    + (" Hz" if i["rate_hz"] else "") for k, i in md["inputs"].items())
    print(f"\nmodel     {md['path']}: {md['name']!r}, tick {md['dt_s'] * 1e3:g} ms ({md['tick_hz']:g} Hz), "
          f"{md['nodes']} nodes, {md['params']:,} params; inputs {ins}", file=out)
    print(f"measured  {prof['ticks']} ticks per backend, each in a fresh process, inputs at their declared "
          f"rates, GC frozen in the loop", file=out)
    rows = [("backend", "import s", "build s", "1st tick s", "start s", "tick p50 ms", "tick p99 ms",
             "max ms", "load", "RSS MB")]
    for name, b in prof["backends"].items():
        if "error" in b:
            rows.append((name, "unavailable:", b["error"][:60], "", "", "", "", "", "", ""))
            continue
        rows.append((name, f"{b['import_s']:.3f}", f"{b['build_s']:.3f}", f"{b['first_tick_s']:.3f}",
                     f"{b['start_s']:.2f}", _ms(b["tick_p50_ms"]), _ms(b["tick_p99_ms"]), _ms(b["tick_max_ms"]),
                     f"{b['load']:.2%}", b["rss_mb"] if b["rss_mb"] is not None else "-"))
    print(file=out)
    _table(rows, out)
    rows = [("backend", "target", "factor", "load", "margin", "tick p99 ms", "start s", "inputs met", "keeps up")]
    for name, targets in prof["targets"].items():
        for key, t in targets.items():
            fac = f"{t['factor']:g}x" + (f" ({t['factor_range'][0]:g}-{t['factor_range'][1]:g})"
                                         if "factor_range" in t else "")
            met = ", ".join(f"{k} {'yes' if i['met'] else 'NO'}" for k, i in t["inputs"].items()) or "-"
            rows.append((name, t.get("board", key), fac, f"{t['load']:.1%}", f"{t['margin']:.1%}",
                         _ms(t["tick_p99_ms"]), f"{t['start_s']:.2f}", met, t["keeps_up"]))
    print(file=out)
    _table(rows, out)
    print(f"\nkeeps up: yes = scaled load <= {prof['headroom']:.0%} of a core and tick p99 within one tick; "
          "tight = below 100 % but not both; no = falls behind. Scaled: CPU time x factor "
          "(the slow end of the range); a board's I/O and other jobs come on top.", file=out)


def doctor(model: str | None = None, backends=None, ticks=None, seconds: float = 2.0,
           factor: float | None = None) -> dict:
    from ..deploy import machine
    from ..deploy.profile import profile

    nb = machine.numba_status()
    doc = {"machine": machine.machine_info(), "numba": nb, "cache": machine.cache_state(nb["cpu_name"])}
    if model:
        if backends is None:
            backends = ["reference"] + (["numba"] if doc["numba"]["works"] else [])
        on_arm = doc["machine"]["arch"] in ("aarch64", "arm64", "armv7l", "armv6l")
        boards = {} if on_arm else dict(machine.BOARDS)
        if factor is not None:
            boards["measured"] = (f"measured board ({factor:g}x)", factor, factor)
        doc["profile"] = profile(model, backends=backends, ticks=ticks, seconds=seconds, factors=boards)
    return doc


def _cmd(args) -> int:
    from ..errors import UsageError

    if args.factor is not None and not args.factor > 0:
        raise UsageError(f"--factor must be a positive number (how many times slower per core), got {args.factor}")
    if args.ticks is not None and args.ticks < 10:
        raise UsageError(f"--ticks must be at least 10, got {args.ticks}")
    if args.model:
        from ..modelfile import load
        load(args.model)  # a bad file fails here, with the loader's message (exit 1)
    backends = args.backend.split(",") if args.backend else None
    doc = doctor(args.model, backends, args.ticks, args.seconds, args.factor)
    if args.json:
        print(json.dumps(doc, indent=1))
    else:
        report(doc)
    return 0


def register(sub) -> None:
    p = sub.add_parser("doctor", help="what this machine is; with a model, what it costs here and on a Pi",
                       description="Print this machine's CPU, OS, Python and library versions, whether numba "
                                   "works (else the numpy reference backend is used) and the numba kernel "
                                   "cache's state. Given a model file, measure import, build, first tick, "
                                   "per-tick p50/p99, load and RSS on each available backend, and scale them "
                                   "to a Raspberry Pi 4 (9-12x slower per core) and Pi 5 (3-4x). "
                                   "See docs/deploy.md.")
    p.add_argument("model", nargs="?", help="model file (.tnr) to profile")
    p.add_argument("--json", action="store_true", help="print JSON instead of the tables (docs/deploy.md)")
    p.add_argument("--factor", type=float, help="also scale by this measured factor (board time / this "
                                                "machine's time per core)")
    p.add_argument("--backend", help="comma list of backends to profile (default: reference, and numba if it works)")
    p.add_argument("--ticks", type=int, help="ticks to measure per backend (default: --seconds of stream time, "
                                             "200 to 20000)")
    p.add_argument("--seconds", type=float, default=2.0, help="stream seconds to measure (default 2)")
    p.set_defaults(func=_cmd)
