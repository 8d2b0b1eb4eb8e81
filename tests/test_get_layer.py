"""Model.get_layer and count_params: Keras 3's lookups and errors."""
import pytest

from dropout_engine.layers import Dense, Dropout, Input
from dropout_engine.model import Sequential


def _model():
    return Sequential([Input((4,)), Dense(3, name="hidden"), Dropout(0.5, name="drop"),
                       Dense(2, name="out")])


def test_get_layer_by_name_and_index():
    m = _model()
    assert m.get_layer("drop") is m.layers[1]
    assert m.get_layer(index=2) is m.layers[2]
    assert m.get_layer(name="hidden").get_weights()[0].shape == (4, 3)


@pytest.mark.parametrize("kwargs, match", [
    ({"name": "nope"}, r"No such layer: nope. Existing layers are: \['hidden', 'drop', 'out'\]"),
    ({"index": 3}, "at index 3 but model only has 3 layers"),
    ({}, "Provide either a layer name or layer index"),
    ({"name": "out", "index": 0}, "Provide only a layer name or a layer index"),
])
def test_get_layer_errors_are_keras_s(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _model().get_layer(**kwargs)


def test_count_params_counts_weights_and_needs_a_build():
    assert _model().count_params() == 4 * 3 + 3 + 3 * 2 + 2
    unbuilt = Sequential([Dense(3)])
    with pytest.raises(ValueError, match="isn't built"):
        unbuilt.count_params()
