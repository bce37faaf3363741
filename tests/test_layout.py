"""The layout rules of docs/architecture.md, checked on the source: kernels know nothing of
graphs, firmware_sim never imports the graph or runtime, demos use only the public API, no
import cycle between files or between packages, and no module longer than about 500 lines."""
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
           if not (stdlib(n) or n.split(".")[0] in ("numpy", "numba", "llvmlite") or n.startswith("tianrt.kernels"))]
    # llvmlite is numba's own IR builder (installed with it), for the intrinsics of kernels/simd.py
    assert not bad, f"kernels/ may import numpy and numba (and llvmlite, numba's IR layer) only: {bad}"


FIRMWARE_OK = ("tianrt.kernels", "tianrt.firmware_sim", "tianrt.chip.image_format", "tianrt.chip.protocol", "tianrt.ops",
               "tianrt.chip.spec", "tianrt.chip.timing", "tianrt.chip.wire", "tianrt.chip.regionwire",
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


# -- cycles and sizes ------------------------------------------------------------------------------

FOLDERS = {"tianrt": "tianrt", "kernels": "tianrt.kernels", "firmware_sim": "tianrt.firmware_sim",
           "demos": "tianrt.demos"}
MAX_LINES = 500


def _modules():
    mods = {}
    for folder, top in FOLDERS.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = [top, *path.relative_to(ROOT / folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join(parts)] = path
    return mods


def import_graph():
    """module -> modules it imports (anywhere in the file, lazy imports included); a name
    imported from a package counts as its submodule when it is one. The implicit import
    of a module's own parent packages is not an edge."""
    mods = _modules()
    graph = {}
    for m, path in mods.items():
        pkg = m if path.name == "__init__.py" else m.rsplit(".", 1)[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module
                if node.level:
                    up = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                    base = ".".join(up + ([node.module] if node.module else []))
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            else:
                continue
            for n in names:
                while n not in mods and "." in n:
                    n = n.rsplit(".", 1)[0]
                if n in mods and n != m:
                    found.add(n)
        graph[m] = found
    return graph, mods


def cycles(graph):
    """The strongly connected components with more than one member (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_between_files():
    graph, _ = import_graph()
    assert not cycles(graph), f"import cycles between modules: {cycles(graph)}"


def test_no_import_cycle_between_packages():
    """Each subpackage is one node (a top-level module of tianrt is its own)."""
    graph, mods = import_graph()

    def group(m):
        if mods[m].name == "__init__.py":
            return m
        parent = m.rsplit(".", 1)[0]
        return m if parent == "tianrt" else parent
    pg = {}
    for m, deps in graph.items():
        pg.setdefault(group(m), set()).update(group(n) for n in deps if group(n) != group(m))
    assert not cycles(pg), f"import cycles between packages: {cycles(pg)}"


def test_the_cycle_check_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_is_longer_than_the_limit():
    long = {str(p.relative_to(ROOT)): n for p in _modules().values()
            if not str(p.relative_to(ROOT)).startswith("demos")
            and (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them by job): {long}"
