"""The python examples in the docs run and their assertions hold."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ["docs/semantics.md", "README.md", "docs/training.md"]


def blocks(path):
    text = (ROOT / path).read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.mark.parametrize("path", DOCS)
def test_python_examples_run(path):
    code = blocks(path)
    assert code, f"{path} has no python examples"
    namespace = {}
    for i, block in enumerate(code):
        try:
            exec(compile(block, f"{path}[block {i}]", "exec"), namespace)
        except Exception as exc:  # pragma: no cover - the message is the point
            raise AssertionError(f"{path} block {i} failed: {exc!r}\n{block}") from exc
