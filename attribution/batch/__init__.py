"""Batch jobs: attribute whole runs (many episodes, seeds and checkpoints) on Ray Data, locally or on
a cluster, into Parquet files that plain pyarrow or pandas read. ``python -m attribution.batch --help``.

``sources`` plans what is explained (policies, shards of states), ``explain`` is what a worker does
with a shard, ``job`` runs the pipeline and keeps it resumable, ``results`` reads what it wrote.
"""
