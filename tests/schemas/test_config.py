"""Configuration: defaults documented in YAML, errors that name the key, --set overrides."""

from __future__ import annotations

import pytest
import yaml

from corpusforge.schemas.config import Config, ConfigError, default_config_path, load_config


def test_default_yaml_documents_exactly_the_model_defaults():
    documented = yaml.safe_load(default_config_path().read_text())
    assert documented == Config().resolved()


def test_every_default_key_has_a_comment():
    for line in default_config_path().read_text().splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#") and not stripped.endswith(":") and ":" in stripped:
            assert "#" in stripped, f"undocumented key: {stripped}"


def test_unknown_key_names_its_full_path(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("input:\n  text_feild: body\n")
    with pytest.raises(ConfigError, match=r"input\.text_feild: unknown key"):
        load_config(path)


def test_unknown_section_is_refused():
    with pytest.raises(ConfigError, match=r"nonsense: unknown key"):
        load_config(None, ["nonsense.enabled=true"])


def test_bad_value_names_its_full_path():
    with pytest.raises(ConfigError, match=r"input\.max_chars"):
        load_config(None, ["input.max_chars=-3"])
    with pytest.raises(ConfigError, match=r"input\.format"):
        load_config(None, ["input.format=xml"])


def test_set_overrides_parse_values_as_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("input:\n  text_field: body\n")
    cfg = load_config(path, ["input.max_chars=500", "output.rejected_text=false"])
    assert cfg.input.text_field == "body"
    assert cfg.input.max_chars == 500
    assert cfg.output.rejected_text is False


def test_set_without_equals_is_an_error():
    with pytest.raises(ConfigError, match="expected dotted.key=value"):
        load_config(None, ["input.max_chars"])


def test_config_hash_is_stable_and_sensitive():
    assert Config().digest() == Config().digest()
    assert load_config(None, ["input.max_chars=10"]).digest() != Config().digest()


def test_bad_yaml_file_is_reported(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("input: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)


def test_a_section_with_every_key_commented_out_means_its_defaults(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("input:\n  # text_field: body\n")
    assert load_config(path).input == Config().input


def test_a_boolean_is_not_a_number():
    with pytest.raises(ConfigError, match=r"input\.max_chars: .*expected a number"):
        load_config(None, ["input.max_chars=true"])
    assert load_config(None, ["output.rejected_text=false"]).output.rejected_text is False


def test_renamed_quality_keys_still_work_with_a_warning_naming_the_new_key(tmp_path, caplog):
    from corpusforge.schemas.config import RENAMED_KEYS

    old_file = tmp_path / "old.yaml"
    old_file.write_text("quality:\n  fineweb:\n    char_duplicates_ratio: 0.05\n", encoding="utf-8")
    with caplog.at_level("WARNING"):
        cfg = load_config(old_file, overrides=["quality.fineweb.new_line_ratio=0.5"])
    assert cfg.quality.fineweb.max_char_dup_ratio == 0.05 and cfg.quality.fineweb.max_list_ratio == 0.5
    for old, new in RENAMED_KEYS.items():
        assert f"{old} is renamed to {new}" in caplog.text
    with pytest.raises(
        ConfigError, match="quality.fineweb.new_line_ratio: renamed to quality.fineweb.max_list_ratio"
    ):
        load_config(overrides=["quality.fineweb.new_line_ratio=0.5", "quality.fineweb.max_list_ratio=0.4"])


def test_a_quality_number_has_one_name_across_key_signal_and_rule():
    """The rule (part of the rejection reason, a data contract), the signal it reads and the
    threshold key share one name; the key adds only its direction (max_/min_)."""
    import dataclasses

    from corpusforge.schemas.config import FineWebConfig, GopherQualityConfig
    from corpusforge.schemas.records import QualitySignals

    signals = {f.name for f in dataclasses.fields(QualitySignals)}
    for rule, section in (
        ("bullet_lines_ratio", GopherQualityConfig),
        ("char_dup_ratio", FineWebConfig),
        ("list_ratio", FineWebConfig),
    ):
        assert rule in signals
        assert f"max_{rule}" in section.model_fields
