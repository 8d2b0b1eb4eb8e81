"""`python -m dropout_engine`: help text and the demo end to end."""
import re

import pytest

from dropout_engine.__main__ import main
from dropout_engine.safetensors import load_tensors


def test_help_explains_the_demo(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "demo" in out and "digits" in out and "samples/s" in out


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "usage:" in capsys.readouterr().out


def test_bad_epochs_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["demo", "--epochs", "0"])
    assert e.value.code == 2


def test_demo_trains_reports_and_saves(tmp_path, capsys):
    pytest.importorskip("dropout_engine.saving",
                        reason="the model code (saving.py) is not in this tree yet")
    out_file = tmp_path / "m.safetensors"
    assert main(["demo", "--epochs", "2", "--verbose", "0",
                 "--out", str(out_file)]) == 0
    out = capsys.readouterr().out
    acc = float(re.search(r"test accuracy:\s+([\d.]+)", out).group(1))
    assert 0.5 < acc <= 1.0            # two epochs already learn digits
    assert re.search(r"training speed:\s+[\d,]+ samples/s", out)
    assert f"saved model:    {out_file}" in out
    q = re.search(r"int8 \(model.quantize\): test accuracy ([\d.]+), batch-1 predict "
                  r"([\d.]+) us \(float32: ([\d.]+) us\)", out)
    assert q and abs(float(q.group(1)) - acc) < 0.05   # int8 keeps the accuracy
    load_tensors(out_file)            # a valid model file
    from dropout_engine.saving import load_model
    assert load_model(out_file).count_params() == (
        64 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10)
