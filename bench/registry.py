"""Every benchmark, by key, in report order.

It lives apart from ``bench/benchmarks.py`` because the benchmark modules import that module's helpers:
registering them there made each one importable only after it (a circular import).
"""

from __future__ import annotations

from collections.abc import Callable

from bench import benchmarks, catalogue_bench, cstore_bench, import_bench, jobs_bench, load_bench
from bench.benchmarks import Context
from bench.results import Section

ALL: list[tuple[str, Callable[[Context], Section]]] = [
    ("upload", benchmarks.bench_upload),
    ("zip", benchmarks.bench_zip),
    ("listing", benchmarks.bench_listing),
    ("import_zip", import_bench.bench_import_zip),
    ("import_files", import_bench.bench_import_files),
    ("jobs", jobs_bench.bench_jobs),
    ("cstore", cstore_bench.bench_cstore),
    ("load", load_bench.bench_load),
    ("catalogue", catalogue_bench.bench_catalogue),
]

TITLES = {
    "upload": "1. Upload of a big file",
    "zip": "2. Zip download of a scan's DICOM files",
    "listing": "3. Listing a project with many experiments",
    "import_zip": "4. Zip import of DICOM files",
    "import_files": "5. One DICOM file per request",
    "jobs": "6. dcm2niix jobs: 1 and 2 local workers, and overhead over dcm2niix alone",
    "cstore": "7. C-STORE ingest vs storescp and Orthanc; receiver RSS",
    "load": "8. Load test: 50 concurrent clients, 1/2/4 worker processes, SQLite and PostgreSQL",
    "catalogue": "9. Large catalogue: listing latency with 100,000 experiments and 1,000,000 files",
}
