"""Write peftbench's synthetic Rotten Tomatoes sample (the bundled file tiny models train on), in the release's CSV
layout: 200 templated review sentences, half fresh and half rotten, plus a few plot rows the reader must skip.

    python tools/samples/rotten_tomatoes.py   # rewrites peftbench/data/samples/rotten_tomatoes/rotten_tomatoes_corpus_full.csv
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

OUT = Path(__file__).resolve().parents[2] / "peftbench" / "data" / "samples" / "rotten_tomatoes" / "rotten_tomatoes_corpus_full.csv"
GOOD = ["a moving", "a sharp, funny", "an exhilarating", "a beautifully acted", "a quietly brilliant", "a warm and clever"]
BAD = ["a tedious", "a clumsy, lifeless", "an incoherent", "a badly acted", "a painfully dull", "a cynical and empty"]
THINGS = ["drama", "comedy", "thriller", "western", "romance", "documentary", "sequel", "fable"]
ENDINGS = {
    "fresh": ["that earns every minute.", "you will want to see twice.", "full of surprises.", "with a terrific cast."],
    "rotten": ["that wastes every minute.", "you will forget by dinner.", "with nothing to say.", "that never finds its footing."],
}


def main() -> None:
    rng = random.Random(0)
    rows = []
    for i in range(200):
        category = "fresh" if i % 2 == 0 else "rotten"
        opener = rng.choice(GOOD if category == "fresh" else BAD)
        rows.append((category, f"{opener.capitalize()} {rng.choice(THINGS)} {rng.choice(ENDINGS[category])}", f"movie_{i % 40}", "True"))
    for i in range(5):
        rows.insert(i * 40, ("plot", f"A stranger arrives in town number {i} and nothing is the same again.", f"movie_{i}", "True"))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["category", "text", "movie_name", "has_plot_and_reviews"])
        writer.writerows(rows)


if __name__ == "__main__":
    main()
