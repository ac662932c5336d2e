"""`python -m sentio.demo`: generate the demo corpus (synthetic music with known valence/arousal,
in DEAM's layout)."""

from __future__ import annotations

import argparse
import json
import sys
import time

from .corpus import DEFAULT_DEMO_DIR, RATER_BIAS, generate_demo


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sentio.demo",
                                description="Generate the demo corpus: synthetic music with known valence/arousal, "
                                            "in DEAM's layout.")
    p.add_argument("--output_dir", default=DEFAULT_DEMO_DIR)
    p.add_argument("--num_clips", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variant", type=int, default=0, choices=sorted(RATER_BIAS),
                   help="1: a domain-shifted corpus (other timbres, tempo range, rater bias)")
    p.add_argument("--num_workers", type=int, default=None, help="processes (default: 2)")
    args = p.parse_args(argv)
    start = time.perf_counter()
    try:
        out = generate_demo(args.output_dir, args.num_clips, args.seed, args.num_workers, args.variant)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    ceiling = json.loads((out / "ceiling.json").read_text())
    print(f"wrote {args.num_clips} clips to {out} in {time.perf_counter() - start:.1f} s; "
          f"ceiling CCC (empirical) valence {ceiling['empirical']['valence']:.3f}, "
          f"arousal {ceiling['empirical']['arousal']:.3f}; dynamic ceiling CCC valence "
          f"{ceiling['dynamic']['ccc']['valence']:.3f}, arousal {ceiling['dynamic']['ccc']['arousal']:.3f}")
    return 0




if __name__ == "__main__":
    sys.exit(main())
