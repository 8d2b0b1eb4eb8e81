"""Training samples/s of W1, W2, W3 against PyTorch, JAX (a jitted step per
batch, and the epoch as one lax.scan), Keras 3 and scikit-learn."""
from . import jax_peer, ours, torch_peer
from .peers import installed, optional, run_pinned
from .nets import workloads

PEERS = ("torch", "jax-step", "jax-scan", "keras", "sklearn")
# A learning-rate schedule must cost no per-batch Python: these workloads
# (W2: the least work per batch) also train with each of ours.SCHEDULES,
# against the same net with a constant rate as the peer.
SCHEDULED = ("W2",)
# mixed_bfloat16 training (issue 14) of these, against our float32 (paired
# runs, alternating, the median ratio) and torch's float32 and bf16 autocast.
MIXED = ("W1", "W2")
# Paired runs (ours, ours with the unfused update, torch, back to back; the
# median of the per-pair ratios, steadier than one run on a shared machine):
# workload -> whether torch is in the pairs too.
PAIRED = {"W1": True, "W2": False}
PAIRS = 5


def _sklearn(net, x, y, threads, epochs):
    """MLPClassifier has no dropout: it does less work than the others."""
    import time
    import warnings
    nn = optional("sklearn.neural_network")
    if nn is None:
        return None
    from .peers import blas_threads
    clf = nn.MLPClassifier(hidden_layer_sizes=net.sizes[1:-1], solver=net.optimizer,
                           learning_rate_init=net.lr, batch_size=net.batch,
                           momentum=net.momentum or 0.9, nesterovs_momentum=False,
                           max_iter=1, shuffle=True, random_state=0)
    yy = y.ravel()
    best = float("inf")
    with blas_threads(threads), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(epochs + 1):
            t0 = time.perf_counter()
            clf.partial_fit(x, yy, classes=sorted(set(yy.tolist())))
            best = min(best, time.perf_counter() - t0)
    return len(x) / best


def _paired(key, net, x, y, threads, epochs, pairs):
    """Rows: the median over `pairs` paired runs of ours / torch (when
    PAIRED says so) and of ours / ours with the unfused update."""
    import statistics
    import time

    def settled(fn, *args, **kw):
        # a thread pool (torch's, libgomp's) spins a while after its last
        # call and would tax whoever runs next
        time.sleep(0.3)
        return fn(*args, **kw)
    runs = []
    for i in range(pairs):
        # the order alternates, so that neither of ours always runs first
        order = (False, True) if i % 2 == 0 else (True, False)
        mine = {u: settled(ours.train_samples_per_s, net, x, y, threads, epochs,
                           unfused=u) for u in order}
        torch = (settled(torch_peer.train_samples_per_s, net, x, y, threads, epochs)
                 if PAIRED[key] else None)
        runs.append((mine[False], mine[True], torch))
    rows = []

    def row(bench, peer_name, i, j):
        ratios = sorted(r[i] / r[j] for r in runs)
        med = statistics.median(ratios)
        rows.append(dict(bench=bench, case=f"batch {net.batch}, {pairs} pairs",
                         threads=threads, ours=statistics.median(r[i] for r in runs),
                         peer=statistics.median(r[j] for r in runs), unit="samples/s",
                         peer_name=f"{peer_name} (median of paired ratios, "
                                   f"{ratios[0]:.2f}-{ratios[-1]:.2f})",
                         spread=(ratios[-1] - ratios[0]) / med, ratio=med,
                         ratios=ratios))
    if runs[0][2] is not None:
        row(f"train {key} paired", "torch", 0, 2)
    row(f"train {key} fused update", "ours, unfused update", 0, 1)
    return rows


def run(threads, quick):
    rows = []
    epochs = 2 if quick else 5
    for key, net in workloads(quick).items():
        net.weights = net.init_weights()
        x, y = net.data()
        try:
            mine = ours.train_samples_per_s(net, x, y, threads, epochs)
        except ImportError as exc:  # the Model API is not there yet
            print(f"# {key}: dropout_engine model API unavailable ({exc})")
            continue
        peers = {
            "torch": lambda: torch_peer.train_samples_per_s(net, x, y, threads, epochs),
            "jax-step": lambda: jax_peer.run_in_child(key, threads, quick, "step"),
            "jax-scan": lambda: jax_peer.run_in_child(key, threads, quick, "scan"),
            "keras": lambda: run_pinned("bench.keras_peer", key, threads, quick, "train")
            if installed("keras") else None,
            "sklearn": lambda: _sklearn(net, x, y, threads, epochs),
        }
        for name, fn in peers.items():
            theirs = fn()
            rows.append(dict(bench=f"train {net.name}", case=f"batch {net.batch}",
                             threads=threads, ours=mine, peer=theirs or float("nan"),
                             unit="samples/s", peer_name=name if theirs else f"{name} (absent)",
                             spread=0.0, ratio=(mine / theirs) if theirs else float("nan")))
        if key in PAIRED:
            rows += _paired(key, net, x, y, threads, epochs, 3 if quick else PAIRS)
        for sched in ours.SCHEDULES if key in SCHEDULED else ():
            timed = ours.train_samples_per_s(net, x, y, threads, epochs, sched)
            rows.append(dict(bench=f"train {key} {sched}", case=f"batch {net.batch}",
                             threads=threads, ours=timed, peer=mine, unit="samples/s",
                             peer_name="ours, constant lr", spread=0.0, ratio=timed / mine))
    return rows + mixed_rows(threads, quick)


def mixed_rows(threads, quick):
    """Rows of mixed_bfloat16 training: ours (its bf16 kernel named) vs
    our float32 as the median of paired runs, then vs torch float32 and
    torch bf16 autocast."""
    import statistics
    from dropout_engine import _runtime
    rows, epochs, pairs = [], 2 if quick else 3, 3 if quick else 5
    nets = workloads(quick)
    for key in MIXED:
        net = nets[key]
        net.weights = net.init_weights()
        x, y = net.data()
        f32, b16 = [], []
        for _ in range(pairs):
            f32.append(ours.train_samples_per_s(net, x, y, threads, epochs))
            b16.append(ours.train_samples_per_s(net, x, y, threads, epochs,
                                                policy="mixed_bfloat16"))
        ratios = sorted(b / f for b, f in zip(b16, f32))
        mine = statistics.median(b16)
        case = f"batch {net.batch}, {_runtime.bf16_kernel()}"
        rows.append(dict(bench=f"train {key} mixed_bfloat16", case=case, threads=threads,
                         ours=mine, peer=statistics.median(f32), unit="samples/s",
                         peer_name="ours float32 (paired)", ratio=statistics.median(ratios),
                         spread=(ratios[-1] - ratios[0]) / statistics.median(ratios)))
        for name, cast in (("torch float32", False), ("torch bf16 autocast", True)):
            theirs = torch_peer.train_samples_per_s(net, x, y, threads, epochs,
                                                    autocast=cast)
            rows.append(dict(bench=f"train {key} mixed_bfloat16", case=case,
                             threads=threads, ours=mine, peer=theirs or float("nan"),
                             unit="samples/s",
                             peer_name=name if theirs else f"{name} (absent)",
                             spread=0.0, ratio=mine / theirs if theirs else float("nan")))
    return rows
