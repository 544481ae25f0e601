"""docs/recording-rules.md: its example loads, and every output it shows is real.

``render(doc, workdir)`` reruns each ``$ voiceboard rules ...`` block and the
audit-log example; the test asserts the page is what render makes of it.
Run ``python tests/server/test_rules_doc.py`` to refresh the page after a
deliberate change of output.
"""
from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
import shlex
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "recording-rules.md"

sys.path.insert(0, str(REPO))
from voiceserver.cli.rules import main  # noqa: E402
from voiceserver.recording.rules import load_rules  # noqa: E402
from voiceserver.recording.watch import RulesWatcher  # noqa: E402

FENCE = re.compile(r"```(\w*)\n(.*?)```", re.S)


def toml_files(doc: str) -> dict[str, str]:
    """The example rules (after 'A complete example') and '# NAME.toml' blocks."""
    out: dict[str, str] = {}
    example_at = doc.index("## A complete example")
    for m in FENCE.finditer(doc):
        if m.group(1) != "toml":
            continue
        body = m.group(2)
        first = body.splitlines()[0]
        if re.fullmatch(r"# [\w-]+\.toml", first):
            out[first[2:]] = body
        elif m.start() > example_at and "recording-rules.toml" not in out:
            out["recording-rules.toml"] = body
    return out


def audit_example(workdir: Path, example: str) -> str:
    """One reload of the example: sampling and an exclusion changed (a fixed clock)."""
    path = workdir / "recording-rules.toml"
    w = RulesWatcher("recording-rules.toml", load_rules, current=load_rules(path),
                     audit_path=workdir / "audit.jsonl",
                     clock=lambda: dt.datetime(2026, 11, 23, 2, 0, 1, tzinfo=dt.UTC))
    path.write_text(example.replace("inbound = 30", "inbound = 50")
                    .replace('"1001-1010,!1004"', '"1001-1010,!1004,!1007"'), encoding="utf-8")
    os.utime(path, ns=(0, path.stat().st_mtime_ns + 1_000_000))
    w.reload(source="file watch")
    line = (workdir / "audit.jsonl").read_text().splitlines()[-1]
    return json.dumps(json.loads(line), indent=2, ensure_ascii=False) + "\n"


def render(doc: str, workdir: Path) -> str:
    files = toml_files(doc)
    for name, body in files.items():
        (workdir / name).write_text(body, encoding="utf-8")
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        def console(m: re.Match[str]) -> str:
            if m.group(1) == "json" and '"hash_before"' in m.group(2) or m.group(2) == "@@AUDIT@@\n":
                return f"```json\n{audit_example(workdir, files['recording-rules.toml'])}```"
            if m.group(1) != "console":
                return m.group(0)
            cmd = m.group(2).splitlines()[0]
            assert cmd.startswith("$ voiceboard rules "), cmd
            out = io.StringIO()
            main(shlex.split(cmd[len("$ voiceboard rules "):]), out=out, err=out)
            return f"```console\n{cmd}\n{out.getvalue()}```"
        return FENCE.sub(console, doc)
    finally:
        os.chdir(cwd)


def test_the_page_shows_real_output(tmp_path: Path):
    doc = DOC.read_text(encoding="utf-8")
    assert render(doc, tmp_path) == doc


def test_the_example_loads_without_warnings(tmp_path: Path):
    files = toml_files(DOC.read_text(encoding="utf-8"))
    p = tmp_path / "recording-rules.toml"
    p.write_text(files["recording-rules.toml"], encoding="utf-8")
    rules = load_rules(p)
    assert rules.warnings == () and len(rules.windows) == 3 and rules.pause_dtmf
    assert set(files) == {"recording-rules.toml", "problems.toml", "hotline-server.toml"}


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as d:
        DOC.write_text(render(DOC.read_text(encoding="utf-8"), Path(d)), encoding="utf-8")
    print(f"rendered {DOC}")
