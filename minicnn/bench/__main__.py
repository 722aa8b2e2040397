"""``python -m minicnn.bench``: how fast is minicnn, side by side with PyTorch (see the package
docstring for what is timed and how)."""
import argparse

from ..cli import ArgumentParser, int_range, main_wrapper
from .convs import bench_convs
from .cpu import _worker, bench_cpu, bench_methods
from .workloads import JOBS, bench_jobs, worker


@main_wrapper
def main(argv=None):
    parser = ArgumentParser(prog="python -m minicnn.bench", description=__doc__)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                        help="cpu (default) or cuda (needs cupy and an NVIDIA GPU)")
    parser.add_argument("--repeat", type=int_range(1, 1000), default=None,
                        help="timed runs per job and round (default 3 on the CPU, 20 on the GPU)")
    parser.add_argument("--rounds", type=int_range(1, 100), default=None,
                        help="processes per framework, alternated (default 3; 1 with --jobs)")
    parser.add_argument("--json-out", metavar="FILE", help="also write the GPU results as JSON")
    parser.add_argument("--methods", action="store_true",
                        help="also time every saliency method and a feature-visualization step")
    parser.add_argument("--jobs", action="store_true",
                        help="time the jobs users wait on (training step, SmoothGrad, integrated gradients, "
                             "a feature-visualization grid, single passes) next to torch, Captum and Lucent")
    parser.add_argument("--convs", action="store_true",
                        help="time each VGG19 3x3 convolution by im2col, Winograd F(2x2, 3x3) and F(4x4, 3x3) "
                             "(with --device cuda: by the kernels and Winograd, at batch 1, 8 and 25)")
    parser.add_argument("--commands", action="store_true",
                        help="time whole saliency commands (vanilla, SmoothGrad, IG on VGG19) next to the same job "
                             "as a torch + Captum script, each a fresh process, with peak memory")
    parser.add_argument("--atlas", action="store_true",
                        help="units per minute of the atlas: channels per render 1..32, this process vs two "
                             "local processes (world conv3_1; VGG16 conv3_3 when cached)")
    parser.add_argument("--steps", type=int_range(1, 10_000), default=64,
                        help="with --atlas: steps per render (default 64)")
    parser.add_argument("--only", nargs="+", metavar="JOB", choices=list(JOBS),
                        help=f"with --jobs: only these ({', '.join(JOBS)})")
    parser.add_argument("--batch", type=int_range(1, 256), default=None,
                        help="with --jobs: SmoothGrad/IG samples per forward/backward (default: saliency's, 5 on the CPU, 25 on a GPU)")
    parser.add_argument("--worker", choices=["minicnn", "torch"], help=argparse.SUPPRESS)
    parser.add_argument("--job-worker", nargs=2, metavar=("JOB", "FRAMEWORK"), help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return _worker(args.worker, args.repeat, args.out)
    if args.job_worker:
        return worker(args.job_worker[0], args.job_worker[1], args.repeat, args.batch, args.out, args.device)
    if args.convs:
        if args.device == "cuda":
            from .gpu import bench_gpu_convs
            bench_gpu_convs(args.repeat or 10)
        else:
            bench_convs(args.repeat or 5)
        return
    if args.atlas:
        from .atlas import bench_atlas
        bench_atlas(steps=args.steps)
        return
    if args.commands:
        from .commands import bench_commands
        bench_commands(rounds=args.rounds or 3)
        return
    if args.jobs:
        bench_jobs(rounds=args.rounds or 1, repeat=args.repeat or 2, batch=args.batch, only=args.only,
                   device=args.device)
        return
    if args.device == "cuda":
        from .gpu import bench_cuda
        bench_cuda(args.repeat or 20, json_out=args.json_out)
        if args.methods:
            bench_methods("cuda")
        return
    bench_cpu(args.repeat or 3, args.rounds or 3)
    if args.methods:
        bench_methods("cpu")


if __name__ == "__main__":
    main()
