"""PyTorch peer: the same nets in torch.nn, the usual training loop."""
import time

import numpy as np

from .peers import torch_or_none


def _model(torch, net):
    nn = torch.nn
    mods = []
    if net.input_drop:
        mods.append(nn.Dropout(net.input_drop))
    pairs = list(zip(net.sizes[:-1], net.sizes[1:]))
    ws = net.weights
    for i, (fi, fo) in enumerate(pairs):
        lin = nn.Linear(fi, fo)
        with torch.no_grad():  # Keras [in, out] -> torch [out, in]
            lin.weight.copy_(torch.from_numpy(ws[2 * i].T.copy()))
            lin.bias.copy_(torch.from_numpy(ws[2 * i + 1]))
        mods.append(lin)
        if i < len(pairs) - 1:
            mods.append(nn.ReLU())
            if net.hidden_drop:
                mods.append(nn.Dropout(net.hidden_drop))
    return nn.Sequential(*mods)


def train_samples_per_s(net, x, y, threads, epochs, autocast=False):
    """autocast: the forward and loss under torch.autocast("cpu",
    bfloat16), torch's mixed precision (float32 weights and optimizer)."""
    torch = torch_or_none()
    if torch is None:
        return None
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = _model(torch, net)
    if net.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=net.lr, momentum=net.momentum)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=net.lr, eps=1e-7)
    if net.out_act == "softmax":
        loss_fn, ty = torch.nn.CrossEntropyLoss(), torch.from_numpy(y)
    else:
        loss_fn, ty = torch.nn.BCEWithLogitsLoss(), torch.from_numpy(y)
    tx = torch.from_numpy(x)
    linears = [m for m in model if isinstance(m, torch.nn.Linear)][:-1]
    model.train()

    def epoch():
        perm = torch.randperm(len(tx))
        for s in range(0, len(tx) - net.batch + 1, net.batch):
            idx = perm[s:s + net.batch]
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                loss = loss_fn(model(tx[idx]), ty[idx])
            loss.backward()
            opt.step()
            if net.max_norm:
                with torch.no_grad():
                    for lin in linears:
                        lin.weight.copy_(torch.renorm(lin.weight, 2, 0, net.max_norm))

    epoch()  # warm-up
    best = np.inf
    for _ in range(epochs):
        t0 = time.perf_counter()
        epoch()
        best = min(best, time.perf_counter() - t0)
    return (len(tx) // net.batch) * net.batch / best


def predictor(net, threads, bf16=False):
    """A function x -> y for latency measurement, or None.  bf16: under
    torch.autocast("cpu", dtype=torch.bfloat16) (torch's bf16 inference on
    CPU: the Linear layers in bfloat16, the same float32 weights cast)."""
    torch = torch_or_none()
    if torch is None:
        return None
    torch.set_num_threads(threads)
    model = _model(torch, net).eval()

    def predict(x):
        with torch.inference_mode():
            return model(torch.from_numpy(x)).numpy()

    def predict_bf16(x):
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            return model(torch.from_numpy(x)).float().numpy()
    return predict_bf16 if bf16 else predict
