"""PyTorch CPU baseline for `npm run bench:train`: the same MLP / CNN as ringpipe's zoo, same batch,
Adam, one thread, random MNIST-shaped data. Prints one JSON line per model."""
import json
import sys
import time

import torch
import torch.nn as nn

torch.set_num_threads(1)
torch.manual_seed(1)


def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10))


def cnn():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 5 * 5, 128), nn.ReLU(), nn.Linear(128, 10),
    )


def measure(name, batch, warmup, steps, runs):
    model = {"mlp": mlp, "cnn": cnn}[name]()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    xs = [torch.rand(batch, 1, 28, 28) for _ in range(16)]
    ys = [torch.randint(0, 10, (batch,)) for _ in range(16)]

    def step(i):
        opt.zero_grad()
        loss = loss_fn(model(xs[i % 16]), ys[i % 16])
        loss.backward()
        opt.step()

    for i in range(warmup):
        step(i)
    rates = []
    for _ in range(runs):
        start = time.perf_counter()
        for i in range(steps):
            step(i)
        rates.append(steps * batch / (time.perf_counter() - start))
    return rates


if __name__ == "__main__":
    batch, warmup, steps, runs = (int(v) for v in sys.argv[1:5])
    for name in sys.argv[5:]:
        print(json.dumps({"backend": "pytorch", "model": name, "batchSize": batch, "samplesPerSecond": measure(name, batch, warmup, steps, runs), "torch": torch.__version__}), flush=True)
