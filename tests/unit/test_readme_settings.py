"""The README's configuration table names every KOSH_* setting."""

from pathlib import Path

from infra.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_setting_is_documented_in_the_readme() -> None:
    text = README.read_text()
    missing = [
        f"KOSH_{n.upper()}" for n in Settings.model_fields if f"`KOSH_{n.upper()}`" not in text
    ]
    assert not missing, f"add to the README configuration table: {missing}"


def test_every_setting_has_a_description() -> None:
    assert [n for n, f in Settings.model_fields.items() if not f.description] == []
