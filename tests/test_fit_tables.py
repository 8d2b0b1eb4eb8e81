"""pandas and pyarrow tables as x and y (training/frame_rows.py), and string /
categorical class labels in the scikit-learn wrappers."""
import numpy as np
import pytest

from dropout_engine.training import data_adapters

from test_fit_generators import _data, _model, _same_weights

pd = pytest.importorskip("pandas")


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(data_adapters, "CHUNK_BYTES", 3000)


def _frame(x):
    return pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])])


@pytest.mark.parametrize("shuffle", [True, False])
def test_dataframe_fit_equals_the_array_fit(small_chunks, shuffle):
    x, y = _data(n=300)
    ref = _model()
    href = ref.fit(x, y, batch_size=16, epochs=2, shuffle=shuffle, verbose=0,
                   validation_split=0.25)
    m = _model()
    h = m.fit(_frame(x), pd.Series(y), batch_size=16, epochs=2, shuffle=shuffle,
              verbose=0, validation_split=0.25)
    assert _same_weights(m, ref)
    assert h.history["val_loss"] == pytest.approx(href.history["val_loss"], rel=1e-6)


def test_mixed_and_nullable_columns_in_the_frames_order(small_chunks):
    x, y = _data(n=300)
    ints = np.round(x[:, 1] * 10).astype(np.int64)
    df = pd.DataFrame({"b": x[:, 0].astype(np.float64), "a": ints,
                       "flag": x[:, 2] > 0, "n": pd.array(ints, dtype="Int64"),
                       "e": x[:, 4], "d": x[:, 5]})
    want = np.column_stack([x[:, 0], ints, x[:, 2] > 0, ints, x[:, 4], x[:, 5]]
                           ).astype(np.float32)
    ref = _model()
    ref.fit(want, y, batch_size=16, verbose=0)
    m = _model()
    m.fit(df, y, batch_size=16, verbose=0)
    assert _same_weights(m, ref)
    np.testing.assert_array_equal(m.predict(df), m.predict(want))
    np.testing.assert_allclose(m.evaluate(df, pd.Series(y), verbose=0),
                               m.evaluate(want, y, verbose=0), rtol=1e-6)


def test_columns_are_read_in_the_frames_order():
    x, y = _data(n=100)
    m = _model()
    m.fit(x, y, verbose=0)
    df = _frame(x)
    flipped = df[df.columns[::-1]]
    np.testing.assert_array_equal(m.predict(flipped), m.predict(x[:, ::-1].copy()))


def test_table_errors_name_the_column_or_row():
    x, y = _data(n=100)
    df = _frame(x)
    with pytest.raises(TypeError, match="x column 'f3' has dtype category"):
        _model().fit(df.assign(f3=df["f3"].round().astype("category")), y, verbose=0)
    with pytest.raises(TypeError, match="x column 'f0' has dtype (object|str)"):
        _model().fit(df.assign(f0=["a"] * 100), y, verbose=0)
    with pytest.raises(TypeError, match="y column 'label' .*integer indices"):
        _model().fit(df, pd.Series(np.array(["a", "b"])[y % 2], name="label"), verbose=0)
    holes = df.assign(f2=pd.array(np.arange(100), dtype="Int64"))
    holes.loc[57, "f2"] = pd.NA
    m = _model()
    with pytest.raises(ValueError, match=r"batch 1 of x \(rows 32, .*NaN"):
        m.fit(holes, y, batch_size=32, shuffle=False, verbose=0)


def test_validation_data_and_targets_as_frames():
    x, y = _data(n=300)
    onehot = np.eye(3, dtype=np.float32)[y]
    from dropout_engine.layers import Dense, Input
    from dropout_engine.model import Sequential
    import dropout_engine as de

    def model():
        de.set_random_seed(3)
        m = Sequential([Input((6,)), Dense(3, activation="softmax")])
        m.compile("adam", "categorical_crossentropy")
        return m

    ref = model()
    href = ref.fit(x[:200], onehot[:200], epochs=2, verbose=0,
                   validation_data=(x[200:], onehot[200:]))
    m = model()
    h = m.fit(_frame(x[:200]), pd.DataFrame(onehot[:200]), epochs=2, verbose=0,
              validation_data=(_frame(x[200:]), pd.DataFrame(onehot[200:])))
    assert _same_weights(m, ref)
    assert h.history["val_loss"] == pytest.approx(href.history["val_loss"], rel=1e-6)


def test_pyarrow_tables(small_chunks):
    pa = pytest.importorskip("pyarrow")
    x, y = _data(n=300)
    ref = _model()
    ref.fit(x, y, batch_size=16, verbose=0)
    cols = {f"f{i}": x[:, i] for i in range(6)}
    table = pa.table(cols)
    chunked = pa.concat_tables([table.slice(0, 120), table.slice(120)])   # two chunks
    for t in (table, chunked):
        m = _model()
        m.fit(t, pa.array(y), batch_size=16, verbose=0)
        assert _same_weights(m, ref)
    with pytest.raises(TypeError, match="x column 's' has dtype string"):
        _model().fit(table.append_column("s", pa.array(["a"] * 300)), y, verbose=0)


# ------------------------------------------------------------- sklearn
@pytest.mark.parametrize("labels", ["str", "category"])
@pytest.mark.parametrize("which", ["DropoutMLPClassifier", "KerasClassifier"])
def test_sklearn_wrappers_take_frames_and_string_or_category_labels(labels, which):
    pytest.importorskip("sklearn")
    from dropout_engine import sklearn as desk
    from dropout_engine.layers import Dense, Input
    from dropout_engine.model import Sequential
    rng = np.random.default_rng(0)
    centers = np.array([[2, 0, 0, 0], [0, 2, 0, 0], [0, 0, 2, 0]])
    k = rng.integers(0, 3, 300)
    X = pd.DataFrame(centers[k] + rng.normal(scale=0.5, size=(300, 4)),
                     columns=list("abcd"))
    names = np.array(["emu", "cat", "dog"])
    y = pd.Series(names[k])
    if labels == "category":
        y = y.astype("category")
    if which == "DropoutMLPClassifier":
        est = desk.DropoutMLPClassifier((16,), epochs=30, random_state=0)
    else:
        est = desk.KerasClassifier(
            model=lambda meta: Sequential([Input((meta["n_features_in_"],)),
                                           Dense(16, activation="relu"),
                                           Dense(meta["n_classes_"], activation="softmax")]),
            loss="sparse_categorical_crossentropy", optimizer="adam", epochs=30,
            verbose=0, random_state=0)
    est.fit(X, y)
    assert list(est.classes_) == ["cat", "dog", "emu"]
    assert list(est.feature_names_in_) == list("abcd")
    pred = est.predict(X)
    assert set(pred) <= set(names)
    assert (pred == names[k]).mean() > 0.9
    assert est.predict_proba(X).shape == (300, 3)
