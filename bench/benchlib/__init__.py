"""The benchmark runner's parts (bench/run.py is the entry point): process control,
the servers under test, the workloads, the report."""
