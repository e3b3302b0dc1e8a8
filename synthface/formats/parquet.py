"""labels.parquet: labels.csv's rows with the dtypes pandas gives labels.csv."""

from __future__ import annotations

from synthface.formats.base import FileWriter
from synthface.face.labels import INT_COLS, STR_COLS

ROW_GROUP = 10_000


class ParquetWriter(FileWriter):
    key = "parquet"
    filename = "labels.parquet"

    def __init__(self, out, schema):
        import pyarrow as pa
        import pyarrow.parquet as papq

        super().__init__(out, schema, "wb")
        self.cols = schema.columns()
        self.types = pa.schema([(c, pa.string() if c in STR_COLS else pa.int64() if c in INT_COLS
                                 else pa.float64()) for c in self.cols])
        self.pq = papq.ParquetWriter(self.f, self.types)
        self.rows: list = []

    def add(self, image):
        self.rows.extend(self.schema.rows(image))
        if len(self.rows) >= ROW_GROUP:
            self._flush()

    def _flush(self):
        import pyarrow as pa

        if self.rows:
            self.pq.write_table(pa.Table.from_pylist([dict(zip(self.cols, r)) for r in self.rows], self.types))
            self.rows.clear()

    def finish(self):
        self._flush()
        self.pq.close()
        super().finish()

    def discard(self):
        try:
            self.pq.close()  # closed here, not by a finaliser that would print a traceback
        except Exception:  # noqa: BLE001 - a failed export is being undone; the error is already on its way
            pass
        super().discard()

    @staticmethod
    def describe(schema):
        return "- `labels.parquet`: the same rows and dtypes as labels.csv"
