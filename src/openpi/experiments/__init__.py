"""The comparisons the demos and benchmarks run, as a library: a run is a config x strategy x seed trained with
the project's trainers (`runs`); norm stats come from one helper (`norm_stats`); offline and closed-loop
evaluation (`evaluation`); the comparisons themselves (`b1k_demo`, `sim_demo`) and their reports (`report`).
The scripts in ``scripts/`` and ``benchmarks/`` are thin command lines over it."""
