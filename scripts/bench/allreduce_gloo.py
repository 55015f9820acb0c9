"""Reference column for `npm run bench:allreduce`: the same all-reduce table from PyTorch's gloo.

Runs `--peers` processes on this machine (loopback, one thread each, as the JS ranks run), times
float32 SUM all-reduces of each size like scripts/bench/allreduce-worker.ts does, and prints one JSON
line per size on stdout. Needs Debian's python3-torch (`/usr/bin/python3`); installs nothing.
`--iface` pins gloo to a network interface (on the emulated LAN each host has eth0).
"""
import argparse
import json
import os
import resource
import sys
import time


def worker(rank, args):
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://{args.master}:{args.port}",
        rank=rank,
        world_size=args.peers,
    )
    n = args.peers
    largest = torch.ones(max(args.sizes) // 4, dtype=torch.float32)
    barrier = torch.zeros(1)
    for size in args.sizes:
        buf = largest[: size // 4]
        for _ in range(args.warmup):
            dist.all_reduce(buf)
        dist.all_reduce(barrier)
        usage_before = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        for _ in range(args.iters):
            dist.all_reduce(buf)
        seconds = (time.perf_counter() - start) / args.iters
        usage = resource.getrusage(resource.RUSAGE_SELF)
        user_ms = (usage.ru_utime - usage_before.ru_utime) * 1000 / args.iters
        system_ms = (usage.ru_stime - usage_before.ru_stime) * 1000 / args.iters
        voluntary = (usage.ru_nvcsw - usage_before.ru_nvcsw) / args.iters
        involuntary = (usage.ru_nivcsw - usage_before.ru_nivcsw) / args.iters
        # Same correctness pass as the JS worker: small integers, exact sum.
        idx = torch.arange(buf.numel(), dtype=torch.int64) % 13 + 1
        buf.copy_((rank + 1) * idx.to(torch.float32))
        dist.all_reduce(buf)
        expected = (n * (n + 1) / 2) * idx.to(torch.float32)
        max_error = float((buf - expected).abs().max()) if buf.numel() else 0.0
        times = [torch.zeros(1) for _ in range(n)]
        dist.all_gather(times, torch.tensor([seconds]))
        if rank == 0:
            slowest = max(float(t) for t in times)
            print(json.dumps({"bytes": size, "seconds": slowest, "correct": max_error == 0.0, "maxError": max_error,
                              "userCpuMs": user_ms, "systemCpuMs": system_ms,
                              "voluntarySwitches": voluntary, "involuntarySwitches": involuntary}), flush=True)
    dist.destroy_process_group()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--peers", type=int, required=True)
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], required=True, help="bytes, comma-separated")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--master", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rank", type=int, help="run only this rank (one process per LAN host); default: all ranks here")
    parser.add_argument("--iface", help="GLOO_SOCKET_IFNAME for this process")
    args = parser.parse_args()
    if args.iface:
        os.environ["GLOO_SOCKET_IFNAME"] = args.iface
    try:
        import torch  # noqa: F401
    except ImportError:
        print(json.dumps({"unavailable": "PyTorch is not installed for this python (Debian: apt-get install python3-torch)"}), flush=True)
        return 3
    if args.rank is not None:
        worker(args.rank, args)
        return 0
    import torch.multiprocessing as mp

    mp.start_processes(worker, args=(args,), nprocs=args.peers, start_method="fork")
    return 0


if __name__ == "__main__":
    sys.exit(main())
