"""Data from where it lives (DOMAIN §9): mapping files that turn the rows of
ERP/CRM exports (CSV, XLSX, XLS, ODS, JSON lines) or of a database change
stream into the events of DOMAIN §3. docs/ingest.md describes the format.

- `load_mapping(path)`: read and check a mapping file (MappingError lists
  every problem as `file: field.path: reason`).
- `map_row(mapping, row, op)`: one row (a dict) to its events, or its
  problems; independent of files, for rows from anywhere.
- `read_events(mapping, path)`: a source file's rows, mapped, streaming.
- `riskwatch.ingest.debezium`: Debezium change events as rows, mapped;
  `riskwatch.ingest.cdc`: the worker's set of change mappings and topics.
"""

from riskwatch.ingest.importer import ImportCounts, SourceRefused, read_events, row_problem_line
from riskwatch.ingest.mapper import RowMapper, map_row
from riskwatch.ingest.mapping import DEFAULT_OPS, SOURCE_OPS, Mapping, load_mapping

__all__ = [
    "DEFAULT_OPS", "SOURCE_OPS", "ImportCounts", "Mapping", "RowMapper", "SourceRefused",
    "load_mapping", "map_row", "read_events", "row_problem_line",
]
