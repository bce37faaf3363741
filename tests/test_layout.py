"""The import rules of DESIGN §1, checked on the source: kernels know nothing of graphs,
firmware_sim never imports the graph or runtime, demos use only the public API."""
import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imports(folder):
    for path in sorted((ROOT / folder).rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    yield path, a.name
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: resolve against the package folder
                    pkg = path.parent.relative_to(ROOT).parts
                    base = list(pkg[: len(pkg) - node.level + 1])
                    top = {"kernels": "tianrt.kernels", "firmware_sim": "tianrt.firmware_sim",
                           "demos": "tianrt.demos"}.get(base[0], base[0])
                    name = ".".join([top, *base[1:]] + ([node.module] if node.module else []))
                else:
                    name = node.module
                yield path, name
                for a in node.names:  # `from tianrt import graph` imports a module too
                    yield path, f"{name}.{a.name}"


def stdlib(name):
    return name.split(".")[0] in sys.stdlib_module_names or name == "__future__"


def test_kernels_import_only_numpy_and_numba():
    bad = [(str(p.relative_to(ROOT)), n) for p, n in imports("kernels")
           if not (stdlib(n) or n.split(".")[0] in ("numpy", "numba") or n.startswith("tianrt.kernels"))]
    assert not bad, f"kernels/ may import numpy and numba only: {bad}"


FIRMWARE_OK = ("tianrt.kernels", "tianrt.firmware_sim", "tianrt.chip.image_format", "tianrt.chip.protocol", "tianrt.ops",
               "tianrt.qmath")


def test_firmware_sim_never_imports_graph_or_runtime():
    bad = [(str(p.relative_to(ROOT)), n) for p, n in imports("firmware_sim")
           if n.startswith("tianrt") and not n.startswith(FIRMWARE_OK)
           and n not in ("tianrt", "tianrt.chip")]
    assert not bad, f"firmware_sim/ may import tianrt.kernels and the image/protocol format only: {bad}"


def test_firmware_sim_loads_without_the_runtime():
    code = ("import sys, pkgutil, importlib, tianrt.firmware_sim as f\n"
            "for m in pkgutil.walk_packages(f.__path__, f.__name__ + '.'):\n"
            "    if not m.name.endswith('__main__'): importlib.import_module(m.name)\n"
            "bad = [m for m in sys.modules if m in ('tianrt.graph', 'tianrt.runtime') or m.startswith('tianrt.backends')]\n"
            "assert not bad, bad\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]


def test_demos_use_only_the_public_api():
    import tianrt
    public = set(tianrt.__all__)
    bad = [(str(p.relative_to(ROOT)), n) for p, n in imports("demos")
           if n.startswith("tianrt") and n != "tianrt" and not n.startswith("tianrt.demos")
           and n.split(".")[1] not in public]
    assert not bad, f"demos/ may use only `import tianrt` (and its public modules): {bad}"
