"""labels.csv: one row per face (a scene's faces share its file)."""

from __future__ import annotations

import csv

from synthface.formats.base import FileWriter


class CsvWriter(FileWriter):
    key = "csv"
    filename = "labels.csv"

    def __init__(self, out, schema):
        super().__init__(out, schema, newline="")
        self.w = csv.writer(self.f)
        self.w.writerow(schema.columns())

    def add(self, image):
        self.w.writerows(self.schema.rows(image))

    @staticmethod
    def describe(schema):
        cols = [c for c in schema.columns() if not (c[0] in "xy" and c[1:].isdigit())]
        return (f"- `labels.csv`: one row per face: {', '.join(cols)}" + (", x0, y0 .. x67, y67" if schema.landmarks
                                                                          else ""))

    @staticmethod
    def loading(schema, size, formats):
        kind = "parquet" if "parquet" in formats else "csv"
        text = f"""```python
import pandas as pd
labels = pd.read_{kind}("DATASET/labels.{kind}")
train = labels[labels.split == "train"]
""" + ("""points = train.filter(regex=r"^[xy]\\d+$").to_numpy().reshape(-1, 68, 2)  # (faces, 68, x/y)
""" if schema.landmarks else "") + "```"
        return "pandas", text
