#!/usr/bin/env python3
"""Plot the training and validation loss of an experiment from its tensorboard scalars.

    ./local/plot_curves.py --exp-dir pruned_transducer_stateless7_streaming/exp    # writes EXP/curves.png
"""
import argparse
from pathlib import Path

from icefall_lite.training.curves import plot_loss_curves


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp-dir", type=Path, required=True)
    parser.add_argument("--output", type=Path, help="default: EXP/curves.png")
    args = parser.parse_args()
    output = args.output or args.exp_dir / "curves.png"
    plot_loss_curves(args.exp_dir / "tensorboard", output)
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
