"""PyTorch CPU baseline for `npm run bench:train`: the same MLP / CNN as ringpipe's zoo, same batch,
Adam, one thread, random MNIST-shaped data.

    torch_train_speed.py BATCH WARMUP STEPS RUNS MODEL...   one JSON line per model (all runs)
    torch_train_speed.py --serve BATCH WARMUP STEPS MODEL... warm up, print {"ready": true}, then
                                                            answer each stdin line "run MODEL"
                                                            with one timed run as a JSON line
"""
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


class Trainer:
    """One model, its optimizer and 16 prepared batches; `timed_run` returns samples/s."""

    def __init__(self, name, batch):
        self.model = {"mlp": mlp, "cnn": cnn}[name]()
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.loss_fn = nn.CrossEntropyLoss()
        self.batch = batch
        self.xs = [torch.rand(batch, 1, 28, 28) for _ in range(16)]
        self.ys = [torch.randint(0, 10, (batch,)) for _ in range(16)]
        self.cursor = 0

    def step(self):
        i = self.cursor % 16
        self.cursor += 1
        self.opt.zero_grad()
        loss = self.loss_fn(self.model(self.xs[i]), self.ys[i])
        loss.backward()
        self.opt.step()

    def timed_run(self, steps):
        """Samples/s by the wall clock, and CPU ms per step (which machine load does not stretch)."""
        start = time.perf_counter()
        cpu_start = time.process_time()
        for _ in range(steps):
            self.step()
        cpu_ms = (time.process_time() - cpu_start) * 1000 / steps
        return steps * self.batch / (time.perf_counter() - start), cpu_ms


def report(name, batch, runs):
    print(json.dumps({
        "backend": "pytorch", "model": name, "batchSize": batch, "torch": torch.__version__,
        "samplesPerSecond": [rate for rate, _ in runs], "cpuMsPerStep": [cpu for _, cpu in runs],
    }), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "--serve":
        batch, warmup, steps = (int(v) for v in sys.argv[2:5])
        trainers = {name: Trainer(name, batch) for name in sys.argv[5:]}
        for trainer in trainers.values():
            for _ in range(warmup):
                trainer.step()
        print(json.dumps({"ready": True, "torch": torch.__version__}), flush=True)
        for line in sys.stdin:
            command, _, name = line.strip().partition(" ")
            if command != "run":
                break
            report(name, batch, [trainers[name].timed_run(steps)])
    else:
        batch, warmup, steps, runs = (int(v) for v in sys.argv[1:5])
        for name in sys.argv[5:]:
            trainer = Trainer(name, batch)
            for _ in range(warmup):
                trainer.step()
            report(name, batch, [trainer.timed_run(steps) for _ in range(runs)])
