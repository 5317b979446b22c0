"""CPU inference time of a DistilHuBERT-sized model on one clip, for each way of running it.

    python benchmarks/transformer_inference.py --seconds 30 --out benchmarks/transformer_inference.json

Same architecture as ntu-spml/distilhubert (23.7 M parameters), random weights: no download needed.
Prints a table and writes JSON: seconds per forward pass, speed-up over plain torch, and how far
each variant moves the logits and probabilities (the target: probabilities within 1e-3).
"""

from __future__ import annotations

from dataclasses import dataclass

from musicgenre.arguments import parse_dataclasses
from musicgenre.util.atomic import write_json_atomic

from harness.benchmark import transformer_inference_benchmark


@dataclass
class Arguments:
    seconds: float = 30.0
    repeats: int = 3
    out: str = "benchmarks/transformer_inference.json"


def main() -> None:
    (args,) = parse_dataclasses(Arguments, description=__doc__)
    result = transformer_inference_benchmark(args.seconds, args.repeats)
    print(f"{result['parameters_millions']} M parameters, {result['clip_seconds']:g} s clip, {result['machine']}")
    print(f"{'variant':<52} {'seconds':>8} {'speed-up':>9} {'max Δlogit':>11} {'max Δprob':>10}")
    for r in result["results"]:
        changes = f"{r['max_logit_change']:>11} {r['max_probability_change']:>10}"
        print(f"{r['variant']:<52} {r['seconds']:>8} {r['speedup']!s:>9} {changes}")
    write_json_atomic(args.out, result)


if __name__ == "__main__":
    main()
