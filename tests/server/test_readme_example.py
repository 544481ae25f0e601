"""The README's server config example loads clean against the packaged prompts."""
import re
from pathlib import Path

from voiceserver.config.server import load_config
from voiceserver.ivr.prompts import PromptLibrary

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_config_example_is_valid(tmp_path):
    blocks = re.findall(r"```toml\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert blocks, "README.md has no ```toml example"
    path = tmp_path / "server.toml"
    path.write_text(blocks[0], encoding="utf-8")
    cfg = load_config(path, library=PromptLibrary())
    assert cfg.warnings == ()
    assert set(cfg.ivr.menus) == {"main", "account", "closed"}
    assert [r for r in cfg.channels.agents] == [("hotline", c) for c in range(4, 8)]


def _blocks() -> list[str]:
    return re.findall(r"```toml\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_readme_agents_and_recording_examples_load_with_the_base_config(tmp_path):
    """The admin sections' blocks are fragments of one server config plus a rules file."""
    base, agents, storage, rules = (b for b in _blocks()[:4])
    assert "[agents.1001]" in agents and "[storage]" in storage and "[[window]]" in rules
    (tmp_path / "recording-rules.toml").write_text(rules, encoding="utf-8")
    storage = storage.replace("/var/lib/voiceboard/", "")     # relative to the config: tmp_path
    path = tmp_path / "server.toml"
    path.write_text(base + agents + storage, encoding="utf-8")
    cfg = load_config(path, library=PromptLibrary())
    assert cfg.warnings == ()
    assert cfg.acd is not None and cfg.recording is not None
    assert cfg.recording.layout == "stereo" and cfg.recording.min_seconds == 5
    assert {w.name for w in cfg.recording.windows} == {"office", "weekend"}
    # the rules' agent lists name the config's agents: 1001 excluded, 1005 not, 2001 forced
    import datetime as dt

    from voiceserver.recording.rules import CallFacts
    at = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    assert {a.name for a in cfg.acd.agents} == {"1001", "1005", "2001", "zhao"}
    decide = lambda agent: cfg.recording.decide(CallFacts("c", agent=agent), at)  # noqa: E731
    assert decide("1001").rule.key == "exclude.agents" and not decide("1001").record
    assert decide("1005").record and decide("2001").rule.key == "force.agents"
    assert not any(tmp_path.joinpath(d).exists() for d in ("recordings", "voicemail", "calls.db"))
