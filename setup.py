"""Package discovery for the namespaced layout (metadata lives in pyproject.toml).

The repo layout is the one the project was specified with (kernels/, firmware_sim/,
demos/ at the top of the repo), but the import names are namespaced under `tianrt`
(`tianrt.kernels`, `tianrt.firmware_sim`, `tianrt.demos`) so that generic names like
`kernels` or `demos` never land at the top of a user's site-packages. setuptools'
package-dir mapping does this for editable and normal installs alike; every folder
with an __init__.py below these roots becomes a subpackage automatically.
"""
from pathlib import Path

from setuptools import setup

ROOTS = {"tianrt": "tianrt", "tianrt.kernels": "kernels",
         "tianrt.firmware_sim": "firmware_sim", "tianrt.demos": "demos"}
HERE = Path(__file__).parent

packages, package_dir = [], {}
for name, folder in ROOTS.items():
    package_dir[name] = folder
    for init in sorted((HERE / folder).rglob("__init__.py")):
        rel = init.parent.relative_to(HERE / folder)
        if any(part.startswith((".", "_")) for part in rel.parts):
            continue
        sub = ".".join((name, *rel.parts)) if rel.parts else name
        packages.append(sub)
        if rel.parts:
            package_dir[sub] = str(Path(folder, *rel.parts))

setup(packages=packages, package_dir=package_dir,
      package_data={"": ["data/*", "*.md"]},
      include_package_data=True)
