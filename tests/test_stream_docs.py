"""The python examples in docs/streaming.md run and their assertions hold."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_streaming_doc_examples_run(tmp_path, monkeypatch):
    text = (ROOT / "docs/streaming.md").read_text()
    code = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert code, "docs/streaming.md has no python examples"
    monkeypatch.chdir(tmp_path)
    namespace = {}
    for i, block in enumerate(code):
        try:
            exec(compile(block, f"docs/streaming.md[block {i}]", "exec"), namespace)
        except Exception as exc:  # pragma: no cover - the message is the point
            raise AssertionError(f"docs/streaming.md block {i} failed: {exc!r}\n{block}") from exc
