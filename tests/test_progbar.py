"""The progress bar: what it draws on a terminal, in a log, and how it averages."""
import io
import re

import pytest

from dropout_engine.progbar import Progbar


class Terminal(io.StringIO):
    def isatty(self):
        return True


def bar(target, tty=True, **kwargs):
    out = Terminal() if tty else io.StringIO()
    return Progbar(target, interval=0, file=out, **kwargs), out


def test_terminal_redraws_one_line_with_bar_eta_metrics_and_throughput():
    p, out = bar(47, stateful_metrics=["loss", "accuracy"])
    p.update(12, [("loss", 0.43124), ("accuracy", 0.88214)], samples=384)
    text = out.getvalue()
    assert text.startswith("\r12/47 [" + "=" * 6 + ">" + "." * 23 + "] - ETA: ")
    assert re.search(r" - loss: 0\.4312 - accuracy: 0\.8821 - \d+ samples/s$", text)
    assert "\n" not in text


def test_terminal_final_line_has_elapsed_time_per_step_and_newline():
    p, out = bar(10)
    p.update(5, [("loss", 1.0)])
    p.update(10, [("loss", 0.5)])
    last = out.getvalue().split("\r")[-1]
    assert re.fullmatch(r"10/10 \[={30}\] - \d+s \d+(us|ms|s)/step - loss: 0\.5000\s*\n",
                        last)


def test_shorter_line_pads_over_the_previous_one():
    p, out = bar(10)
    p.update(1, [("a_long_metric_name", 1.0)])
    first = out.getvalue()
    p2_len = len(first) - 1
    p.update(2, [])
    second = out.getvalue()[len(first):]
    assert len(second) - 1 >= p2_len


def test_not_a_terminal_prints_one_line_per_bar():
    p, out = bar(20, tty=False)
    for i in range(1, 21):
        p.update(i, [("loss", 1.0 / i)])
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("20/20 [=====")
    assert "\r" not in out.getvalue()


def test_verbose_2_prints_count_time_and_metrics_only():
    p, out = bar(8, verbose=2)
    p.update(4, [("loss", 1.0)])
    p.update(8, [("loss", 0.5)])
    assert re.fullmatch(r"8/8 - \d+s - \d+(us|ms|s)/step - loss: 0\.5000\n",
                        out.getvalue())


def test_verbose_0_is_silent():
    p, out = bar(8, verbose=0)
    p.update(8, [("loss", 0.5)])
    assert out.getvalue() == ""


def test_stateless_values_are_step_weighted_averages():
    p, out = bar(10)
    p.update(2, [("loss", 1.0)])        # 2 steps at 1.0
    p.update(8, [("loss", 0.5)])        # 6 steps at 0.5
    assert "loss: 0.6250" in out.getvalue().split("\r")[-1]


def test_interval_limits_redraws_but_not_the_final_line():
    out = Terminal()
    p = Progbar(100, interval=3600, file=out)
    for i in range(1, 100):
        p.update(i)
    p.update(100)
    assert out.getvalue().count("\r") == 2   # the first update and the last


def test_unknown_target_and_add():
    p, out = bar(None)
    p.add(3, [("loss", 0.25)])
    assert out.getvalue().startswith("\r      3/Unknown - ")
    p.update(5, finalize=True)
    assert out.getvalue().endswith("\n")


def test_small_values_use_exponent_and_text_passes_through():
    p, out = bar(1, stateful_metrics=["lr"])
    p.update(1, [("lr", 1e-5), ("phase", "warmup")])
    assert "lr: 1.0000e-05 - phase: warmup" in out.getvalue()


def test_arrow_and_eta_formats():
    p, out = bar(1000, width=10)
    p.update(1)
    p.update(500)
    assert "500/1000 [====>.....] - ETA: " in out.getvalue()


@pytest.mark.parametrize("kwargs, match", [
    ({"verbose": 3}, "verbose"),
    ({"stateful_metrics": ["a"], "stateless_metrics": ["b"]}, "not both"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Progbar(10, **kwargs)
