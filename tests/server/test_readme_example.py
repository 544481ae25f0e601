"""The README's server config example loads clean against the packaged prompts."""
import re
from pathlib import Path

from voiceserver.config import load_config
from voiceserver.prompts import PromptLibrary

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
